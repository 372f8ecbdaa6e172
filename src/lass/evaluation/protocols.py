"""Evaluation cases: deterministic label mixtures, the published mixture lists, and real stems.

Every protocol yields `Case`s: a mixture, the reference target, the rest (interference), and the
queries. Scoring is the same for all of them (`lass.evaluation.run`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import AudioError, read, read_mono, resample
from ..datasets import ClipBank, is_song_mix, label_text, need_cells, read_table, table_row
from ..mixing import interference, mix, mix_sources

DEFAULT_TEMPLATE = "the sound of {label}"


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


def label_mixtures(bank: ClipBank, interferers: int = 1, snr_db: float = 0.0, seed: int = 0,
                   template: str = DEFAULT_TEMPLATE, limit: int | None = None,
                   negative: bool = False, rows_of_full: bool = False) -> list[Case]:
    """Each clip in turn is the target, with `interferers` clips of other classes, mixed by energy
    over the whole clip at `snr_db`, peak-protected (the field's protocol).

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
    cases = []
    for index in order:
        label = bank.labels[index]
        others = [lab for lab in bank.label_names if lab != label]
        if len(others) < interferers:
            raise ValueError(f"mixtures with {interferers} interferer{'s' * (interferers > 1)} need clips of at "
                             f"least {interferers + 1} classes; this set has {len(bank.label_names)} "
                             f"({', '.join(bank.label_names)})")
        labels = [others[i] for i in rng.choice(len(others), size=interferers, replace=False)]
        chosen = [bank.by_label[lab][rng.integers(len(bank.by_label[lab]))] for lab in labels]
        if kept is not None and index not in kept:
            continue
        mixture, target, scaled = mix_sources(bank.clips[index], [bank.clips[k] for k in chosen], snr_db)
        band = max(bank.band(k) for k in (index, *chosen))
        cases.append(Case(f"{index:05d}", mixture, target, interference(scaled, target), label,
                          template.format(label=label), template.format(label=labels[0]) if negative else None,
                          labels, bank.sample_rate, band_hz=band if band < bank.sample_rate / 2 else "auto",
                          first_interferer=scaled[0] if len(scaled) > 1 else None))
    return cases


LIST_LAYOUTS = {
    # AudioSep's evaluation CSVs: caption, src_wav, noise_wav
    "audiosep": ("caption", "src_wav", "noise_wav", None),
    # CLAPSep's evaluation CSVs: source_file, positive_caption, noise_file, negative_caption
    "clapsep": ("positive_caption", "source_file", "noise_file", "negative_caption"),
}


def mixture_list(path: str | os.PathLike, data_root: str | os.PathLike, sample_rate: int,
                 snr_db: float = 0.0, limit: int | None = None, use_negative: bool = False) -> list[Case]:
    """A published mixture list (layout detected from the header), mixed at `snr_db` by energy."""
    rows, columns = read_table(path)
    if not rows:
        raise ValueError(f"{path}: empty mixture list")
    header = set(rows[0])
    layout = next((name for name, cols in LIST_LAYOUTS.items() if set(c for c in cols if c) <= header), None)
    if layout is None:
        raise ValueError(f"{path}: unknown layout; expected columns {', '.join(LIST_LAYOUTS['audiosep'][:3])} "
                         f"(AudioSep) or {', '.join(LIST_LAYOUTS['clapsep'])} (CLAPSep); found "
                         f"{', '.join(columns) or 'none'}")
    cap, src, noise_col, neg_col = LIST_LAYOUTS[layout]
    if use_negative and neg_col is None:
        raise ValueError(f"--negative (use_negative): {path} has no negative captions ({layout} layout); a list "
                         f"in CLAPSep's layout has them ({LIST_LAYOUTS['clapsep'][3]})")
    root = Path(data_root)
    cases = []
    for i, row in enumerate(rows[:limit] if limit else rows):
        need_cells(path, i, row, (cap, src, noise_col))
        try:
            target = read_mono(_under(root, row[src]), sample_rate)
            noise = read_mono(_under(root, row[noise_col]), sample_rate)
        except AudioError as err:  # which row, and where its relative paths were looked for
            raise AudioError(f"{table_row(path, i)}: {err} (relative paths are taken from "
                             f"--data-root, here {root})") from None
        mixture, target, interference = mix(target, [noise], snr_db)
        negative = row.get(neg_col) if (neg_col and use_negative) else None
        if negative is not None and " ".join(negative.split()).casefold() == " ".join(row[cap].split()).casefold():
            negative = None  # the interferer has the target's caption: suppressing it would suppress the target
        cases.append(Case(f"{i:05d}", mixture, target, interference, row[cap], row[cap], negative,
                          sample_rate=sample_rate))
    return cases


def _under(root: Path, name: str) -> str:
    path = Path(name)
    return str(path if path.is_absolute() else root / path)


def stem_cases(folder: str | os.PathLike, template: str = "{label}",
               stems: list[str] | None = None, limit: int | None = None) -> list[Case]:
    """Songs with ground-truth stems: each song folder holds a 'mix.*' or '..._mix.*' file and its stem files.

    Each stem is queried by its name; the interference is the mix minus the stem. `limit`: the first stems.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--stems: no such folder: {folder}")
    songs = [p.parent for p in sorted(folder.rglob("*")) if p.is_file() and is_song_mix(p)]
    if not songs:
        raise ValueError(f"{folder}: no song mix ('mix.<ext>' or '<name>_mix.<ext>') found under it")
    cases = []
    for song in songs:
        if limit and len(cases) >= limit:
            break
        mix_file = next(p for p in sorted(song.iterdir()) if p.is_file() and is_song_mix(p))
        mixture, rate = read(mix_file)
        count = len(cases)
        for stem_file in sorted(song.rglob("*")):
            if not stem_file.is_file() or stem_file == mix_file or stem_file.suffix.lower() not in (".wav", ".flac", ".ogg"):
                continue
            if next(p for p in stem_file.parents if p in songs) != song:  # a song folder inside this one: its own
                continue
            name = label_text(stem_file.stem.split("__")[-1].replace("+", " and "))
            if stems and name not in stems:
                continue
            target, stem_rate = read(stem_file)
            if stem_rate != rate:
                target = resample(target, stem_rate, rate)
            n = min(target.shape[-1], mixture.shape[-1])
            if target.shape[0] != mixture.shape[0]:
                target = np.broadcast_to(target.mean(0, keepdims=True), (mixture.shape[0], target.shape[-1]))
            tgt = np.ascontiguousarray(target[:, :n])
            mx = np.ascontiguousarray(mixture[:, :n])
            cases.append(Case(f"{song.name}/{name}", mx, tgt, mx - tgt, name, template.format(label=name),
                              sample_rate=rate))
            if limit and len(cases) >= limit:
                break
        if len(cases) == count and not stems:
            raise ValueError(f"{song}: a mix ({mix_file.name}) but no stems (.wav, .flac or .ogg) beside it or in "
                             f"its folders to score it against")
    if not cases:
        raise ValueError(f"{folder}: none of the stems is named {' or '.join(map(repr, stems or []))}")
    return cases
