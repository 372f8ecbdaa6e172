"""The `lass` command. It mirrors the Python API; every user mistake is one line and a non-zero exit."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from . import __version__

EXIT_USAGE = 2
EXIT_FAILED = 1
# a query's track this far below the input gets a note. On the held-out recordings (`lass evaluate --list
# configs/heldout_recordings.csv --data-root ../shared/data`, column level_db) the bundled model's tracks for the 12
# queries it knows came out 2.8-5.1 dB below the mixture, for the 4 it mutes 16-48 dB below; asked for a class
# absent from a fold-4 mixture it answers 17.4 dB below (median, --query-checks): either way the user should know
QUIET_TRACK_DB = -15.0
# two tracks more alike than this (correlation) hold the same sound. On 60 fold-4 mixtures (label_mixtures(...,
# limit=60, rows_of_full=True)) the tracks of the two sounds in each correlated 0.26 in the median and 0.95 at the
# 95th percentile (5 of 60 above 0.9: mixtures the model did not pull apart), a label's and its "the sound of"
# phrasing's 0.95 at least (scripts/track_correlation.py)
SAME_SOUND = 0.9


class UserError(Exception):
    """Reported as one line, no traceback."""


# packages of the optional extras (pyproject.toml) -> (extra, what needs it)
OPTIONAL_EXTRAS = {"lightning": ("train", "training runs on PyTorch Lightning"),
                   "matplotlib": ("eval", "for the plots; --no-plots writes none"),
                   "fast_bss_eval": ("eval", "for --bss")}


def _user_errors():
    from .audio import AudioError, OutputError
    from .models.registry import ModelNotFound
    from .query import QueryError

    return (UserError, AudioError, QueryError, ModelNotFound, FileExistsError, PermissionError,
            FileNotFoundError, ValueError, IsADirectoryError, OutputError)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _set_query_anchor(model, weight: float | None, what: str) -> None:
    """--query-anchor: set on the model, with a note where the model keeps no training phrasings to anchor to."""
    if weight is None:
        return
    model.set_query_anchor(weight)
    if weight > 0 and model.vocabulary is None:
        _say(f"lass: note: {what} keeps no training phrasings (it was written before query anchoring): "
             f"--query-anchor has no effect")


def cmd_separate(args) -> int:
    from .api import OutputOptions, Separator, check_output_options

    subtype = "float32" if args.float32 else "int24" if args.int24 else "int16"
    options = OutputOptions(directory=args.out, format=args.format, subtype=subtype, clip_mode=args.clip_mode,
                            residual=not args.no_residual, per_query_residual=args.per_query_residual,
                            force=args.force, sample_rate=args.sample_rate)
    if "-" in args.inputs and not os.path.exists("-"):
        raise UserError("reading audio from standard input (-) is not supported: give a file")
    check_output_options(options)
    _check_distinct_outputs(args.inputs, args.out)  # before the model loads: a pure check of the arguments
    separator = Separator(args.model, device=args.device, segment=args.segment, overlap=args.overlap,
                          progress=not args.quiet and sys.stderr.isatty())  # no bar drawn into a log file
    _set_query_anchor(separator.model, args.query_anchor, "the model")
    separator.conditions(args.query, args.negative)  # a bad query fails before any file is touched
    from .query import split_query

    for query in args.query:  # say how a "but not" was read, also under --quiet: a query is not parsed silently
        positive, left_out = split_query(query)
        if left_out:
            _say(f"lass: note: query '{_shown(query)}': extracting '{_shown(positive)}', leaving out "
                 + ", ".join(f"'{_shown(text)}'" for text in left_out) + " (as --negative would)")
    model_rate = separator.model.sample_rate
    _interrupt_on_sigterm()  # `timeout` and `kill` send SIGTERM: clean up as for Ctrl-C
    failures = []
    for path in args.inputs:
        started = time.perf_counter()
        try:
            result = separator.separate_to_files(path, args.query, args.negative, options, band_hz=args.band)
        except KeyboardInterrupt as err:  # first: matching _user_errors() would import
            done = args.inputs.index(path) - len(failures)
            if getattr(err, "signum", None):  # it came as this input's outputs were put in place: they all were
                _SIGNALS.append(err.signum)
                _say(f"lass: interrupted once the outputs of {path} were written ({done + 1} of {len(args.inputs)} "
                     f"inputs separated)")
                return _interrupted_exit()
            _say(f"lass: interrupted; no partial output of {path} was left behind"
                 f"{f' ({done} of {len(args.inputs)} inputs were separated before it)' if done else ''}")
            return _interrupted_exit()
        except _user_errors() as err:
            _say(f"lass: error: {err}")
            failures.append(path)
            continue
        elapsed = time.perf_counter() - started

        def note(text: str, path: str = path) -> None:  # under --quiet no line names the file: the note does
            _say(f"{path}: note: {text}" if args.quiet else f"  note: {text}")

        if not args.quiet:
            rtf = elapsed / result.duration if result.duration else 0.0
            _say(f"{path}: {result.duration:.1f} s separated in {elapsed:.1f} s (real-time factor {rtf:.3f})")
            for name, out in zip(_output_labels(args.query, result.outputs), result.outputs.values()):
                _say(f"  {name}: {out}")
        if args.band == "auto" and result.band_hz is not None and result.band_hz < result.input_sample_rate / 2:
            note(f"the input holds nothing above {result.band_hz / 1000:.1f} kHz (resampled up from a "
                 f"lower rate?): separated as such a recording is (--band full to trust the file's rate)")
        if result.declared_duration is not None:
            declared, held = result.declared_duration, result.duration
            how = (f"its header declares {declared:.1f} s and it holds {held:.1f} s" if declared - held >= 0.1 else
                   f"it holds {round((declared - held) * result.input_sample_rate)} samples fewer than its header "
                   f"declares")
            note(f"the file is cut short: {how} (an interrupted download or recording?); what it holds was "
                 f"separated")
        top, whose = min((result.input_sample_rate / 2, "input"), (model_rate / 2, "model"))
        if isinstance(args.band, float) and args.band >= top:
            note(f"--band {args.band:g} Hz is not below the {whose}'s Nyquist frequency, {top / 1000:g} kHz: it "
                 f"changes nothing (as --band full)")
        for query, level in result.levels_db.items():
            if level < QUIET_TRACK_DB:
                how = "is silent" if level == -math.inf else f"came out {-level:.0f} dB below the input"
                narrow = (f"; the input's rate ({result.input_sample_rate} Hz) is below the model's ({model_rate} Hz), "
                          f"so it has no upper band, by which some sounds are told apart"
                          if result.input_sample_rate < model_rate else
                          f"; the input holds nothing above {result.band_hz / 1000:.1f} kHz, so it has no upper band, "
                          f"by which some sounds are told apart" if result.band_hz is not None else "")
                note(f"'{_shown(query)}' {how}: little of the input matched it, so the sound may be absent, "
                     f"or described in words the model does not know (try other words){narrow}")
        if result.earlier_outputs and "residual" in result.outputs:
            names = ", ".join(Path(p).name for p in result.earlier_outputs[:3])
            more = f" and {len(result.earlier_outputs) - 3} more" if len(result.earlier_outputs) > 3 else ""
            note(f"{Path(result.outputs['residual']).parent} also holds {names}{more} (an earlier run's?); "
                 f"the residual is the input minus this run's tracks only")
        if "residual" in result.outputs:
            pairs = [(first, second, result.correlations[first][second])
                     for k, first in enumerate(result.levels_db) for second in list(result.levels_db)[k + 1:]]
            for first, second, correlation in pairs:
                loud = min(result.levels_db[first], result.levels_db[second]) >= QUIET_TRACK_DB
                if loud and correlation > SAME_SOUND:
                    note(f"'{_shown(first)}' and '{_shown(second)}' found the same sound "
                         f"(correlation {correlation:.2f}): they name one sound, or the model did not tell them "
                         "apart here; the residual is the input minus every track, so what they share is "
                         "subtracted twice: ask for one of them, or separate them in two runs")
        if result.gain != 1.0:
            note(f"outputs would clip; all tracks were scaled by {result.gain:.3f} "
                 "(--clip-mode clamp to clip instead)")
        elif result.clipped_samples:
            note(f"{result.clipped_samples} samples were clipped at full scale, as --clip-mode clamp asks (the "
                 f"default, --clip-mode rescale, scales all tracks by one gain instead)")
    if failures:
        _say(f"lass: {len(failures)} of {len(args.inputs)} inputs failed: {', '.join(failures)}")
        return EXIT_FAILED
    return 0


def _band(text: str) -> float | str:
    """--band: 'auto', 'full' (the file's rate alone) or a frequency in Hz, checked as the API checks it."""
    from .inference import check_band

    if text.strip().lower() in ("auto", "full"):
        return text.strip().lower()
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, full or a frequency in Hz, got {text!r}") from None
    try:
        check_band(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def _shown(query: str, limit: int = 60) -> str:
    """A query as a note quotes it: a long one shortened, so that a note stays a line."""
    return query if len(query) <= limit else query[: limit - 1] + "…"


def _output_labels(queries: list[str], outputs: dict[str, str]) -> list[str]:
    """What each written file holds, as the summary names it: a track by its query as typed (its file name may be
    another's, numbered: -q 'dog!' -q dog writes dog.wav and dog-2.wav), a per-query residual by its query too."""
    names = list(outputs)
    without = {f"{name}-residual": query for name, query in zip(names, queries)}  # --per-query-residual's
    return ([f"'{_shown(query)}'" for query in queries]
            + [f"residual without '{_shown(without[name])}'" if name in without else name
               for name in names[len(queries):]])


_SIGNALS: list[int] = []  # what interrupted the run: SIGTERM exits 143, Ctrl-C 130, as shells report them


def _interrupted_exit() -> int:
    import signal

    return 128 + (_SIGNALS[-1] if _SIGNALS else int(signal.SIGINT))


def _interrupt_on_sigterm() -> None:
    import signal

    def interrupt(signum, frame):
        _SIGNALS.append(int(signum))
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (lass called from a thread): leave the handler alone
        pass


def _check_distinct_outputs(inputs: list[str], out: str) -> None:
    """Each input writes to OUT/<its name without extension>/: two inputs there would overwrite each other."""
    from .api import output_folder_name

    seen: dict[str, str] = {}
    for path in inputs:
        stem = output_folder_name(path)
        if stem in seen:
            if os.path.abspath(seen[stem]) == os.path.abspath(path):
                raise UserError(f"{path} is given more than once")
            raise UserError(f"{seen[stem]} and {path} would both write to {Path(out) / stem}: rename one, "
                            "or separate them in two runs with different -o folders")
        seen[stem] = path


def cmd_models(args) -> int:
    from .models import registry

    rows = []
    for reason in registry.damaged_models().values():  # one damaged file must not hide the others
        _say(f"lass: skipping {reason}")
    bundled = {file.stem for file in registry.PACKAGE_DIR.glob("*.safetensors")}
    for name, path in registry.installed_models().items():
        if name in bundled and path.parent != registry.PACKAGE_DIR:  # one row, and it is not the bundled model
            _say(f"lass: note: {path} takes the place of the bundled '{name}' (rename it to keep both)")
        try:
            rows.append(registry.describe(name, path))
        except registry.ModelNotFound as err:  # one damaged file must not hide the others
            _say(f"lass: skipping {err}")
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=2))
        return 0
    if not rows:
        print("no models installed")
        return 0
    print(f"{'name (-m)':<16} {'rate':>6} {'params':>8} {'size':>8}  licence / source")
    for row in rows:
        print(f"{row.name:<16} {row.sample_rate:>6} {row.parameters / 1e6:>7.2f}M {row.size_mb:>6.1f}MB  "
              f"{row.licence} / {row.source}")
    for row in rows:  # a file exported with --name under another file name: -m takes the file's name
        if row.stored_name != row.name:
            _say(f"lass: note: {row.path} calls itself '{row.stored_name}'; -m takes its file name, {row.name}")
    return 0


def cmd_info(args) -> int:
    import platform

    import numpy
    import soundfile
    import torch
    import transformers

    from .models import registry

    print(f"lass {__version__}")
    print(f"python {platform.python_version()} ({platform.platform()})")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"cuda {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}")
    print(f"numpy {numpy.__version__}, soundfile {soundfile.__version__} (libsndfile {soundfile.__libsndfile_version__}), "
          f"transformers {transformers.__version__}")
    missing = registry.missing_user_folder()
    print(f"models: {', '.join(registry.installed_models()) or 'none'} "
          f"(user folder: {registry.user_model_dir()}{'; ' + missing if missing else ''})")
    from .train.machine import cpp_compiler_found, cpu_has_native_bf16

    native = cpu_has_native_bf16()
    print(f"training: native bf16 {'yes' if native else 'no'}, so precision auto -> "
          f"{'bf16-mixed' if native else '32-true'}; C++ compiler for optim.compile "
          f"{'found' if cpp_compiler_found() else 'not found (trains uncompiled)'}")
    return 0


def _checkpoints_in(folder: str, names: tuple[str, ...]) -> str:
    """'; its checkpoints: ...' for a run folder (or its checkpoints/ folder) given where a checkpoint file goes."""
    what = {"best.ckpt": "the best validation score", "last.ckpt": "the last step"}
    found = [path for sub in ("checkpoints", "") for name in names if (path := Path(folder) / sub / name).is_file()]
    return f"; its checkpoints: {', '.join(f'{path} ({what[path.name]})' for path in found)}" if found else ""


def cmd_train(args) -> int:
    from .train.config import load_config
    from .train.run import train

    if not os.path.isfile(args.config):
        raise UserError(f"config not found: {args.config}")
    config = load_config(args.config, args.set or [])
    _interrupt_on_sigterm()  # `kill PID` outside the training loop (loading, validation) exits 143 as well
    if args.resume and os.path.isdir(args.resume):
        raise UserError(f"--resume takes a checkpoint file, and {args.resume} is a folder"
                        f"{_checkpoints_in(args.resume, ('last.ckpt',))}")
    if args.resume and not os.path.isfile(args.resume):  # its contents are checked before the data loads
        raise UserError(f"checkpoint to resume not found: {args.resume}")
    if args.output:
        config.output_dir = args.output
    if args.print_config:
        from .train.config import check_trainer_settings, config_yaml
        from .train.run import settle_model

        check_trainer_settings(config.trainer)  # as training would, so the shown config is one it accepts
        settle_model(config, args.init, args.resume)  # the architecture, learning rate and query size it would use
        print(config_yaml(config), end="")
        return 0
    path = train(config, resume=args.resume, init=args.init, progress=not args.quiet)
    if path is not None:  # one process of a multi-process run says it
        _say(f"model written to {path}")
    return 0


def cmd_export(args) -> int:
    from .models import registry
    from .train.run import load_checkpoint

    if os.path.isdir(args.checkpoint):
        raise UserError(f"lass export takes a checkpoint file, and {args.checkpoint} is a folder"
                        f"{_checkpoints_in(args.checkpoint, ('best.ckpt', 'last.ckpt'))}")
    if not os.path.isfile(args.checkpoint):
        raise UserError(f"checkpoint not found: {args.checkpoint}")
    if not args.output.endswith(".safetensors"):  # `lass models` and the registry find models by this suffix
        raise UserError(f"-o {args.output}: a model file's name ends in .safetensors")
    if os.path.basename(args.output) == ".safetensors":  # a hidden file, listed by `lass models` as '.safetensors'
        raise UserError(f"-o {args.output}: give the model a name before .safetensors, e.g. mine.safetensors")
    if os.path.isdir(args.output):
        inside = os.path.join(args.output, "model.safetensors")
        raise UserError(f"-o {args.output} is a folder; give a file name, e.g. {inside}")
    if args.name is not None and not args.name.strip():
        raise UserError("--name: give a name, or leave --name out to keep the run's")
    if os.path.exists(args.output) and not args.force:  # an earlier export may be hours of training
        raise UserError(f"{args.output} exists; choose another -o, or -f/--force to replace it")
    model = load_checkpoint(args.checkpoint)
    if args.name:
        model.config.name = args.name
    if args.source:
        model.config.source = args.source
    if args.mask_power is not None:
        model.set_mask_power(args.mask_power)
    _set_query_anchor(model, args.query_anchor, args.checkpoint)
    path = registry.save_model(model, args.output)
    _say(f"wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation.run import run_from_args

    return run_from_args(args)


def cmd_bench(args) -> int:
    from .evaluation.bench import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lass", description="Language-queried audio source separation.")
    parser.add_argument("--version", action="version", version=f"lass {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("separate", help="extract the sounds described by text queries",
                       description="Extracts the sounds the queries describe. Each input writes OUT/<input name>/"
                                   "<query>.wav per query and residual.wav (the input minus every track), at the "
                                   "input's rate, length and channels.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("-q", "--query", action="append", required=True,
                   help="what to extract, in words (repeatable); 'speech, but not the music' also says what to "
                        "suppress (but not, except, without, with no, excluding, ', no', '(no ...)')")
    p.add_argument("-n", "--negative", action="append", help="what to suppress, for every query (repeatable)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default: separated)")
    p.add_argument("-m", "--model", default=None, help="installed model name or .safetensors path")
    p.add_argument("--format", default="wav", choices=["wav", "flac"], help="output format (default: wav)")
    depth = p.add_mutually_exclusive_group()
    depth.add_argument("--int24", action="store_true", help="24-bit integer output")
    depth.add_argument("--float32", action="store_true", help="32-bit float output (wav only)")
    p.add_argument("--clip-mode", default="rescale", choices=["rescale", "clamp"],
                   help="outputs that would clip: scaled together by one gain (default), or clipped")
    p.add_argument("--no-residual", action="store_true", help="do not write residual (everything else)")
    p.add_argument("--per-query-residual", action="store_true", help="also write mixture minus each target")
    p.add_argument("--segment", type=float, default=10.0, help="seconds per model call, 0.5 to 3600 (default 10)")
    p.add_argument("--overlap", type=float, default=0.25, help="crossfade fraction of a segment (default 0.25)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="output rate, 2000 to 768000 Hz (default: the input's)")
    p.add_argument("--band", default="auto", type=_band, metavar="auto|full|HZ",
                   help="the highest frequency the input holds: 'auto' (default) finds where audio resampled up "
                        "from a lower rate stops; 'full' trusts the file's rate; or a frequency in Hz "
                        "(4000 for telephone audio)")
    p.add_argument("--query-anchor", type=float, default=None, metavar="WEIGHT",
                   help="how far each query is pulled toward the phrasings the model was trained on (default: the "
                        "model's, 0.5 for the default model; 0: the words as given, for a sound the model was not "
                        "trained on that is worded like one it was)")
    p.add_argument("-d", "--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_separate)

    p = sub.add_parser("models", help="list installed models")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="versions, threads and devices, and the precision training would use here")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train or fine-tune a model from a YAML config")
    p.add_argument("--config", required=True, help="training config (YAML), e.g. configs/default.yaml")
    p.add_argument("--resume", default=None, help="Lightning checkpoint to resume from")
    p.add_argument("--init", default=None, help="start from an installed model (e.g. 'default') or file")
    p.add_argument("--output", default=None, help="run folder (default: the config's output_dir)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a setting: a trainer one by name (max_steps=100), any other by its path "
                        "(optim.lr=5e-4); repeatable")
    p.add_argument("--print-config", action="store_true",
                   help="print every setting (defaults and --set included) as YAML and exit without training")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("export", help="training checkpoint -> self-describing .safetensors model")
    p.add_argument("checkpoint", help="a training checkpoint (.ckpt) written by lass train")
    p.add_argument("-o", "--output", required=True, help="model file to write (must end in .safetensors)")
    p.add_argument("--name", default=None, help="model name stored in the file (default: the run's)")
    p.add_argument("--source", default=None, help="provenance text stored in the model file")
    p.add_argument("--mask-power", type=float, default=None,
                   help="store this inference mask power (measure it first: lass evaluate --mask-power)")
    p.add_argument("--query-anchor", type=float, default=None, metavar="WEIGHT",
                   help="store this query anchor weight (measure it first: lass evaluate --query-anchor)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing model file")
    p.set_defaults(func=cmd_export)

    from .evaluation.run import add_arguments as add_eval_arguments
    from .evaluation.bench import add_arguments as add_bench_arguments

    p = sub.add_parser("evaluate", help="score a model on the field's protocols, with oracle bounds")
    add_eval_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="speed and memory benchmarks against the AudioSep ResUNet30 baseline")
    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()  # imports torch (the evaluation's and bench's arguments): seconds, and Ctrl-C-able
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        _say("lass: interrupted")
        return _interrupted_exit()
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as err:  # first: matching _user_errors() imports torch, which an interrupt can cut short
        if getattr(err, "signum", None):  # stopped once its files were whole (lass.signals.StoppedBySignal)
            _SIGNALS.append(err.signum)
            _say("lass: interrupted, after finishing the files it was writing")
        else:
            _say("lass: interrupted")
        return _interrupted_exit()
    except _user_errors() as err:
        _say(f"lass: error: {err}")
        return EXIT_FAILED
    except ModuleNotFoundError as err:  # an optional extra that was not installed
        extra = OPTIONAL_EXTRAS.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        _say(f"lass: error: `lass {args.command}` needs {err.name.split('.')[0]} here ({extra[1]}): "
             f"pip install \"lass[{extra[0]}]\" (or, in a clone, pip install -e \".[{extra[0]}]\")")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
