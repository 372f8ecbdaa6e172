"""Readers for labelled audio: ESC-50 layout, a folder per class, and caption manifests.

Every reader returns a list of `Item(path, label)`; labels become queries through templates.
"""
from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import AUDIO_EXTENSIONS, AudioError, check_finite, info, read_mono


@dataclass(frozen=True)
class Item:
    path: str
    label: str
    first_epoch: int = 0  # training only: the first epoch whose mixtures may draw this clip
    join_seconds: float = 0.0  # join with the next clips of the label until at least this long (ClipBank)
    also: tuple[str, ...] = ()  # the clip's other captions (a manifest that lists a file once per caption)


def resolve_under(root: str | os.PathLike, name: str) -> str:
    """A path listed in a manifest or mixture list: `~` is the home folder, a relative one is under `root`."""
    path = Path(os.path.expanduser(name))
    return str(path if path.is_absolute() else Path(root) / path)


def is_song_mix(path: str | os.PathLike) -> bool:
    """By its name, a multitrack song's mixture ('mix.flac', '..._mix.flac'; not 'remix.wav'), whose stems lie
    beside it: the layout `--stems` scores. An audio file only ('mix.json' beside it is not one)."""
    path = Path(path)
    return path.suffix.lower() in AUDIO_EXTENSIONS and re.search(r"(^|[_\-. ])mix\.\w+$", path.name) is not None


def _is_song(mix: Path) -> bool:
    """A song's mix with its stems in a folder beside it (SiSEC's layout), not a clip of one sound that is named
    so ('kitchen_mix.wav' among a class's clips)."""
    if not is_song_mix(mix):
        return False
    stems = [p for p in mix.parent.rglob("*") if p.parent != mix.parent and p.suffix.lower() in AUDIO_EXTENSIONS]
    return len(stems) >= 2


def esc50_meta(root: str | os.PathLike) -> Path | None:
    """The ESC-50 table of a folder: meta.csv, or meta/esc50.csv as in ESC-50's own repository; None if neither."""
    for meta in (Path(root) / "meta.csv", Path(root) / "meta" / "esc50.csv"):
        if meta.exists():
            return meta
    return None


def _first_names(names: list[str]) -> str:
    return f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"


def label_text(label: str) -> str:
    """'chirping_birds' -> 'chirping birds'."""
    return " ".join(label.replace("_", " ").split())


def read_table(path: str | os.PathLike) -> tuple[list[dict[str, str]], list[str]]:
    """A CSV's rows and column names, the names stripped and lower-case ('Caption', ' src_wav'), as a spreadsheet
    writes them: utf-8-sig, since its "CSV UTF-8" starts with a byte-order mark that would join the first name."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: a folder, where a CSV file was expected")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            names = [(name or "").strip().lower() for name in reader.fieldnames or []]  # none: an empty file
            if names:
                reader.fieldnames = names
            rows = list(reader)
    except UnicodeDecodeError:  # an audio file or a spreadsheet given for the CSV
        raise ValueError(f"{path}: not a CSV file (not UTF-8 text)") from None
    except csv.Error as err:
        raise ValueError(f"{path}: not a readable CSV file ({err})") from None
    for i, row in enumerate(rows):  # csv puts cells beyond the header under None: a caption cut at a comma
        if any((cell or "").strip() for cell in row.get(None) or []):
            raise ValueError(f"{table_row(path, i)}: more cells than the header names ({', '.join(names)}); a "
                             f"cell with a comma (a caption, a path) must be in double quotes")
    return rows, [name for name in names if name]


def need_cells(path, index: int, row: dict[str, str], columns: tuple[str, ...]) -> None:
    """A table row (from `read_table`) must fill these columns: a short row, or an empty caption (which no query
    can be), is one line naming the row."""
    missing = [col for col in columns if not (row.get(col) or "").strip()]
    if missing:
        raise ValueError(f"{table_row(path, index)}: no {' and no '.join(missing)}")


def table_row(path, index: int) -> str:
    """How a message names row `index` (0: the first after the header) of a table from `read_table`."""
    return f"{path}, row {index + 1} after the header"


def _need_columns(path, found: list[str], needed: tuple[str, ...]) -> None:
    missing = [name for name in needed if name not in found]
    if missing:
        # none of them: most often a file without its header line, whose first row was read as one
        hint = f" (its first line must be the header: {','.join(needed)})" if len(missing) == len(needed) else ""
        raise ValueError(f"{path}: expected columns {', '.join(needed)}; found {', '.join(found) or 'none'}{hint}")


def read_esc50(root: str | os.PathLike, folds: list[int] | None = None) -> list[Item]:
    root = Path(root)
    meta = esc50_meta(root)
    if meta is None:
        raise FileNotFoundError(f"{root}: no ESC-50 meta.csv found")
    audio_dir = root / "audio"
    items, present = [], set()
    rows, columns = read_table(meta)
    _need_columns(meta, columns, ("filename", "fold", "category"))
    for i, row in enumerate(rows):
        try:
            fold = int(row["fold"])
        except (TypeError, ValueError):
            raise ValueError(f"{table_row(meta, i)}: fold {row['fold']!r} is not a number") from None
        present.add(fold)
        if folds and fold not in folds:
            continue
        items.append(Item(str(audio_dir / row["filename"]), label_text(row["category"] or "")))
    missing = sorted(set(folds or ()) - present)
    if missing:  # a source that quietly gave nothing would train or validate on less than it says
        raise ValueError(f"{root}: no clips in fold{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(str, missing))}; its {meta.name} has folds "
                         f"{', '.join(map(str, sorted(present)))}")
    return items


def read_class_folders(root: str | os.PathLike) -> list[Item]:
    """root/<label>/<clip>.wav ..."""
    root = Path(root)
    items, empty = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = [file for file in sorted(folder.rglob("*")) if file.suffix.lower() in AUDIO_EXTENSIONS]
        mixes = [file for file in found if _is_song(file)]
        if mixes:  # a song's mix and its stems are not clips of one sound called by the folder's name
            raise ValueError(f"{root}: {mixes[0].relative_to(root)} is a song's mix, so this is a folder of songs "
                             f"with stems, not of class folders: `lass evaluate --stems {root}` scores such songs; "
                             f"to train on stems, list them with their names in a manifest (configs/music_stems.csv)")
        items += [Item(str(file), label_text(folder.name)) for file in found]
        if not found:
            empty.append(folder.name)
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not items and loose:
        raise ValueError(f"{root}: audio files, but no class folders: the clips must be in a folder per class, "
                         f"{root}/<label>/*.wav")
    if not items:
        inside = f": its class folders ({_first_names(empty)}) are empty" if empty else ", and no class folders"
        raise ValueError(f"{root}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in it{inside}; the clips "
                         f"must be in a folder per class, {root}/<label>/*.wav")
    if empty and items:
        print(f"lass: {len(empty)} class folder{'s' * (len(empty) > 1)} of {root} without audio, left out: "
              f"{_first_names(empty)}", file=sys.stderr, flush=True)
    if loose:  # no class folder names their sound
        print(f"lass: {len(loose)} audio file{'s' * (len(loose) > 1)} at the top of {root}, outside the class "
              f"folders, left out (no folder names {'their' if len(loose) > 1 else 'its'} class): "
              f"{_first_names(loose)}", file=sys.stderr, flush=True)
    return items


def read_manifest(path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> list[Item]:
    """AudioSep's JSON ({"data": [{"wav": ..., "caption": ...}]}) or a CSV with path,caption columns."""
    path = Path(path)
    base = Path(data_root) if data_root else path.parent
    if path.suffix.lower() == ".json":
        with open(path, encoding="utf-8-sig") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: not JSON ({err})") from None
        entries = data.get("data") if isinstance(data, dict) else data  # AudioSep's {"data": [...]}, or the list
        if not isinstance(entries, list):
            raise ValueError(f'{path}: expected AudioSep\'s layout, {{"data": [{{"wav": ..., "caption": ...}}, ...]}}')
        rows = []
        for i, entry in enumerate(entries):
            file = entry.get("wav", entry.get("path")) if isinstance(entry, dict) else None
            caption = entry.get("caption") if isinstance(entry, dict) else None
            if not isinstance(file, str) or not file or not isinstance(caption, str) or not caption.strip():
                raise ValueError(f'{path}, entry {i + 1}: expected "wav" (a file) and "caption" (its text), got '
                                 f"{json.dumps(entry)[:120]}")
            rows.append((file, caption))
    else:
        table, columns = read_table(path)
        _need_columns(path, columns, ("path", "caption"))
        rows = []
        for i, row in enumerate(table):
            need_cells(path, i, row, ("path", "caption"))
            rows.append((row["path"].strip(), row["caption"]))
    # Clotho-style manifests list a file once per caption: one clip with its captions, not one class per caption,
    # which would mix a file with itself as its own interferer and ask for "absent" captions it holds
    captions: dict[str, list[str]] = {}
    for p, c in rows:
        text = label_text(c)
        same = captions.setdefault(resolve_under(base, p), [])
        if text and text.casefold() not in {seen.casefold() for seen in same}:  # the text encoder reads no case
            same.append(text)
    return [Item(file, texts[0], also=tuple(texts[1:])) for file, texts in captions.items() if texts]


# what each kind of data source takes besides type, path, from_epoch, caption and join_seconds
SOURCE_SETTINGS = {"esc50": ("folds",), "folders": (), "manifest": ("root",)}


def check_source(spec: dict) -> None:
    """A data source's settings, refused by name when unknown or malformed: a misspelt `folds` would otherwise
    be ignored silently, and an ESC-50 source would then train on every fold, the validation fold too."""
    import difflib

    kind = spec.get("type", "folders")
    if not spec.get("path"):
        close = difflib.get_close_matches("path", [str(key) for key in spec], n=1, cutoff=0.6)
        raise ValueError(f"a data source needs a path{f' (is {close[0]!r} meant to be path?)' if close else ''}: "
                         f"{spec!r}")
    if kind not in SOURCE_SETTINGS:
        raise ValueError(f"unknown data source type {kind!r} (esc50, folders, manifest)")
    known = ("type", "path", "from_epoch", "caption", "join_seconds", *SOURCE_SETTINGS[kind])
    for key in spec:
        owner = next((other for other, keys in SOURCE_SETTINGS.items() if key in keys and other != kind), None)
        if owner and "type" not in spec:
            raise ValueError(f"data source {spec.get('path')}: {key} is a setting of {owner} sources: add "
                             f"type: {owner} (without a type a source is a folder per class)")
        if key not in known:
            every = [*known, *(name for keys in SOURCE_SETTINGS.values() for name in keys if name not in known)]
            close = (difflib.get_close_matches(str(key), every, n=1) or [None])[0]
            whose = next((other for other, keys in SOURCE_SETTINGS.items() if close in keys and close not in known), "")
            hint = (f" (a setting of {owner} sources)" if owner else
                    f" (did you mean {close!r}{f', a setting of {whose} sources' if whose else ''}?)" if close else "")
            raise ValueError(f"data source {spec.get('path')}: unknown setting {key!r}{hint}; {kind} sources take "
                             f"{', '.join(known)}")
    folds = spec.get("folds")
    if isinstance(folds, int) and not isinstance(folds, bool):
        spec["folds"] = folds = [folds]  # `folds: 4` means fold 4
    if folds is not None and not (isinstance(folds, list) and folds and all(
            isinstance(f, int) and not isinstance(f, bool) for f in folds)):
        raise ValueError(f"data source {spec.get('path')}: folds must be a list of fold numbers such as [1, 2, 3], "
                         f"got {folds!r}")
    source_options(spec)


def source_options(spec: dict) -> tuple[str | None, float]:
    """A data source's `caption` (as a label, or None) and `join_seconds`, refused when malformed."""
    caption = spec.get("caption")
    if caption is not None and not (isinstance(caption, str) and caption.strip()):
        raise ValueError(f"data source {spec.get('path')}: caption must be a non-empty text, got {caption!r}")
    join = spec.get("join_seconds", 0.0)
    if isinstance(join, bool) or not isinstance(join, (int, float)) or join < 0:
        raise ValueError(f"data source {spec.get('path')}: join_seconds must be a number of seconds >= 0, "
                         f"got {join!r}")
    return (label_text(caption) if caption else None), float(join)


def read_dataset(spec: dict) -> list[Item]:
    """One entry of a training config's `data` list: {type: esc50|folders|manifest, path: ..., ...};
    `from_epoch: N` holds its clips out of training mixtures before epoch N; `caption: TEXT` labels every clip
    of the source with one caption (a folder of short words as "speech"); `join_seconds: S` joins the source's
    clips, in listing order within a label, until each is at least S long (ClipBank), so that crops of words
    shorter than a training crop hear a stream of them rather than one word in silence."""
    check_source(spec)
    kind = spec.get("type", "folders")
    if not os.path.exists(spec["path"]):
        raise FileNotFoundError(f"{kind} data not found: {spec['path']}")
    if kind == "esc50":
        items = read_esc50(spec["path"], spec.get("folds"))
    elif kind == "folders":
        if not os.path.isdir(spec["path"]):
            raise ValueError(f"{spec['path']}: a folders source is a folder of class folders; a CSV or JSON list of "
                             f"clips and captions is `type: manifest`")
        if esc50_meta(spec["path"]) is not None:
            raise ValueError(f"{spec['path']}: an ESC-50 folder ({esc50_meta(spec['path']).name}), not a folder per "
                             f"class: `type: esc50` reads it, with `folds: [...]` to choose folds")
        items = read_class_folders(spec["path"])
    else:
        if os.path.isdir(spec["path"]):
            raise ValueError(f"{spec['path']}: a manifest is a CSV (path,caption) or JSON file, not a folder; a "
                             f"folder of class folders is `type: folders`")
        items = read_manifest(spec["path"], spec.get("root"))
    label, join = source_options(spec)
    first = spec.get("from_epoch", 0)
    if not (first or label or join):
        return items
    return [Item(item.path, label or item.label, first, join, () if label else item.also) for item in items]


def merge_repeated_files(items: list[Item]) -> tuple[list[Item], list[str]]:
    """One item per file across sources, its first listing with every other caption as `also`: a file listed
    twice under two captions (a class folder and a manifest of the same clips) would be two classes, mixed with
    itself as its own interferer and asked for as "absent" while it plays. Returns the items and the files
    that were merged."""
    first: dict[str, int] = {}
    merged: list[Item] = []
    repeated: dict[str, None] = {}  # in order, once each
    for item in items:
        key = os.path.realpath(item.path)
        if key not in first:
            first[key] = len(merged)
            merged.append(item)
            continue
        kept = merged[first[key]]
        known = {text.casefold() for text in (kept.label, *kept.also)}  # the text encoder reads no case
        extra = tuple(dict.fromkeys(text for text in (item.label, *item.also) if text.casefold() not in known))
        merged[first[key]] = Item(kept.path, kept.label, min(kept.first_epoch, item.first_epoch), kept.join_seconds,
                                  kept.also + extra)
        repeated[kept.path] = None
    return merged, list(repeated)


MIN_CLIP_SECONDS = 0.25  # shorter clips are left out: too short to mix, or to score a separation of


class ClipBank:
    """All clips in memory at one sample rate, grouped by label (class-balanced sampling needs it)."""

    JOIN_GAP_SECONDS = 0.15  # silence between joined clips (an item's join_seconds), about a pause between words

    def __init__(self, items: list[Item], sample_rate: int, min_seconds: float = MIN_CLIP_SECONDS, kind: str = ""):
        """`kind`: which clips these are in the lines that say what was left out ("training", "validation")."""
        self.sample_rate = sample_rate
        self.clips: list[np.ndarray] = []
        self.labels: list[str] = []
        self.paths: list[str] = []  # each clip's file (a join: its last part's), for tables that name it
        self.by_label: dict[str, list[int]] = defaultdict(list)
        self.first_epoch: dict[int, int] = {}  # clip index -> first training epoch, where not 0
        self.captions: dict[str, list[str]] = {}  # label -> other captions its clips were given (manifests)
        # clip index -> the highest frequency it holds (its file's Nyquist), where that is below the bank's: label
        # mixtures of such clips carry it, so that `lass evaluate` separates them as the engine separates a file of
        # that rate (MaskSeparator.heard); training hears them as they are (docs/benchmarks.md)
        self.bands: dict[int, float] = {}
        pending: dict[tuple, list[np.ndarray]] = {}  # clips waiting to be joined, by (label, first_epoch)
        pending_bands: dict[tuple, float] = {}
        gap = np.zeros(int(self.JOIN_GAP_SECONDS * sample_rate), dtype=np.float32)
        skipped: list[str] = []  # left out, each kind said in one line at the end
        missing: list[str] = []
        silent: list[str] = []
        short: list[str] = []
        for item in items:
            if not os.path.isfile(item.path):
                missing.append(str(item.path))
                continue
            try:
                audio = read_mono(item.path, sample_rate)
                check_finite(audio, item.path)  # one NaN would turn every loss and metric it touches into NaN
                band = min(info(item.path).sample_rate, sample_rate) / 2
            except AudioError:
                skipped.append(str(item.path))
                continue
            if not np.any(audio):
                silent.append(str(item.path))
                continue
            if item.join_seconds:
                key = (item.label, item.first_epoch)
                parts = pending.setdefault(key, [])
                parts += [audio, gap]
                pending_bands[key] = max(pending_bands.get(key, 0.0), band)  # the widest part's band
                if sum(part.shape[-1] for part in parts) - len(gap) < item.join_seconds * sample_rate:
                    continue
                audio = np.concatenate(pending.pop(key)[:-1])
                band = pending_bands.pop(key)
            if not self._add(item, audio, min_seconds, band):
                short.append(str(item.path))
        for (label, first), parts in pending.items():  # the last, shorter join of each label
            if not self._add(Item("", label, first), np.concatenate(parts[:-1]), min_seconds,
                             pending_bands[(label, first)]):
                short.append(f"the last join of '{label}'")
        self.label_names = sorted(self.by_label)
        for left_out, why, hint in (
                (missing, "{are} not found",
                 "; where they come from a manifest, its paths are read against its `root` (or its own folder)"),
                (skipped, "{are} unreadable or {hold} NaN or infinite samples", ""),
                (silent, "{are} digital silence", ""),
                (short, f"{{are}} shorter than {min_seconds:g} s, too short to mix",
                 "; for training, a data source's `join_seconds` joins short clips such as single words "
                 "(docs/training.md)")):
            if left_out:
                one = len(left_out) == 1
                why = why.format(are="is" if one else "are", hold="holds" if one else "hold")
                print(f"lass: left out {len(left_out)} {kind + ' ' if kind else ''}clip{'' if one else 's'} that "
                      f"{why} (first: {left_out[0]})"
                      f"{hint}", file=sys.stderr, flush=True)
        lost = sorted({item.label for item in items} - set(self.by_label))
        if lost and self.by_label:  # a class is gone, not only some of its clips
            print(f"lass: {len(lost)} label{'s' * (len(lost) > 1)} lost every clip to the lines above, so "
                  f"{'they are' if len(lost) > 1 else 'it is'} left out: {_first_names(lost)}", file=sys.stderr,
                  flush=True)

    def _add(self, item: Item, audio: np.ndarray, min_seconds: float, band: float) -> bool:
        if audio.shape[-1] < min_seconds * self.sample_rate:
            return False
        if band < self.sample_rate / 2:
            self.bands[len(self.clips)] = band
        if item.first_epoch:
            self.first_epoch[len(self.clips)] = item.first_epoch
        self.by_label[item.label].append(len(self.clips))
        extra = self.captions.setdefault(item.label, [])
        extra += [text for text in item.also if text not in extra and text != item.label]
        self.clips.append(audio)
        self.labels.append(item.label)
        path = os.path.abspath(item.path) if item.path else ""
        self.paths.append(f"{path} (joined to clips before it)" if item.join_seconds else path)
        return True

    def band(self, index: int) -> float:
        """The highest frequency clip `index` holds (Hz): its file's Nyquist frequency, or the bank's."""
        return self.bands.get(index, self.sample_rate / 2)

    def __len__(self) -> int:
        return len(self.clips)
