"""`lass evaluate`: score a model on a protocol, beside the oracle masks, and write tables and plots."""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..signals import signals_held
from ..metrics import bss_sdr, improvement, sdr, si_sdr
from ..stft import STFTConfig
from .oracle import oracle_estimates
from .protocols import (DEFAULT_TEMPLATE, Case, check_interferers, label_mixtures, mixture_list, query_text,
                        read_queries, stem_cases)


@dataclass
class Score:
    name: str
    label: str
    query: str
    sdri: float
    si_sdri: float
    sdr: float
    si_sdr: float
    bss_sdri: float | None = None
    irm_sdri: float | None = None
    psm_sdri: float | None = None
    seconds: float = 0.0
    level_db: float = 0.0  # the estimate's energy re. the mixture's (dB): far below it, the query found little
    interferers: str = ""  # the interferers' labels (label mixtures), "; "-separated
    negative: str = ""  # the negative query, if one was given
    files: str = ""  # the files the case was made of: the target's first (Case.files)
    # --query-checks: the (first) interferer's class asked for, scored against that interferer; a class absent
    # from the mixture asked for, and its track's level re. the mixture (dB)
    interferer_query_sdri: float | None = None
    absent_query: str = ""
    absent_level_db: float | None = None


def score_case(separator, case: Case, oracle: bool = True, bss: bool = False, keep_audio: bool = False):
    """Separate one case with the engine and score it (and the oracle masks on the model's STFT)."""
    mixture = np.atleast_2d(case.mixture)
    target = np.atleast_2d(case.target)
    started = time.perf_counter()
    tracks = separator.separate_tensor(mixture, case.sample_rate, [case.query], case.negative, residual=False,
                                       band_hz=case.band_hz)
    seconds = time.perf_counter() - started
    estimate = next(iter(tracks.values()))
    est, ref, mix = estimate.reshape(-1), target.reshape(-1), mixture.reshape(-1)
    score = Score(case.name, case.label, case.query, float(improvement(sdr, est, ref, mix)),
                  float(improvement(si_sdr, est, ref, mix)), float(sdr(est, ref)), float(si_sdr(est, ref)),
                  seconds=seconds, level_db=tracks.levels_db[case.query],
                  interferers="; ".join(case.interferer_labels), negative=case.negative or "", files=case.files)
    if bss:
        score.bss_sdri = float(np.mean(improvement(bss_sdr, estimate, target, mixture)))
    if oracle:
        from ..audio import resample

        rate = separator.model.sample_rate
        sig = [resample(np.atleast_2d(a), case.sample_rate, rate) for a in (case.mixture, case.target, case.interference)]
        cfg = STFTConfig(separator.model.config.n_fft, separator.model.config.hop_length)
        mask_max = float(separator.model.config.network_args.get("mask_max", 1.0))
        oracles = oracle_estimates(sig[0], sig[1], sig[2], cfg, psm_max=mask_max)
        m, t = sig[0].reshape(-1), sig[1].reshape(-1)
        score.irm_sdri = float(improvement(sdr, oracles["irm"].reshape(-1), t, m))
        score.psm_sdri = float(improvement(sdr, oracles["psm"].reshape(-1), t, m))
    return score, (estimate if keep_audio else None)


def query_checks(separator, cases: list[Case], class_queries: dict[str, str],
                 scores: list[Score] | None = None) -> dict[str, float]:
    """Does the model follow the query? (a) Asking for the (first) interferer's class must return that
    interferer (SDRi measured against it alone); (b) asking for a class absent from the mixture must return
    little energy (output energy re. the mixture, dB). `class_queries`: each class's query, as the cases ask
    theirs. Each case's figures also go to its Score, if given."""
    interferer_gains, absent_levels = [], []
    for i, case in enumerate(cases):
        score = scores[i] if scores is not None else None
        mixture = np.atleast_2d(case.mixture)
        query = class_queries[case.interferer_labels[0]]
        est = separator.separate_tensor(mixture, case.sample_rate, [query], residual=False,
                                        band_hz=case.band_hz)[query]
        asked = case.interference if case.first_interferer is None else case.first_interferer
        ref = np.atleast_2d(asked).reshape(-1)
        interferer_gains.append(float(improvement(sdr, est.reshape(-1), ref, mixture.reshape(-1))))
        if score is not None:
            score.interferer_query_sdri = interferer_gains[-1]
        present = {case.label, *case.interferer_labels}
        absent = [lab for lab in class_queries if lab not in present]
        if not absent:
            continue
        row = int(case.name) if case.name.isdigit() else i  # its row in the full protocol, also under --limit
        query = class_queries[absent[row % len(absent)]]
        tracks = separator.separate_tensor(mixture, case.sample_rate, [query], residual=False, band_hz=case.band_hz)
        absent_levels.append(max(tracks.levels_db[query], -200.0))
        if score is not None:
            score.absent_query, score.absent_level_db = query, absent_levels[-1]
    out = {"interferer_query_sdri": float(np.mean(interferer_gains))}
    if absent_levels:
        out["absent_query_energy_db"] = float(np.mean(absent_levels))
        out["absent_query_energy_db_median"] = float(np.median(absent_levels))
    return out


def aggregate(scores: list[Score], how: str = "mean") -> dict[str, float]:
    """Mean over cases, or the AudioSet-style mean over classes of per-class medians.

    Besides the improvements: the estimates' own SDR and SI-SDR (what AudioSep publishes for SI-SDR), and
    `silent_sdri`, what an output of digital silence would score (its SDR is 0 dB, so minus the mixture's): where
    targets are far quieter than their mixtures (stems), silence beats a model that does take something out."""
    keys = ["sdri", "si_sdri", "sdr", "si_sdr", "silent_sdri", "bss_sdri", "irm_sdri", "psm_sdri"]
    out: dict[str, float] = {}
    for key in keys:
        pairs = [(s.label, value) for s in scores
                 if (value := s.sdri - s.sdr if key == "silent_sdri" else getattr(s, key)) is not None]
        if not pairs:
            continue
        values = [value for _, value in pairs]
        if how == "class-median":
            by_class: dict[str, list[float]] = {}
            for label, value in pairs:
                by_class.setdefault(label, []).append(value)
            out[key] = float(np.mean([np.median(v) for v in by_class.values()]))
        else:
            out[key] = float(np.mean(values))
        out[key + "_median"] = float(np.median(values))
    if "irm_sdri" in out and out["irm_sdri"] > 0:
        out["fraction_of_irm"] = out["sdri"] / out["irm_sdri"]
    if "psm_sdri" in out and out["psm_sdri"] > 0:
        out["fraction_of_psm"] = out["sdri"] / out["psm_sdri"]
    out["cases"] = len(scores)
    return out


def per_class(scores: list[Score]) -> dict[str, dict[str, float]]:
    table: dict[str, list[Score]] = {}
    for s in scores:
        table.setdefault(s.label, []).append(s)
    return {label: {"n": len(v), "sdri": float(np.mean([s.sdri for s in v])),
                    "si_sdri": float(np.mean([s.si_sdri for s in v]))} for label, v in sorted(table.items())}


def markdown_summary(title: str, summary: dict[str, float], classes: dict[str, dict[str, float]] | None,
                     how: str = "mean") -> str:
    central = "mean of class medians" if how == "class-median" else "mean"
    lines = [f"## {title}", "", f"| metric | {central} | median |", "|---|---|---|"]
    names = {"sdri": "SDRi (SNR-style, AudioSep)", "si_sdri": "SI-SDRi", "sdr": "SDR of the estimates",
             "si_sdr": "SI-SDR of the estimates", "silent_sdri": "SDRi of digital silence (a baseline)",
             "bss_sdri": "SDRi (bss_eval, 512 taps)", "irm_sdri": "oracle IRM SDRi", "psm_sdri": "oracle PSM SDRi"}
    for key, name in names.items():
        if key in summary:
            mean, median = (f"{summary[k] if abs(summary[k]) >= 0.005 else 0.0:.2f}" for k in (key, key + "_median"))
            lines.append(f"| {name} | {mean} dB | {median} dB |")
    for key, name in (("fraction_of_irm", "model / IRM"), ("fraction_of_psm", "model / PSM")):
        if key in summary:
            lines.append(f"| {name} | {100 * summary[key]:.0f} % | |")
    over = " (mean over mixtures)" if how == "class-median" else ""
    if "interferer_query_sdri" in summary:
        lines.append(f"| query = (first) interferer's class: SDRi w.r.t. that interferer{over} | "
                     f"{summary['interferer_query_sdri']:.2f} dB | |")
    if "absent_query_energy_db" in summary:
        lines.append(f"| query = absent class: output energy re. mixture{over} | "
                     f"{summary['absent_query_energy_db']:.1f} dB "
                     f"| {summary['absent_query_energy_db_median']:.1f} dB |")
    lines.append(f"\n{summary['cases']} case{'' if summary['cases'] == 1 else 's'}.")
    if classes:
        lines += ["", "| class | n | SDRi | SI-SDRi |", "|---|---|---|---|"]
        lines += [f"| {c} | {v['n']} | {v['sdri']:.2f} | {v['si_sdri']:.2f} |" for c, v in classes.items()]
    return "\n".join(lines) + "\n"


# the files an evaluation writes per protocol, by these names only (-f removes nothing else)
PLOTS = {"per_class": "per_class_sdri.png", "histogram": "sdri_hist.png", "spectrograms": "spectrograms.png"}
SAVED_AUDIO = {"mixture": "_mixture.wav", "target": "_target.wav", "estimate": "_estimate.wav"}


def write_plots(out: Path, scores: list[Score], classes, examples: list[tuple[Case, np.ndarray]], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if classes and len(classes) > 1:
        fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(classes)), 4))
        names = list(classes)
        ax.bar(range(len(names)), [classes[n]["sdri"] for n in names], color="tab:blue")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_ylabel("SDRi (dB)")
        ax.set_title(f"{title}: SDRi per class")
        fig.tight_layout()
        fig.savefig(out / PLOTS["per_class"], dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist([s.sdri for s in scores], bins=30, alpha=0.8, label="model")
    if scores and scores[0].irm_sdri is not None:
        ax.hist([s.irm_sdri for s in scores], bins=30, alpha=0.5, label="oracle IRM")
    ax.set_xlabel("SDRi (dB)")
    ax.set_ylabel("mixtures")
    ax.legend()
    ax.set_title(f"{title}: SDRi distribution")
    fig.tight_layout()
    fig.savefig(out / PLOTS["histogram"], dpi=110)
    plt.close(fig)
    if examples:
        fig, axes = plt.subplots(len(examples), 3, figsize=(12, 2.6 * len(examples)), squeeze=False)
        for row, (case, estimate) in zip(axes, examples):
            for ax, (name, sig) in zip(row, (("mixture", case.mixture), ("reference", case.target),
                                             ("estimate", estimate))):
                mono = np.atleast_2d(sig).mean(0)
                with np.errstate(divide="ignore"):  # digital silence has no finite dB value
                    ax.specgram(mono, NFFT=512, Fs=case.sample_rate, noverlap=384, cmap="magma", vmin=-120)
                ax.set_title(f"{name}: {case.query}" if name == "mixture" else name, fontsize=8)
                ax.set_ylabel("Hz", fontsize=7)
        fig.tight_layout()
        fig.savefig(out / PLOTS["spectrograms"], dpi=100)
        plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("what to evaluate on (one of)")
    src.add_argument("--data", help="labelled set: ESC-50 layout (meta.csv) or a folder per class")
    src.add_argument("--list", dest="mixture_list",
                     help="mixture list CSV: AudioSep's, CLAPSep's or DCASE 2024's layout, or mixtures already made "
                          "(columns mixture, target, caption; or AudioSep's VGGSound list)")
    src.add_argument("--stems", help="folder of songs, each a 'mix.*' or '..._mix.*' file and its stems")
    p.add_argument("--data-root", default=".",
                   help="where the paths of --list are relative to (default: the current folder)")
    p.add_argument("--folds", type=int, nargs="+", default=None, help="ESC-50 folds (e.g. 4)")
    p.add_argument("--interferers", type=int, nargs="+", default=[1], help="interferers per mixture (e.g. 1 5)")
    p.add_argument("--snr", type=float, default=None,
                   help="target-to-interference ratio in dB (default 0; a DCASE list gives each row's)")
    p.add_argument("--template", default=None, help=f"query template (default '{DEFAULT_TEMPLATE}'; stems: '{{label}}')")
    p.add_argument("--queries", default=None, metavar="CSV",
                   help="--data: a CSV of label,query rows, each class asked by its own query instead of the "
                        "template (e.g. configs/unseen_phrasings.csv); the mixtures stay the same")
    p.add_argument("--negative", action="store_true",
                   help="also pass a negative query: label mixtures, an interferer's label; --list, the list's "
                        "negative_caption (CLAPSep's layout)")
    p.add_argument("--limit", type=int, default=None,
                   help="evaluate a deterministic subset of this many: label mixtures, a fixed sample of the full "
                        "protocol's (same names and interferers; a smaller limit's are among a larger one's); "
                        "--list, its first rows that are scored; --stems, the first stems")
    p.add_argument("--seed", type=int, default=0, help="seed of the label mixtures (default 0, the protocol's)")
    p.add_argument("-m", "--model", default=None, help="installed model name or .safetensors path (default: default)")
    p.add_argument("--mask-power", type=float, default=None,
                   help="override the model's inference mask power (below 1 softens masks)")
    p.add_argument("--query-anchor", type=float, default=None, metavar="WEIGHT",
                   help="override the weight of the model's training phrasings added to each query (0: the query "
                        "as the text encoder gives it)")
    p.add_argument("--input-level", type=_level_or_none, default=argparse.SUPPRESS, metavar="DB|none",
                   help="override the RMS level (dB) the network hears the input at; 'none': as given")
    p.add_argument("--segment", type=float, default=10.0,
                   help="seconds per model call (default 10, as in lass separate)")
    p.add_argument("--aggregate", choices=["mean", "class-median"], default="mean",
                   help="mean over mixtures (default), or the mean over classes of per-class medians (not for "
                        "--list, whose captions are not classes)")
    p.add_argument("--bss", action="store_true", help="also bss_eval SDR (512-tap filter), slower")
    p.add_argument("--no-oracle", action="store_true", help="skip the oracle IRM/PSM bounds")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument("--query-checks", action="store_true",
                   help="label mixtures: also query the interferer's class and an absent class")
    p.add_argument("--save-audio", type=int, default=0, metavar="N", help="write N separated examples")
    p.add_argument("-o", "--out", default=None,
                   help="output folder (default: evaluation/NAME, NAME being the --data or --stems folder's "
                        "or the --list file's)")
    p.add_argument("-f", "--force", action="store_true", help="replace an earlier evaluation in the output folder")
    p.add_argument("--compare", default=None, metavar="DIR",
                   help="an earlier evaluation's output folder, of the same protocol (another model, say): also "
                        "print the paired differences from its scores, case by case")
    p.add_argument("-d", "--device", default="auto", help="auto, cpu, cuda or cuda:N")


def default_output(args) -> Path:
    """evaluation/<what is evaluated>: each data set, list or song folder its own, as `lass separate` gives
    each input its own folder."""
    source = Path(os.path.abspath(args.data or args.mixture_list or args.stems or ""))  # `--data ..`: its name
    name = (source.stem if args.mixture_list else source.name) or "evaluation"
    return Path("evaluation") / name


def check_output_outside_data(out: Path, args) -> None:
    """Saved audio inside a folder of class folders is read as one more class by the next evaluation (`lass
    evaluate --data .` wrote evaluation/ into the data, and the next run scored 'evaluation' as a class); data inside
    a folder the evaluation writes (OUT/audio/..., OUT/plots_...) would be written into."""
    option, source = next(((option, value) for option, value in (
        ("--data", args.data), ("--stems", args.stems), ("--data-root", args.mixture_list and args.data_root))
        if value), (None, None))
    if source is None:
        return
    data, written = Path(os.path.realpath(source)), Path(os.path.realpath(out))
    if option != "--data-root" and written.is_relative_to(data):  # a list's root is often the current folder
        raise ValueError(f"the output folder {out} is inside the {option} folder {source}: its files would be read "
                         f"as data by the next evaluation; give -o a folder outside it")
    inside = data.relative_to(written).parts[:1] if data.is_relative_to(written) else ()
    if inside and (inside[0] == "audio" or inside[0].startswith("plots_")):
        raise ValueError(f"the {option} folder {source} is inside {Path(out) / inside[0]}, where the evaluation "
                         f"writes its audio or plots: give -o another folder")


PROTOCOL_KEY = re.compile(r"\d+int|list|stems")  # the protocols' file names: scores_1int.csv, plots_list, audio/stems


def read_summary(folder: Path) -> dict | None:
    """The summary.json of an earlier `lass evaluate` in `folder` (None: there is none); ValueError where the file
    is not one (another tool's, or a damaged one), so that none of its keys is taken for a protocol's."""
    path = folder / "summary.json"
    if not path.exists():
        return None
    try:
        written = json.loads(path.read_text())
    except (ValueError, OSError):
        written = None
    if not (isinstance(written, dict) and written and all(
            isinstance(v, dict) and isinstance(v.get("summary"), dict) for v in written.values())):
        raise ValueError(f"{path} was not written by lass evaluate (or is damaged)")
    return written


def earlier_evaluation(out: Path, force: bool) -> list[str] | None:
    """The protocol keys of an earlier `lass evaluate` in `out` (None: there is none): refused unless forced, so
    that none of its files is taken for this run's (an earlier ESC-50 run's scores beside this run's summary)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"-o {out}: a file, not a folder")
    try:
        written = read_summary(out)
    except ValueError:
        raise FileExistsError(f"{out} holds a summary.json that lass evaluate did not write (or a damaged one): "
                              f"choose another -o, or remove it") from None
    if written is None:
        return None
    if not force:
        raise FileExistsError(f"{out} holds an earlier evaluation (summary.json); -f/--force replaces it, or choose "
                              f"another -o")
    return [key for key in written if PROTOCOL_KEY.fullmatch(key)]


def publish_evaluation(stage: Path, out: Path) -> None:
    """Moves a finished evaluation's files from its staging folder into `out`, file by file, each replacing its
    namesake: no folder of `out` is removed (an earlier evaluation's are, by `clear_earlier_evaluation` under -f)."""
    for source in sorted(stage.rglob("*")):
        if source.is_file():
            target = out / source.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    shutil.rmtree(stage)


def clear_earlier_evaluation(out: Path, keys: list[str]) -> None:
    """Removes the files an earlier evaluation wrote under `out` (its summary, and each protocol's scores, plots
    and audio, by the names lass gives them), nothing else: a folder is removed only once it is empty."""
    for name in ("summary.json", "summary.md", *(f"scores_{key}.csv" for key in keys)):
        (out / name).unlink(missing_ok=True)
    for key in keys:
        for folder, ours in ((out / f"plots_{key}", lambda name: name in PLOTS.values()),
                             (out / "audio" / key, lambda name: name.endswith(tuple(SAVED_AUDIO.values())))):
            if folder.is_dir() and not folder.is_symlink():
                for file in folder.iterdir():
                    if file.is_file() and ours(file.name):
                        file.unlink()
                with contextlib.suppress(OSError):  # the user's own files kept it
                    folder.rmdir()
    with contextlib.suppress(OSError):
        (out / "audio").rmdir()


def _level_or_none(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a level in dB or 'none', got {text!r}") from None


def _protocols(args, model_rate: int):
    from ..datasets import ClipBank, esc50_meta, read_class_folders, read_esc50

    if args.data:  # one of the three: _check_options
        root = Path(args.data)  # a folder: checked before the model loads (run_from_args)
        esc50 = esc50_meta(root) is not None
        if args.folds and not esc50:  # a folder per class has no folds: evaluating all of it would mislead
            raise ValueError(f"--folds needs the ESC-50 layout (meta.csv), which {root} does not have; "
                             f"without --folds its class folders are used")
        items = read_esc50(root, args.folds) if esc50 else read_class_folders(root)  # class folders: some, or an error
        if not items:
            raise ValueError(f"--data {root}: no clips listed in meta.csv for folds {args.folds or 'any'}")
        if esc50 and not args.folds and (args.model or "default") == "default":  # the protocol scores fold 4 alone
            print(f"lass: note: no --folds: every fold in {root} is evaluated; the bundled model was trained on "
                  f"ESC-50 folds 1-3, so only fold 4 (--folds 4) is unheard by it", file=sys.stderr)
        bank = ClipBank(items, model_rate)
        if len(bank.label_names) < 2:  # every clip left out (silent, too short), or one class: nothing to mix
            classes = len(bank.label_names)
            left_out = " (the lines above say which clips were left out)" if len(bank) < len(items) else ""
            raise ValueError(f"--data {root}: {classes} class{'es' * (classes != 1)} with usable clips, and mixtures "
                             f"need two{left_out}")
        which = f"{root.name} folds {args.folds or 'all'}" if esc50 else f"{root.name} ({len(bank.label_names)} classes)"
        # each class's query: its --queries row, or the template with its name
        template = read_queries(args.queries, bank.label_names) if args.queries else args.template or DEFAULT_TEMPLATE
        class_queries = {label: query_text(template, label) for label in bank.label_names}
        if args.queries:
            which += f", queries from {Path(args.queries).name}"
        for n in args.interferers:  # every count checked before any is scored
            check_interferers(bank, n)
        for n in args.interferers:
            yield (f"{which}, {n} interferer{'s' if n > 1 else ''}, {args.snr or 0.0:g} dB",
                   f"{n}int", label_mixtures(bank, n, args.snr or 0.0, args.seed, template, args.limit,
                                             args.negative, rows_of_full=True), class_queries)
    elif args.mixture_list:
        yield (Path(args.mixture_list).name, "list",
               mixture_list(args.mixture_list, args.data_root, model_rate, args.snr, args.limit, args.negative), None)
    else:
        yield (f"stems: {Path(args.stems).name}", "stems",
               stem_cases(args.stems, args.template or "{label}", limit=args.limit), None)


# what each protocol takes from the options that shape mixtures and queries; any other given is refused
PROTOCOL_OPTIONS = {
    "list": ({"--data-root", "--snr", "--negative", "--limit"},
             "a list names each mixture's sources or the mixture itself, and its caption"),
    "stems": ({"--template", "--limit"}, "each stem is scored in its own song's mix, queried by its name"),
}


def _check_options(args) -> None:
    if len([x for x in (args.data, args.mixture_list, args.stems) if x]) != 1:
        raise ValueError("give exactly one of --data, --list or --stems")
    given = {"--data-root": args.data_root != ".", "--folds": args.folds is not None,
             "--interferers": args.interferers != [1], "--seed": args.seed != 0,
             "--template": args.template is not None, "--queries": args.queries is not None,
             "--negative": args.negative, "--snr": args.snr is not None,
             "--query-checks": args.query_checks, "--limit": args.limit is not None}
    protocol = "list" if args.mixture_list else "stems" if args.stems else "data"
    if protocol in PROTOCOL_OPTIONS:
        takes, why = PROTOCOL_OPTIONS[protocol]
        unused = [option for option, on in given.items() if on and option not in takes]
        if unused:
            raise ValueError(f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to "
                             f"--{protocol} ({why})")
    elif given["--data-root"]:
        raise ValueError("--data-root does not apply to --data (it is where the paths of a --list are taken from)")
    if args.queries is not None and args.template is not None:
        raise ValueError("give --template or --queries, not both: --queries names each class's whole query")
    if args.snr is not None and not math.isfinite(args.snr):
        raise ValueError(f"--snr must be a number of dB, got {args.snr}")


def settings(args, separator) -> dict:
    """How an evaluation was made, kept beside its scores: what another run must repeat to compare."""
    import torch

    from ..models import registry

    config = separator.model.config
    model_file = registry.resolve(args.model)
    out = {"lass": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "model": args.model or registry.DEFAULT_MODEL, "model_file": str(model_file),
           "model_sha256": hashlib.sha256(Path(model_file).read_bytes()).hexdigest(),  # the weights, not the name
           "model_name": config.name, "mask_power": config.mask_power, "input_level_db": config.input_level_db,
           "query_anchor": config.query_anchor if separator.model.vocabulary is not None else None,
           "segment": args.segment, "aggregate": args.aggregate, "limit": args.limit}
    if args.data:
        template = None if args.queries else args.template or DEFAULT_TEMPLATE
        out.update(data=args.data, folds=args.folds, template=template, queries=args.queries, snr_db=args.snr or 0.0,
                   seed=args.seed, negative=args.negative)
    elif args.mixture_list:
        from ..datasets import read_table
        from .protocols import list_layout

        name, layout = list_layout(args.mixture_list, *read_table(args.mixture_list))
        ratio = "each row's" if layout.snr else "as made" if layout.mixture else args.snr or 0.0
        out.update(list=args.mixture_list, layout=name, data_root=args.data_root, snr_db=ratio,
                   negative=args.negative)
    else:
        out.update(stems=args.stems, template=args.template or "{label}")
    return out


# settings that decide which mixtures and queries a protocol holds: two evaluations compare case by case only if
# these agree (the model, its mask power, input level and query anchor are what a comparison is for)
SAME_CASES = ("folds", "template", "queries", "snr_db", "seed", "negative", "layout")
SOURCES = ("data", "list", "stems")  # which protocol; with data_root, the paths that a case's files stand in for


def earlier_scores(folder: str | Path, made: dict) -> tuple[dict, dict[str, dict[tuple[str, str], dict]]]:
    """An earlier evaluation to compare with (`--compare`): its settings and, per protocol, its score rows by
    (case, query). Read before this run writes anything, since it may replace that folder (-f)."""
    folder = Path(folder)
    try:
        results = read_summary(folder)
    except ValueError:
        raise ValueError(f"--compare {folder}: summary.json is not a lass evaluation's") from None
    if results is None:
        raise FileNotFoundError(f"--compare {folder}: no earlier evaluation there (summary.json)")
    theirs = next(iter(results.values())).get("settings")
    if not isinstance(theirs, dict):  # written by a lass that did not record them: nothing to compare cases by
        raise ValueError(f"--compare {folder}: its summary.json has no settings (an older lass): evaluate that "
                         f"model again to compare with it")
    kind = lambda settings: next((key for key in SOURCES if settings.get(key)), None)  # noqa: E731
    if kind(theirs) != kind(made):
        raise ValueError(f"--compare {folder}: it evaluated --{kind(theirs)} {theirs.get(kind(theirs))}, and this run "
                         f"--{kind(made)}: compare evaluations of the same protocol")
    rows = {}
    for key in results:
        path = folder / f"scores_{key}.csv"
        if path.is_file():
            with open(path, newline="") as f:
                rows[key] = {(row["name"], row["query"]): row for row in csv.DictReader(f)}
    keys = list(SAME_CASES)
    if not all("files" in row for table in rows.values() for row in table.values()):  # an older lass: the paths
        keys += [*SOURCES, "data_root"]
    differ = [key for key in keys if key in theirs and not _same_setting(key, theirs[key], made.get(key))]
    if differ:
        raise ValueError(f"--compare {folder}: it was made with other mixtures or queries ("
                         + ", ".join(f"{key} {theirs.get(key)!r} there, {made.get(key)!r} here" for key in differ)
                         + "): compare evaluations of the same protocol")
    return theirs, rows


def _same_setting(key: str, theirs, mine) -> bool:
    if key in (*SOURCES, "data_root") and isinstance(theirs, str) and isinstance(mine, str):  # one file, two names
        return os.path.realpath(theirs) == os.path.realpath(mine)
    return theirs == mine


def _source_root(settings: dict) -> str:
    """The folder a protocol's files are read from: --data, --stems, or a list's --data-root."""
    return os.path.realpath(settings.get("data") or settings.get("stems") or settings.get("data_root") or ".")


def check_same_cases(cases: list[Case], earlier: dict[tuple[str, str], dict], folder, theirs: dict,
                     made: dict) -> None:
    """Cases paired by name and query must be made of the same files (a list edited, or read from elsewhere): the
    same paths, or the same paths under each evaluation's data folder (moved, or reached by a link)."""
    def where(files: str, root: str) -> list[tuple[str, str]]:
        paths = [os.path.realpath(path) for path in files.split("; ")]
        return [(path, os.path.relpath(path, root)) for path in paths]

    for case in cases:
        row = earlier.get((case.name, case.query))
        if row is None or "files" not in row:
            continue
        mine, other = where(case.files, _source_root(made)), where(row["files"], _source_root(theirs))
        if [a for a, _ in mine] != [a for a, _ in other] and [r for _, r in mine] != [r for _, r in other]:
            raise ValueError(f"--compare {folder}: case {case.name} ({case.query!r}) was made of other files there "
                             f"({row['files']}; here {case.files}): compare evaluations of the same mixtures")


def paired_difference(scores: list[Score], earlier: dict[tuple[str, str], dict]) -> dict[str, float]:
    """This run's scores minus an earlier run's on the same cases: mean, standard error, and how many cases are
    better (by more than 0.01 dB) or level."""
    pairs = [(s, earlier[(s.name, s.query)]) for s in scores if (s.name, s.query) in earlier]
    out: dict[str, float] = {"cases": len(pairs)}
    for key in ("sdri", "si_sdri"):
        diff = np.array([getattr(s, key) - float(row[key]) for s, row in pairs])
        if not len(diff):
            continue
        out[key] = float(diff.mean())
        out[key + "_se"] = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else None
        out[key + "_better"] = int(np.sum(diff > 0.01))
        out[key + "_level"] = int(np.sum(np.abs(diff) <= 0.01))
    return out


def comparison(scores: list[Score], key: str, folder, theirs: dict, rows: dict) -> tuple[str, dict | None]:
    """What --compare says of one protocol, and what summary.json keeps of it."""
    against = (f"{folder} ({theirs.get('model_file')}, SHA-256 {str(theirs.get('model_sha256'))[:12]}, mask power "
               f"{theirs.get('mask_power')}, query anchor {theirs.get('query_anchor') or 'none'})")
    if key not in rows:
        return f"against {against}: it has no scores_{key}.csv", None
    diff = paired_difference(scores, rows[key])
    if not diff["cases"]:
        return f"against {against}: no case in common", None
    here, there = len(scores), len(rows[key])
    if diff["cases"] != here or diff["cases"] != there:
        against += f"; {diff['cases']} cases in common, of {here} here and {there} there"
    return difference_line(diff, against), {"with": str(folder), "model_file": theirs.get("model_file"), **diff}


def difference_line(diff: dict[str, float], against: str) -> str:
    error = lambda key: "n/a" if diff[key + "_se"] is None else f"{diff[key + '_se']:.2f}"  # noqa: E731
    parts = [f"{name} {diff[key]:+.2f} ± {error(key)} dB ({diff[key + '_better']} of {diff['cases']} better, "
             f"{diff[key + '_level']} level)"
             for key, name in (("sdri", "SDRi"), ("si_sdri", "SI-SDRi")) if key in diff]
    return f"against {against} (paired, mean ± standard error): " + "; ".join(parts)


def run_from_args(args) -> int:
    from tqdm import tqdm

    from ..api import Separator
    from ..audio import write

    args.interferers = list(dict.fromkeys(args.interferers))  # `1 1` is one protocol (its files have one name)
    _check_options(args)
    if min(args.interferers) < 1:  # 0 scored a mixture of the target alone (-108 dB "SDRi"); below 0 crashed
        raise ValueError(f"--interferers: each count must be at least 1, got {min(args.interferers)}")
    for option, value in (("--seed", args.seed), ("--save-audio", args.save_audio)):
        if value < 0:
            raise ValueError(f"{option} must be 0 or more, got {value}")
    if args.mixture_list and args.aggregate == "class-median":
        raise ValueError("--aggregate class-median does not apply to --list: its captions are not classes")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if args.template is not None:  # without {label} every query would be the same text
        try:
            usable = args.template.format(label="") != args.template.format(label="x")
        except (KeyError, IndexError, ValueError):
            usable = False
        if not usable:
            raise ValueError(f"--template must contain {{label}} (where each class name goes) and no other "
                             f"braces; got {args.template!r}")
    if args.mixture_list and Path(args.mixture_list).is_dir():
        raise ValueError(f"--list {args.mixture_list}: a folder, where a CSV file is expected")
    if args.mixture_list and not Path(args.mixture_list).is_file():
        raise FileNotFoundError(f"--list: no such file: {args.mixture_list}")
    if args.data and Path(args.data).is_file():
        raise ValueError(f"--data {args.data}: a file; --data takes a folder (ESC-50's layout, or a folder per class), "
                         f"and --list a CSV list of mixtures")
    if args.data and not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data: no such folder: {args.data}")
    if not args.no_plots:  # optional extras: missing, one line now (lass.cli) rather than after the scoring
        import matplotlib  # noqa: F401
    if args.bss:
        import fast_bss_eval  # noqa: F401
    out = Path(args.out) if args.out else default_output(args)
    check_output_outside_data(out, args)
    earlier = earlier_evaluation(out, args.force)
    separator = Separator(args.model, device=args.device, segment=args.segment)
    if args.mask_power is not None:
        separator.model.set_mask_power(args.mask_power)
    if args.query_anchor is not None:
        separator.model.set_query_anchor(args.query_anchor)
    if hasattr(args, "input_level"):  # given: overrides the model's own
        separator.model.config.input_level_db = args.input_level
    separator.conditions("warm-up")  # the text encoder loads here, not inside the first case's timing
    config = separator.model.config
    made = settings(args, separator)
    compared = earlier_scores(args.compare, made) if args.compare else None
    level = "as given" if config.input_level_db is None else f"at {config.input_level_db:g} dB RMS"
    anchor = "none" if made["query_anchor"] is None else f"{made['query_anchor']:g}"
    report = [f"# Evaluation of `{config.name}` ({made['model_file']}; mask power {config.mask_power:g}, query anchor "
              f"{anchor}, the network hears the input {level})\n",
              "Settings: " + ", ".join(f"{key} {value}" for key, value in made.items() if value is not None) + "\n"]
    results = {}
    created = not out.exists()
    stage = None  # this run's files, put in place once all are written
    try:
        for title, key, cases, class_queries in _protocols(args, separator.model.sample_rate):
            if compared is not None and key in compared[1]:
                check_same_cases(cases, compared[1][key], args.compare, compared[0], made)
            if stage is None:  # once the data has loaded: a mistake leaves no empty folder
                try:
                    out.mkdir(parents=True, exist_ok=True)
                    stage = Path(tempfile.mkdtemp(prefix=".lass-evaluate-", suffix=".partial", dir=out))
                except OSError as err:
                    raise PermissionError(f"cannot create output folder {out}: {err.strerror}") from None
            scores, examples = [], []
            warm = cases[0]  # an untimed first pass: the real-time factor is the steady rate, not the start-up's
            separator.separate_tensor(np.atleast_2d(warm.mixture)[:, :2 * warm.sample_rate], warm.sample_rate,
                                      [warm.query], warm.negative, residual=False, band_hz=warm.band_hz)
            shown = {0, len(cases) // 3, 2 * len(cases) // 3}  # spectrogram examples spread over the set
            for i, case in enumerate(tqdm(cases, desc=title, leave=False, disable=not sys.stderr.isatty())):
                keep = i in shown or i < args.save_audio
                score, estimate = score_case(separator, case, oracle=not args.no_oracle, bss=args.bss, keep_audio=keep)
                scores.append(score)
                if i in shown:
                    examples.append((case, estimate))
                if i < args.save_audio:
                    folder = stage / "audio" / key
                    stem = case.name.replace("/", "_")
                    write(folder / f"{stem}{SAVED_AUDIO['mixture']}", np.atleast_2d(case.mixture), case.sample_rate)
                    write(folder / f"{stem}{SAVED_AUDIO['target']}", np.atleast_2d(case.target), case.sample_rate)
                    write(folder / f"{stem}{SAVED_AUDIO['estimate']}", estimate, case.sample_rate, subtype="float32")
            summary = aggregate(scores, args.aggregate)
            audio_seconds = sum(np.atleast_2d(c.mixture).shape[-1] / c.sample_rate for c in cases)
            summary["real_time_factor"] = sum(s.seconds for s in scores) / max(audio_seconds, 1e-9)
            if args.query_checks and class_queries:
                summary.update(query_checks(separator, cases, class_queries, scores))
            classes = per_class(scores) if key != "list" else None
            results[key] = {"title": title, "settings": made, "summary": summary, "per_class": classes}
            said_difference = None
            if compared is not None:
                said_difference, results[key]["compared"] = comparison(scores, key, args.compare, *compared)
            with open(stage / f"scores_{key}.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(Score.__dataclass_fields__))
                writer.writeheader()
                writer.writerows(s.__dict__ for s in scores)
            report.append(markdown_summary(title, summary, classes, args.aggregate))
            if said_difference:
                report.append(said_difference[0].upper() + said_difference[1:] + ".\n")
            rates = sorted({case.sample_rate for case in cases} - {separator.model.sample_rate})
            if rates and not args.no_oracle:  # the oracle masks work on the model's STFT, at its rate
                said = (f"The oracle masks are scored at the model's {separator.model.sample_rate} Hz, the model at "
                        f"the audio's own {', '.join(map(str, rates))} Hz: the model / IRM ratio compares the two.")
                report.append(said + "\n")
                print(said)
            if not args.no_plots:
                folder = stage / f"plots_{key}"
                folder.mkdir(exist_ok=True)
                write_plots(folder, scores, classes, examples, title)
            line = f"{title}: SDRi {summary['sdri']:.2f} dB, SI-SDRi {summary['si_sdri']:.2f} dB"
            if "irm_sdri" in summary:
                line += (f" | oracle IRM {summary['irm_sdri']:.2f} dB, PSM {summary['psm_sdri']:.2f} dB"
                         f" | model reaches {100 * summary.get('fraction_of_irm', 0):.0f}% of IRM")
            if "bss_sdri" in summary:
                line += f" | bss_eval SDRi {summary['bss_sdri']:.2f} dB"
            print(markdown_summary(title, summary, None, args.aggregate))
            print(line + f" | real-time factor {summary['real_time_factor']:.4f}\n")
            if said_difference:
                print(said_difference[0].upper() + said_difference[1:] + "\n")
            if summary["silent_sdri"] > summary["sdri"]:
                said = (f"Digital silence would score {summary['silent_sdri']:.2f} dB SDRi here, more than the model: "
                        f"the mixtures' own SDR against their targets is {-summary['silent_sdri']:.2f} dB, and an "
                        f"empty output scores 0 dB. Compare the estimates' own SDR and SI-SDR, too.")
                report.append(said + "\n")
                print(f"lass: note: {said}", file=sys.stderr)
        (stage / "summary.md").write_text("\n".join(report))
        (stage / "summary.json").write_text(json.dumps(results, indent=2))
        with signals_held():  # the earlier evaluation goes (-f) only now that this one is whole, and not by halves
            if earlier is not None:
                clear_earlier_evaluation(out, earlier)
            publish_evaluation(stage, out)
    except BaseException:  # interrupted or failed: the earlier evaluation stays as it was, and nothing of this one
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    print(f"tables{'' if args.no_plots else ' and plots'} written to {out}/")
    return 0
