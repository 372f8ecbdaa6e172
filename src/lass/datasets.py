"""Readers for labelled audio: ESC-50 layout, a folder per class, and caption manifests.

Every reader returns a list of `Item(path, label)`; labels become queries through templates.
"""
from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AudioError, read_mono

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


@dataclass(frozen=True)
class Item:
    path: str
    label: str
    first_epoch: int = 0  # training only: the first epoch whose mixtures may draw this clip


def label_text(label: str) -> str:
    """'chirping_birds' -> 'chirping birds'."""
    return " ".join(label.replace("_", " ").split())


def read_esc50(root: str | os.PathLike, folds: list[int] | None = None) -> list[Item]:
    root = Path(root)
    meta = root / "meta.csv"
    if not meta.exists():
        meta = root / "meta" / "esc50.csv"
    if not meta.exists():
        raise FileNotFoundError(f"{root}: no ESC-50 meta.csv found")
    audio_dir = root / "audio"
    items = []
    with open(meta, newline="") as f:
        for row in csv.DictReader(f):
            if folds and int(row["fold"]) not in folds:
                continue
            items.append(Item(str(audio_dir / row["filename"]), label_text(row["category"])))
    return items


def read_class_folders(root: str | os.PathLike) -> list[Item]:
    """root/<label>/<clip>.wav ..."""
    root = Path(root)
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.rglob("*")):
            if file.suffix.lower() in AUDIO_EXTENSIONS:
                items.append(Item(str(file), label_text(folder.name)))
    return items


def read_manifest(path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> list[Item]:
    """AudioSep's JSON ({"data": [{"wav": ..., "caption": ...}]}) or a CSV with path,caption columns."""
    path = Path(path)
    base = Path(data_root) if data_root else path.parent
    if path.suffix.lower() == ".json":
        with open(path) as f:
            rows = [(r["wav"], r["caption"]) for r in json.load(f)["data"]]
    else:
        with open(path, newline="") as f:
            rows = [(r["path"], r["caption"]) for r in csv.DictReader(f)]
    return [Item(str(p if os.path.isabs(p) else base / p), label_text(c)) for p, c in rows]


def read_dataset(spec: dict) -> list[Item]:
    """One entry of a training config's `data` list: {type: esc50|folders|manifest, path: ..., ...};
    `from_epoch: N` holds its clips out of training mixtures before epoch N."""
    kind = spec.get("type", "folders")
    if kind == "esc50":
        items = read_esc50(spec["path"], spec.get("folds"))
    elif kind == "folders":
        items = read_class_folders(spec["path"])
    elif kind == "manifest":
        items = read_manifest(spec["path"], spec.get("root"))
    else:
        raise ValueError(f"unknown dataset type '{kind}' (esc50, folders, manifest)")
    first = spec.get("from_epoch", 0)
    return [Item(item.path, item.label, first) for item in items] if first else items


class ClipBank:
    """All clips in memory at one sample rate, grouped by label (class-balanced sampling needs it)."""

    def __init__(self, items: list[Item], sample_rate: int, min_seconds: float = 0.25):
        self.sample_rate = sample_rate
        self.clips: list[np.ndarray] = []
        self.labels: list[str] = []
        self.by_label: dict[str, list[int]] = defaultdict(list)
        self.first_epoch: dict[int, int] = {}  # clip index -> first training epoch, where not 0
        for item in items:
            try:
                audio = read_mono(item.path, sample_rate)
            except AudioError:
                continue
            if audio.shape[-1] < min_seconds * sample_rate or not np.any(audio):
                continue
            if item.first_epoch:
                self.first_epoch[len(self.clips)] = item.first_epoch
            self.by_label[item.label].append(len(self.clips))
            self.clips.append(audio)
            self.labels.append(item.label)
        self.label_names = sorted(self.by_label)

    def __len__(self) -> int:
        return len(self.clips)
