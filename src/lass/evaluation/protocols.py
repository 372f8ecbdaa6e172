"""Evaluation cases: deterministic label mixtures, the published mixture lists, and real stems.

Every protocol yields `Case`s: a mixture, the reference target, the rest (interference), and the
queries. Scoring is the same for all of them (`lass.evaluation.run`).
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..audio import AUDIO_EXTENSIONS, AudioError, read, read_mono, resample
from ..datasets import (MIN_CLIP_SECONDS, ClipBank, is_song_mix, label_text, need_cells, read_table,
                        resolve_under, table_row)
from ..metrics import cosine
from ..mixing import interference, mix, mix_sources

DEFAULT_TEMPLATE = "the sound of {label}"


def query_text(template: str | dict[str, str], label: str) -> str:
    """A class's query: the template with its name, or its own text from a table of queries by class
    (`lass evaluate --queries`, e.g. phrasings no recipe trains on)."""
    return template[label] if isinstance(template, dict) else template.format(label=label)


def read_queries(path: str | os.PathLike, labels: list[str]) -> dict[str, str]:
    """A CSV of `label,query` rows: the query each class of a labelled set is asked by. Every class needs one."""
    rows, columns = read_table(path)
    if "label" not in columns or "query" not in columns:
        raise ValueError(f"--queries {path}: expected columns label,query; found {', '.join(columns) or 'none'}")
    queries = {}
    for i, row in enumerate(rows):
        need_cells(path, i, row, ("label", "query"))
        queries[label_text(row["label"])] = " ".join(row["query"].split())
    missing = [label for label in labels if label not in queries]
    if missing:
        raise ValueError(f"--queries {path}: no query for {len(missing)} of the {len(labels)} classes "
                         f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})")
    return queries


@dataclass
class Case:
    name: str
    mixture: np.ndarray  # (channels, samples) or (samples,)
    target: np.ndarray
    interference: np.ndarray
    label: str
    query: str
    negative: str | None = None
    interferer_labels: list[str] = field(default_factory=list)
    sample_rate: int = 16000
    # the highest frequency the sources hold, where their files' rates put it below sample_rate / 2; "auto": found in
    # the mixture's content, as `lass separate` finds it (Separator.separate_tensor)
    band_hz: float | str | None = "auto"
    # the first interferer alone, as it sits in the mixture: what the query for its class must return (of several
    # interferers, the others are not asked for); None: the interference is that one interferer
    first_interferer: np.ndarray | None = None
    # the files it was made of, "; "-separated: the target's first, then the interferers' (or the mixture's)
    files: str = ""


def check_interferers(bank: ClipBank, interferers: int) -> None:
    """Mixtures with this many interferers need clips of one class more."""
    if len(bank.label_names) <= interferers:
        raise ValueError(f"mixtures with {interferers} interferer{'s' * (interferers > 1)} need clips of at "
                         f"least {interferers + 1} classes; this set has {len(bank.label_names)} "
                         f"({', '.join(bank.label_names)})")


def label_mixtures(bank: ClipBank, interferers: int = 1, snr_db: float = 0.0, seed: int = 0,
                   template: str | dict[str, str] = DEFAULT_TEMPLATE, limit: int | None = None,
                   negative: bool = False, rows_of_full: bool = False) -> list[Case]:
    """Each clip in turn is the target, with `interferers` clips of other classes, mixed by energy
    over the whole clip at `snr_db`, peak-protected (the field's protocol). The queries come from `template` (a
    class's name in it, or its entry of a table by class, `query_text`); they do not change the mixtures.

    `limit`: a deterministic subset of that many. With `rows_of_full` (`lass evaluate --limit`) the subset is
    rows of the full protocol: the same names, clips and interferers, and a smaller limit's rows are among a
    larger one's. Without it the subset is drawn before the interferers, so its mixtures differ from the full
    protocol's; training runs validate on such a set, kept as it is so that their scores stay comparable."""
    rng = np.random.default_rng(seed)
    order = list(range(len(bank)))
    kept = None
    if limit is not None and limit < len(order):
        if rows_of_full:  # its own stream, so the interferers are drawn as in the full protocol
            kept = set(np.random.default_rng([seed, 1]).permutation(len(order))[:limit].tolist())
        else:
            order = sorted(rng.choice(len(order), size=limit, replace=False).tolist())
    if order:  # an empty set is the caller's to report
        check_interferers(bank, interferers)
    cases = []
    for index in order:
        label = bank.labels[index]
        others = [lab for lab in bank.label_names if lab != label]
        labels = [others[i] for i in rng.choice(len(others), size=interferers, replace=False)]
        chosen = [bank.by_label[lab][rng.integers(len(bank.by_label[lab]))] for lab in labels]
        if kept is not None and index not in kept:
            continue
        mixture, target, scaled = mix_sources(bank.clips[index], [bank.clips[k] for k in chosen], snr_db)
        band = max(bank.band(k) for k in (index, *chosen))
        cases.append(Case(f"{index:05d}", mixture, target, interference(scaled, target), label,
                          query_text(template, label), query_text(template, labels[0]) if negative else None,
                          labels, bank.sample_rate, band_hz=band if band < bank.sample_rate / 2 else "auto",
                          first_interferer=scaled[0] if len(scaled) > 1 else None,
                          files="; ".join(bank.paths[k] for k in (index, *chosen))))
    return cases


class ListLayout(NamedTuple):
    caption: str
    target: str
    noise: str | None = None  # the interferer's file, mixed with the target at --snr (or the row's snr)
    negative: str | None = None  # a negative caption (CLAPSep)
    snr: str | None = None  # each row's own target-to-interference ratio (dB)
    mixture: str | None = None  # a mixture already made: scored as it is, the interference being mixture - target


LIST_LAYOUTS = {  # told apart by their columns, in this order
    "AudioSep": ListLayout("caption", "src_wav", "noise_wav"),
    "CLAPSep": ListLayout("positive_caption", "source_file", "noise_file", negative="negative_caption"),
    "DCASE 2024 task 9": ListLayout("caption", "source", "noise", snr="snr"),
    "VGGSound (AudioSep's, mixed)": ListLayout("s0_text", "s0_wav", mixture="mix_wav"),
    "mixed": ListLayout("caption", "target", mixture="mixture"),
}


def _columns(layout: ListLayout) -> list[str]:
    return [column for column in (layout.caption, layout.target, layout.noise, layout.negative, layout.snr,
                                  layout.mixture) if column]




# a mixture this alike its target (squared cosine; 60 dB of signal to the rest, scale aside) holds nothing but the
# target: no interference to take out, and its "improvement" would be about -100 dB
ALONE = 1.0 - 1e-6


class LeftOut:
    """Cases no score can be taken against, left out: a target silent or shorter than MIN_CLIP_SECONDS over the
    mixture's span, or a mixture that holds nothing but its target (a silent noise file, the target as its own
    noise). Also pre-made mixtures longer or shorter than their targets, scored over the shorter. Each kind is said
    in one line, naming the first."""

    def __init__(self, what: str):
        self.what = what  # "row", "stem"
        self.silent: list[str] = []
        self.short: list[str] = []
        self.alone: list[str] = []
        self.trimmed: list[str] = []

    def keeps(self, name: str, mixture: np.ndarray, target: np.ndarray, rate: int, trimmed: bool = False) -> bool:
        """Whether the case is scored; `trimmed`: a pre-made mixture scored over the shorter (`premixed`)."""
        if not np.any(target):
            self.silent.append(name)
        elif target.shape[-1] < MIN_CLIP_SECONDS * rate:
            self.short.append(name)
        elif not np.any(mixture) or cosine(mixture, target) ** 2 > ALONE:
            self.alone.append(name)
        else:
            if trimmed:
                self.trimmed.append(name)
            return True
        return False

    @staticmethod
    def premixed(mixture: np.ndarray, target: np.ndarray, rate: int):
        """A mixture already made and its target over the shorter of the two: (mixture, target, interference,
        whether more than resampling's rounding was cut)."""
        n = min(mixture.shape[-1], target.shape[-1])
        trimmed = max(mixture.shape[-1], target.shape[-1]) - n > 0.01 * rate
        mixture, target = np.ascontiguousarray(mixture[..., :n]), np.ascontiguousarray(target[..., :n])
        return mixture, target, mixture - target, trimmed

    def say(self) -> None:
        for names, why in ((self.silent, "{target} digital silence over the mixture's span"),
                           (self.short, f"{{target}} shorter than {MIN_CLIP_SECONDS:g} s"),
                           (self.alone, "{mixture} nothing but the target (silent interference, or the target "
                                        "itself)"),
                           (self.trimmed, "mixture and target differ in length")):
            if names:
                one = len(names) == 1
                why = why.format(target="target is" if one else "targets are",
                                 mixture="mixture holds" if one else "mixtures hold")
                then = ("scored over the shorter" if names is self.trimmed else
                        "left out, as no improvement can be measured on it" if one else
                        "left out, as no improvement can be measured on them")
                print(f"lass: {len(names)} {self.what}{'' if one else 's'} whose {why}: {then} (first: {names[0]})",
                      file=sys.stderr, flush=True)


def mixture_list(path: str | os.PathLike, data_root: str | os.PathLike, sample_rate: int,
                 snr_db: float | None = None, limit: int | None = None, use_negative: bool = False) -> list[Case]:
    """A published mixture list, its layout told by its header: two clips mixed by energy at `snr_db` (0 dB
    unless given; DCASE's lists give each row's), or a mixture already made and its target. A row whose target
    cannot be scored is left out, and said so (LeftOut); `limit`: the first that many rows that are scored."""
    rows, columns = read_table(path)
    name, layout = list_layout(path, rows, columns)
    if use_negative and layout.negative is None:
        raise ValueError(f"--negative (use_negative): {path} has no negative captions ({name} layout); a list "
                         f"in CLAPSep's layout has them ({LIST_LAYOUTS['CLAPSep'].negative})")
    if snr_db is not None and (layout.snr or layout.mixture):
        raise ValueError(f"--snr (snr_db): {path} is in the {name} layout, whose "
                         f"{'rows give their own ratio' if layout.snr else 'mixtures are already made'}")
    root = Path(data_root)
    cases, left_out = [], LeftOut("row")
    seen: dict[tuple, int] = {}  # a row's files, caption, negative and ratio -> the first row that has them
    repeated: list[tuple[int, int]] = []
    for i, row in enumerate(rows):
        if limit and len(cases) >= limit:
            break
        needed = [column for column in _columns(layout) if column != layout.negative or use_negative]
        need_cells(path, i, row, tuple(needed))
        other = layout.mixture or layout.noise
        files = [os.path.abspath(resolve_under(root, row[column])) for column in (layout.target, other)]
        try:
            target, other_audio = (read_mono(file, sample_rate) for file in files)
        except AudioError as err:  # which row, and where its relative paths were looked for
            raise AudioError(f"{table_row(path, i)}: {err} (relative paths are taken from "
                             f"--data-root, here {root})") from None
        trimmed = False
        if layout.mixture:
            mixture, target, interference, trimmed = left_out.premixed(other_audio, target, sample_rate)
        else:
            ratio = snr_db or 0.0
            if layout.snr:
                try:
                    ratio = float(row[layout.snr])
                except ValueError:
                    ratio = math.nan
                if not math.isfinite(ratio):
                    raise ValueError(f"{table_row(path, i)}: {layout.snr} must be a number of dB, got "
                                     f"{row[layout.snr]!r}")
            mixture, target, interference = mix(target, [other_audio], ratio)
        if not left_out.keeps(table_row(path, i), mixture, target, sample_rate, trimmed):
            continue
        caption = row[layout.caption].strip()
        negative = row.get(layout.negative) if (layout.negative and use_negative) else None
        if negative is not None and " ".join(negative.split()).casefold() == " ".join(caption.split()).casefold():
            negative = None  # the interferer has the target's caption: suppressing it would suppress the target
        cases.append(Case(f"{i:05d}", mixture, target, interference, caption, caption, negative,
                          sample_rate=sample_rate, files="; ".join(files)))
        first = seen.setdefault((tuple(files), caption, negative, row.get(layout.snr) if layout.snr else None), i)
        if first != i:
            repeated.append((i, first))
    left_out.say()
    if repeated:  # scored as given (a list may weight cases so), but a copy-paste slip should not pass unseen
        (i, first), more = repeated[0], len(repeated) - 1
        others = f" (and {more} more rows repeat others)" if more else ""
        print(f"lass: note: {table_row(path, i)} repeats row {first + 1}{others}: each row is scored, the repeats "
              f"too", file=sys.stderr, flush=True)
    if not cases:
        raise ValueError(f"{path}: no row left to score")
    return cases


def list_layout(path, rows: list[dict[str, str]], columns: list[str]) -> tuple[str, ListLayout]:
    """Which of LIST_LAYOUTS a mixture list is in, told by its header (a list without rows is refused)."""
    if not rows:
        raise ValueError(f"{path}: empty mixture list")
    header = set(rows[0])
    for name, layout in LIST_LAYOUTS.items():
        if set(_columns(layout)) <= header:
            return name, layout
    known = "; ".join(f"{', '.join(_columns(layout))} ({name})" for name, layout in LIST_LAYOUTS.items())
    tabs = " (its columns are separated by tabs: a list's must be by commas)" if any("\t" in c for c in columns) else ""
    raise ValueError(f"{path}: unknown layout; expected columns {known}; found {', '.join(columns) or 'none'}{tabs}")


def song_mix(song: Path) -> Path:
    """A song folder's mix: its one '..._mix.<ext>' file, or where several are named so (a stem called
    'backing_vocals_mix.wav'), the one named 'mix.<ext>'; the others are stems."""
    found = [p for p in sorted(song.iterdir()) if p.is_file() and is_song_mix(p)]
    plain = [p for p in found if p.stem.lower() == "mix"]
    if len(found) > 1 and len(plain) != 1:
        raise ValueError(f"{song}: {', '.join(p.name for p in found)} could each be the song's mix: name the mix "
                         f"'mix.<ext>' (the others are then scored as stems)")
    return plain[0] if len(found) > 1 else found[0]


def stem_cases(folder: str | os.PathLike, template: str = "{label}",
               stems: list[str] | None = None, limit: int | None = None) -> list[Case]:
    """Songs with ground-truth stems: each song folder holds a 'mix.*' or '..._mix.*' file and its stem files.

    Each stem is queried by its name; the interference is the mix minus the stem. `limit`: the first stems.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--stems: no such folder: {folder}")
    songs = list(dict.fromkeys(p.parent for p in sorted(folder.rglob("*")) if p.is_file() and is_song_mix(p)))
    if not songs:
        raise ValueError(f"{folder}: no song mix ('mix.<ext>' or '<name>_mix.<ext>') found under it")
    cases, left_out = [], LeftOut("stem")
    unlike: list[str] = []  # stems whose channels are not their mix's
    for song in songs:
        if limit and len(cases) >= limit:
            break
        mix_file = song_mix(song)
        mixture, rate = read(mix_file)
        found = 0
        for stem_file in sorted(song.rglob("*")):
            if not stem_file.is_file() or stem_file == mix_file or stem_file.suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            if next(p for p in stem_file.parents if p in songs) != song:  # a song folder inside this one: its own
                continue
            name = label_text(stem_file.stem.split("__")[-1].replace("+", " and "))
            if stems and name not in stems:
                continue
            found += 1
            target, stem_rate = read(stem_file)
            if stem_rate != rate:
                target = resample(target, stem_rate, rate)
            other_channels = target.shape[0] != mixture.shape[0]
            if other_channels:
                target = np.broadcast_to(target.mean(0, keepdims=True), (mixture.shape[0], target.shape[-1]))
            mx, tgt, rest, trimmed = left_out.premixed(mixture, target, rate)
            if not left_out.keeps(f"{song.name}/{name}", mx, tgt, rate, trimmed):
                continue
            if other_channels:
                unlike.append(f"{song.name}/{name}")
            cases.append(Case(f"{song.name}/{name}", mx, tgt, rest, name, template.format(label=name),
                              sample_rate=rate, files=f"{os.path.abspath(stem_file)}; {os.path.abspath(mix_file)}"))
            if limit and len(cases) >= limit:
                break
        if not found and not stems:
            kinds = ", ".join(sorted(AUDIO_EXTENSIONS))
            raise ValueError(f"{song}: a mix ({mix_file.name}) but no stems ({kinds}) beside it or in its folders "
                             f"to score it against")
    if unlike:  # a mono stem of a stereo mix: heard in both channels alike, which the mix may not be
        more = f" and {len(unlike) - 1} more" if len(unlike) > 1 else ""
        print(f"lass: note: {unlike[0]}{more}: the stem has other channels than its mix; it is scored as its channels' "
              f"mean in each of the mix's", file=sys.stderr, flush=True)
    left_out.say()
    if not cases:
        raise ValueError(f"{folder}: none of the stems is named {' or '.join(map(repr, stems))}" if stems else
                         f"{folder}: no stem left to score")
    return cases
