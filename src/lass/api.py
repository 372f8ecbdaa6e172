"""The Python API: `Separator` loads a model and its query encoder once and separates arrays or files."""
from __future__ import annotations

import dataclasses
import itertools
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from . import audio
from .audio import AudioError, check_finite
from .inference import (MAX_SEGMENT, EngineConfig, InputSurvey, Resampler, check_band, heard_band, input_gain,
                        separate_array, separate_stream)
from .metrics import level_db
from .models import registry
from .query import QueryError, anchor_queries, build_condition, shared_text_encoder, split_query, validate_query
from .signals import signals_held

RESIDUAL = "residual"
MIN_SAMPLE_RATE = 2000  # a band of 1 kHz, the narrowest the engine hears (inference.MIN_BAND_HZ)
MAX_OUTPUT_RATE = 768000  # the highest rate audio hardware plays; above it, a typo (44100000) made a huge file
SAME_QUERY = 0.999  # cosine similarity above which two texts are one query to the encoder


def pick_device(device: str | torch.device | None = "auto") -> str:
    """'auto' (or None): CUDA where available, else the CPU; a torch.device is taken by its name."""
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"a device is 'auto', 'cpu', 'cuda' or 'cuda:N', got {type(device).__name__}")
    device = device.strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not re.fullmatch(r"cuda:\d+", device):
        raise ValueError(f"unknown device '{device}' (auto, cpu, cuda, cuda:N)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device} (--device) was asked for, but no CUDA device is available")
    return device


def query_list(queries: object, kind: str = "queries") -> list:
    """One query (text) or any iterable of them (a list, a tuple, a generator, a numpy array) -> a list, read
    once: a generator would otherwise be used up before its tracks are named."""
    if isinstance(queries, str):
        return [queries]
    if isinstance(queries, (bytes, bytearray)):
        raise QueryError(f"{kind} must be text, got {type(queries).__name__}: decode it first")
    if isinstance(queries, torch.Tensor) or (isinstance(queries, np.ndarray) and queries.dtype.kind not in "USO"):
        raise QueryError(f"{kind} must be text, got a {type(queries).__name__} of numbers (audio queries are not "
                         f"supported: describe the sound in words)")
    try:
        return list(queries)
    except TypeError:
        raise QueryError(f"{kind} must be text or a list of texts, got {type(queries).__name__}") from None


def slugify(text: str, limit: int = 60, max_bytes: int = 120) -> str:
    """Letters and digits of any script, lower case, joined by '-': file-safe on every platform. At most `limit`
    characters and `max_bytes` bytes of UTF-8, so that with its suffixes and a temporary's it stays under the
    255-byte name limit of common file systems (60 characters of a 4-byte script are 240 bytes)."""
    slug = re.sub(r"[\W_]+", "-", text.lower()).strip("-")[:limit]
    slug = slug.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")  # a character cut in two is dropped
    return slug.strip("-") or "query"


def output_names(queries: Sequence[str]) -> list[str]:
    """One file-safe name per query, unique, never 'residual' nor ending in '-residual', so that no
    query's file can take the name of the residual or of a per-query residual ('<name>-residual')."""
    names: list[str] = []
    for query in queries:
        base = slugify(query)
        if base == RESIDUAL or base.endswith(f"-{RESIDUAL}"):
            base = f"{base}-query"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def track_correlations(products: np.ndarray, queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """From the tracks' inner products (queries x queries): how alike each pair is, 0 where one is silent."""
    norms = np.sqrt(np.outer(np.diag(products), np.diag(products)))
    alike = np.divide(products, norms, out=np.zeros_like(products), where=norms > 0)
    return {a: {b: float(alike[q, r]) for r, b in enumerate(queries) if r != q} for q, a in enumerate(queries)}


class Tracks(dict):
    """name -> (channels, samples) float32 array; `sample_rate` says at which rate. `levels_db`: each query's
    track against the input, in dB, as `FileResult.levels_db`: far below the input (the command line notes
    below -15 dB), the sound may be absent or described in words the model does not know. `correlations`: how
    alike two queries' tracks are, as `FileResult.correlations`. `band_hz`: the band the network was told the
    input holds, as `FileResult.band_hz` (None for the whole band)."""

    def __init__(self, *args, sample_rate: int, levels_db: dict[str, float] | None = None,
                 correlations: dict[str, dict[str, float]] | None = None, band_hz: float | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.sample_rate = sample_rate
        self.band_hz = band_hz
        self.levels_db = levels_db if levels_db is not None else {}
        self.correlations = correlations if correlations is not None else {}


@dataclass
class OutputOptions:
    directory: str = "separated"
    format: str = "wav"
    subtype: str = "int16"  # int16 | int24 | float32
    clip_mode: str = "rescale"  # rescale | clamp
    residual: bool = True
    per_query_residual: bool = False
    force: bool = False
    sample_rate: int | None = None  # None: the input's rate


@dataclass
class FileResult:
    input: str
    outputs: dict[str, str] = field(default_factory=dict)
    sample_rate: int = 0  # the outputs'
    duration: float = 0.0
    input_sample_rate: int = 0
    # a file cut short (a WAV, an MP3): the duration its header declares (the outputs are as long as what it holds)
    declared_duration: float | None = None
    # the band the network was told the input holds, where below the model's (a file below the model's rate, or
    # content found to stop there: audio resampled up from a lower rate); None for the whole band
    band_hz: float | None = None
    gain: float = 1.0  # common gain applied to avoid clipping (1 = untouched)
    clipped_samples: int = 0
    # each query's track, by the query as given: its energy relative to the input's, in dB (-inf: silent)
    levels_db: dict[str, float] = field(default_factory=dict)
    # correlations[a][b]: how alike the tracks of queries a and b are (1: the same sound; 0 where one is silent).
    # The residual is the input minus every track, so two queries that find one sound take it out twice.
    correlations: dict[str, dict[str, float]] = field(default_factory=dict)
    # other audio files beside the outputs (an earlier run's tracks, say, kept as they were; not the input): the
    # residual is the input minus this run's tracks only
    earlier_outputs: list[str] = field(default_factory=list)


class Separator:
    """Load once, separate many times; one Separator may serve several threads.

    >>> sep = Separator()                                     # bundled default model, offline
    >>> tracks = sep.separate_file("mix.wav", ["a dog barking"])
    >>> tracks["a dog barking"].shape, tracks.sample_rate

    Queries are English text (the text encoder, all-MiniLM-L6-v2, was trained on English; it reads up to 128
    tokens, about 90 words). Audio queries are not supported.
    """

    def __init__(self, model: str | os.PathLike | None = None, device: str | torch.device | None = "auto",
                 segment: float = 10.0, overlap: float = 0.25, progress: bool = False,
                 callback: Callable[[int, int], None] | None = None):
        """`model`: an installed model's name (`lass models`) or a .safetensors file; None for the bundled default.
        `device`: "auto" (CUDA where available), "cpu", "cuda" or "cuda:N". `segment`: seconds per network call;
        `overlap`: the share of a segment crossfaded with the next (results differ by rounding only).
        `progress` (a progress bar on stderr) and `callback(samples done, samples in all)`: for
        `separate_to_files`, the call that takes long on long files."""
        if callback is not None and not callable(callback):  # found out only at the first block, mid-run
            raise TypeError(f"callback must be a function of (done, total), got {type(callback).__name__}")
        self.device = pick_device(device)
        self.model = registry.load(model).to(self.device).eval()
        self.engine = EngineConfig(segment=segment, overlap=overlap, device=self.device)
        _check_engine(self.engine)
        self.progress = progress
        self.callback = callback
        self._encoder = None

    @property
    def samplerate(self) -> int:
        """The rate the model separates at; inputs at any rate are resampled to it and back."""
        return self.model.sample_rate

    @property
    def audio_channels(self) -> None:
        """Any channel count: each channel is separated with the same queries."""
        return None

    def update_parameter(self, segment: float | None = None, overlap: float | None = None) -> None:
        """Change the engine's settings; a refused value leaves the previous settings in place."""
        engine = dataclasses.replace(self.engine)
        if segment is not None:
            engine.segment = segment
        if overlap is not None:
            engine.overlap = overlap
        _check_engine(engine)
        self.engine = engine

    @property
    def encoder(self):
        """The model's text encoder (`encode(texts)` -> unit-norm embeddings), loaded on first use."""
        if self._encoder is None:  # threads that get here at once get one encoder: shared_text_encoder's lock
            self._encoder = shared_text_encoder(self.model.config.text_encoder)
        return self._encoder

    def conditions(self, queries: Sequence[str] | str, negative: Sequence[str] | str | None = None) -> torch.Tensor:
        """Positive queries (Q) and optional negative queries -> (Q, 2*dim) conditions. A query's own "but not"
        part ("speech, but not the music": `query.split_query`) joins the negative queries for that query; a
        query's negatives are averaged."""
        queries = query_list(queries)
        if not queries:
            raise QueryError("no query given: say what to extract, e.g. -q 'a dog barking'")
        queries = [validate_query(q) for q in queries]
        negatives = [] if negative is None else query_list(negative, "negative queries")
        negatives = [validate_query(q, negative=True) for q in negatives]
        for text in (*queries, *negatives):  # `-q dog.wav` was taken as words, and asked for little
            if Path(text).suffix.lower() in audio.AUDIO_EXTENSIONS:
                what = "is an audio file" if os.path.isfile(text) else "names an audio file"
                raise QueryError(f"the query '{text}' {what}: audio queries (an example clip of the sound) are not "
                                 f"supported, describe the sound in words")
        repeated = sorted({q for q in queries if queries.count(q) > 1})
        if repeated:
            raise QueryError(f"the query '{repeated[0]}' is given more than once")
        split = [split_query(q) for q in queries]
        pos = self.encoder.encode([positive for positive, _ in split])
        same = lambda a, b: float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > SAME_QUERY  # noqa: E731
        anchored = lambda e: anchor_queries(e, self.model.vocabulary, self.model.config.query_anchor)  # noqa: E731
        neg = torch.zeros_like(pos)  # zeros: no negative query
        neg_anchored = torch.zeros_like(pos)
        for i, (_, own) in enumerate(split):
            if negatives or own:
                texts = [*negatives, *own]
                encoded = self.encoder.encode(texts)  # cached per text: the shared ones are encoded once
                for text, emb in zip(texts, encoded):
                    if same(emb, pos[i]):
                        raise QueryError(f"'{text}' is both a query and a negative query: the sound would be "
                                         f"asked for and suppressed at once")
                neg[i] = torch.nn.functional.normalize(encoded.mean(0), dim=-1)
                neg_anchored[i] = torch.nn.functional.normalize(anchored(encoded).mean(0), dim=-1)
        conds = build_condition(pos, neg)
        for i, j in itertools.combinations(range(len(queries)), 2):
            if same(conds[i], conds[j]):  # 'dog' and 'Dog': the encoder reads no case, so two identical tracks
                raise QueryError(f"the queries '{queries[i]}' and '{queries[j]}' are one query to the text "
                                 f"encoder: give it once")
        return build_condition(anchored(pos), neg_anchored)  # the checks above are on the words as given

    def separate_tensor(self, wav: np.ndarray | torch.Tensor, sample_rate: int, queries: Sequence[str] | str,
                        negative: Sequence[str] | str | None = None, residual: bool = True,
                        band_hz: float | str | None = "auto") -> Tracks:
        """(samples,) or (channels, samples) at `sample_rate` -> Tracks at the same rate and channels, one
        track per query under the query as given, and the residual (the input minus all targets).

        `band_hz`: the highest frequency the audio holds, where it was resampled up from a lower rate (4000 for
        telephone audio stored at 16 kHz): the network then hears it as it hears a file of that Nyquist frequency.
        "auto" (the default) finds such a band in the audio itself; "full" or None trusts `sample_rate` alone.

        `queries`: one text or a list; `negative`: what to suppress, one text or several (averaged). Silent audio
        (all zeros) raises `AudioError`, as the command line refuses it."""
        return self._separate(as_channels_first(wav), sample_rate, queries, negative, residual, band_hz)

    def _separate(self, wav: np.ndarray, sample_rate: int, queries: Sequence[str] | str,
                  negative: Sequence[str] | str | None, residual: bool, band_hz: float | str | None) -> Tracks:
        """separate_tensor on float32 (channels, samples), finite and in range (`as_channels_first`)."""
        queries = query_list(queries)
        sample_rate = check_sample_rate(sample_rate)
        _check_band(band_hz)
        if not np.any(wav):
            raise AudioError("the audio is silent (all samples are zero)")
        conds = self.conditions(queries, negative)
        if residual and any(validate_query(q) == RESIDUAL for q in queries):
            raise QueryError(f"the query '{RESIDUAL}' would share its name with the residual track: "
                             "rephrase it or pass residual=False")
        survey = InputSurvey.of([wav], sample_rate)  # made once: the engine's level and band, and the report's
        targets = separate_array(self.model, conds, wav, sample_rate, self.engine, band_hz=band_hz, survey=survey)
        tracks = Tracks(sample_rate=sample_rate, band_hz=heard_band(survey, band_hz, self.model.sample_rate))
        energy = float(survey.energy.sum())
        flat = targets.reshape(len(queries), -1).astype(np.float64)
        products = flat @ flat.T
        for q, (query, target) in enumerate(zip(queries, targets)):
            tracks[query] = target
            tracks.levels_db[query] = level_db(float(products[q, q]), energy)
        tracks.correlations = track_correlations(products, queries)
        if residual:
            tracks[RESIDUAL] = wav - targets.sum(0)
        return tracks

    def separate_file(self, path: str | os.PathLike, queries: Sequence[str] | str,
                      negative: Sequence[str] | str | None = None, residual: bool = True,
                      band_hz: float | str | None = "auto") -> Tracks:
        """A whole file, decoded into memory, as `separate_tensor` separates an array (at the file's rate and
        channels). For long files, `separate_to_files` streams to disk in bounded memory."""
        _check_band(band_hz)  # before the file is decoded: a wrong band is not the file's fault
        data, rate = audio.read(path)
        try:  # (channels, samples) as read: a file of fewer samples than channels is no (samples, channels) array
            return self._separate(as_channels_first(data, layout_known=True), rate, queries, negative, residual,
                                  band_hz)
        except AudioError as err:  # the samples are checked as an array's; say which file they came from
            raise AudioError(f"{audio.as_path(path)}: {err}") from None

    def separate_to_files(self, path: str | os.PathLike, queries: Sequence[str] | str,
                          negative: Sequence[str] | str | None = None,
                          options: OutputOptions | None = None, block_seconds: float = 20.0,
                          band_hz: float | str | None = "auto") -> FileResult:
        """Stream a file of any length through the engine into OUTDIR/<stem>/<query>.<ext>.

        Outputs go first to float32 temporaries; once the peak is known they are converted
        (with one common gain if they would clip and clip_mode is 'rescale') and renamed into place.
        `band_hz` as for `separate_tensor`.
        """
        options = OutputOptions() if options is None else options
        check_output_options(options)
        _check_band(band_hz)
        path = audio.as_path(path)
        if isinstance(block_seconds, bool) or not isinstance(block_seconds, numbers.Real) or not (
                0.01 <= block_seconds <= 3600):  # 1-sample blocks made a long file take hours
            raise ValueError(f"block_seconds must be a number of seconds, from 0.01 to 3600, got {block_seconds!r}")
        queries = query_list(queries)
        conds = self.conditions(queries, negative)  # query errors before any file work
        meta = audio.info(path)
        try:
            check_sample_rate(meta.sample_rate)
        except AudioError as err:
            raise AudioError(f"{path}: {err}") from None
        # a first pass: the level the network hears, and the band the content fills
        survey = InputSurvey.of(audio.read_blocks(path, meta.sample_rate, block_seconds), meta.sample_rate)
        held = survey.count  # the frames the file holds: fewer than its header counts in an MP3 cut short
        rms = survey.rms
        if rms == 0.0:
            raise AudioError(f"{path}: the audio is silent (all samples are zero)")
        out_rate = options.sample_rate or meta.sample_rate
        # output name -> how its block is made from (mixture (C, n), estimates (Q, C, n))
        makers: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
        for q, name in enumerate(output_names(queries)):
            makers[name] = lambda mix, est, q=q: est[q]
        if options.residual:
            makers[RESIDUAL] = lambda mix, est: mix - est.sum(0)
        if options.per_query_residual:
            for q, name in enumerate(output_names(queries)):
                makers[f"{name}-{RESIDUAL}"] = lambda mix, est, q=q: mix - est[q]
        if options.format == "flac" and meta.channels > audio.FLAC_MAX_CHANNELS:
            raise AudioError(f"{path}: {meta.channels} channels, and FLAC holds at most {audio.FLAC_MAX_CHANNELS}: "
                             f"use --format wav")
        if options.format == "flac" and out_rate > audio.FLAC_MAX_SAMPLE_RATE:
            raise AudioError(f"{path}: outputs at {out_rate} Hz, and FLAC holds at most {audio.FLAC_MAX_SAMPLE_RATE} "
                             f"Hz: use --format wav, or --sample-rate")
        out_frames = round(held * out_rate / meta.sample_rate)  # each output's length
        if out_frames == 0:
            raise AudioError(f"{path}: {held} sample{'s' * (held > 1)} at {meta.sample_rate} Hz is "
                             f"no sample at {out_rate} Hz")
        folder = Path(options.directory) / output_folder_name(path)
        targets = {name: folder / f"{name}.{options.format}" for name in makers}
        folders = [str(p) for p in targets.values() if p.is_dir()]
        if folders:
            raise FileExistsError(f"{folders[0]} is a folder, where an output goes: move it, or choose another -o")
        inputs = [p for p in targets.values() if p.exists() and os.path.samefile(p, path)]
        if inputs:  # even with force: the input would be overwritten by one of its own tracks
            raise FileExistsError(f"the output {inputs[0]} is the input file itself: choose another -o")
        if not options.force:
            existing = [str(p) for p in targets.values() if p.exists()]
            if existing:
                raise FileExistsError(f"output exists: {existing[0]} (force=True or --force overwrites it; to add "
                                      f"a sound to an earlier run's, ask for all of them in one run)")
        created = [p for p in (folder, *folder.parents) if not p.exists()]  # innermost first
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            broken = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
            why = f"{broken} is a link to {os.readlink(broken)}, which does not exist" if broken else err.strerror
            raise PermissionError(f"cannot create output folder {folder}: {why}") from None
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"output folder is not writable: {folder}")

        writers: dict[str, audio.AtomicWriter] = {}  # float32 temporaries, then the outputs' own temporaries
        finals: dict[str, audio.AtomicWriter] = {}
        peak, out_samples = 0.0, 0
        products = np.zeros((len(queries), len(queries)))  # tracks' inner products: energies and overlaps
        band = heard_band(survey, band_hz, self.model.sample_rate)
        declared = meta.declared_frames or (meta.frames if held < meta.frames else None)
        result = FileResult(str(path), sample_rate=out_rate, duration=held / meta.sample_rate,
                            input_sample_rate=meta.sample_rate, band_hz=band,
                            declared_duration=None if declared is None else declared / meta.sample_rate)
        bar = self._progress_bar(held / meta.sample_rate, Path(path).name)
        try:
            for name, target in targets.items():
                writers[name] = audio.AtomicWriter(target, out_rate, meta.channels, "wav", "float32", scratch=True)

            done = 0  # input frames separated so far

            def advance(frames: int) -> None:
                nonlocal done
                done += frames
                if bar is not None:
                    bar.update(frames / meta.sample_rate)
                if self.callback is not None:
                    self.callback(done, held)  # a running total, as the docstring promises

            # separated at the file's own rate, each output resampled afterwards: resampling the input to a
            # rate below the model's first would hide from the network the band it needs to hear
            resamplers = {name: Resampler(meta.sample_rate, out_rate, meta.channels) for name in makers}

            def write(blocks: dict[str, np.ndarray], last: bool) -> None:
                nonlocal peak
                for name, block in blocks.items():
                    block = resamplers[name](block, last=last)
                    peak = max(peak, float(np.abs(block).max(initial=0)))
                    writers[name].write(block)

            level_gain = input_gain(survey.channel_rms, self.model.config.input_level_db)
            pending = None  # one block behind, so that the resamplers know which block is the last
            blocks = audio.read_blocks(path, meta.sample_rate, block_seconds)
            for mixture, est in separate_stream(self.model, conds, blocks, meta.sample_rate, meta.channels,
                                                self.engine, advance, level_gain, band):
                out_samples += mixture.size
                flat = est.reshape(len(queries), -1).astype(np.float64)
                products += flat @ flat.T
                if pending is not None:
                    write(pending, last=False)
                pending = {name: make(mixture, est) for name, make in makers.items()}
            if pending is not None:
                write(pending, last=True)
            for writer in writers.values():
                writer.file.close()
            gain = 1.0
            if peak > 1.0 and options.subtype != "float32" and options.clip_mode == "rescale":
                gain = 0.999 / peak
            result.gain = gain
            clipped = 0
            for name, writer in writers.items():
                finals[name] = audio.AtomicWriter(targets[name], out_rate, meta.channels, options.format,
                                                  options.subtype, frames=out_frames)
                clipped += audio.convert(writer, finals[name], gain, clip=options.subtype != "float32")
            with signals_held():  # all converted: the renames take no time, and a Ctrl-C waits for all of them
                for name, final in finals.items():
                    final.commit()
                    result.outputs[name] = str(targets[name])
            result.earlier_outputs = sorted(str(p) for p in folder.iterdir() if p.is_file() and p not in
                                            targets.values() and p.suffix[1:].lower() in audio.FORMATS
                                            and not os.path.samefile(p, path))
            result.clipped_samples = clipped
            for q, query in enumerate(queries):
                result.levels_db[query] = level_db(products[q, q] / max(out_samples, 1), rms ** 2)  # mean powers
            result.correlations = track_correlations(products, queries)
        except BaseException as err:
            for writer in (*writers.values(), *finals.values()):
                writer.abort()
            for new_folder in created:  # leave no empty folder behind for an input that failed
                try:
                    new_folder.rmdir()
                except OSError:
                    break
            if isinstance(err, (OSError, audio.soundfile_error())) and not isinstance(err, audio.OutputError):
                why = audio.write_failure(err, folder)
                raise audio.OutputError(f"could not write the outputs to {folder} ({why})") from None
            raise
        finally:
            if bar is not None:
                bar.close()
        return result

    def _progress_bar(self, total: float, name: str):
        if not self.progress:
            return None
        from tqdm import tqdm

        # in seconds of audio, as a user counts a recording (its rate in seconds per second: the speed-up)
        return tqdm(total=total, desc=name, unit="s", leave=False, dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, "
                               "{rate_fmt}]")


def check_output_options(options: OutputOptions) -> None:
    """Every setting of the outputs, before any file work: a wrong one would otherwise surface as a soundfile error
    after the separation, or not at all."""
    if not isinstance(options, OutputOptions):
        raise TypeError(f"options must be lass.api.OutputOptions, got {type(options).__name__}")
    if not isinstance(options.directory, (str, os.PathLike)) or not os.fspath(options.directory).strip():
        raise AudioError(f"the output folder (directory, -o) must be a folder's path, got {options.directory!r}")
    if os.path.isfile(options.directory):  # said once, not after each input's separation
        raise AudioError(f"the output folder (directory, -o) {options.directory} is a file: give a folder")
    for name in ("residual", "per_query_residual", "force"):
        if not isinstance(getattr(options, name), (bool, np.bool_)):  # "no" would count as True
            raise TypeError(f"OutputOptions.{name} must be True or False, got {getattr(options, name)!r}")
    audio.check_output_format(options.format, options.subtype)
    if options.clip_mode not in ("rescale", "clamp"):
        raise AudioError(f"unknown clip mode {options.clip_mode!r} (choose from rescale, clamp)")
    if options.sample_rate is not None:
        check_sample_rate(options.sample_rate, MAX_OUTPUT_RATE, "the output sample rate (sample_rate, --sample-rate)")


MIN_SEGMENT = 0.5  # seconds


def _check_engine(engine: EngineConfig) -> None:
    """The engine's own checks, and a segment long enough to be worth a model call: below half a second the
    context on each side (about 2 s) is most of each call (--segment 0.01 ran at 15 times real time)."""
    segment = engine.segment
    number = isinstance(segment, numbers.Real) and not isinstance(segment, bool)
    if number and not MIN_SEGMENT <= segment <= MAX_SEGMENT:
        raise ValueError(f"segment (--segment) must be from {MIN_SEGMENT} to {MAX_SEGMENT} seconds, got {segment}")
    engine.validate()


def _check_band(band_hz: object) -> None:
    try:
        check_band(band_hz)
    except ValueError as err:
        raise AudioError(str(err)) from None


def check_sample_rate(sample_rate: object, maximum: int | None = None, what: str = "the sample rate") -> int:
    """A sample rate must be a whole number of Hz, at least MIN_SAMPLE_RATE (a rate of 1 is a mistaken argument,
    and took seconds per hundred samples to resample), and at most `maximum` where given."""
    try:
        rate = int(sample_rate)
    except (TypeError, ValueError, OverflowError):
        rate = None
    if isinstance(sample_rate, bool) or rate is None or rate != sample_rate or rate < MIN_SAMPLE_RATE or (
            maximum is not None and rate > maximum):
        bound = f"from {MIN_SAMPLE_RATE} to {maximum}" if maximum is not None else f"at least {MIN_SAMPLE_RATE}"
        raise AudioError(f"{what} must be a whole number of Hz, {bound}, got {sample_rate!r}")
    return rate


def as_channels_first(wav: np.ndarray | torch.Tensor, layout_known: bool = False) -> np.ndarray:
    """An array or tensor of audio -> float32 (channels, samples). Integer PCM is read at full scale (int16
    / 32768), as soundfile reads it: the model hears levels, and 10,000 as a float is 80 dB above full scale. Shapes
    that cannot be (channels, samples) are refused, (samples, channels) included, rather than separated as
    thousands of two-sample channels, except where the layout is known (`layout_known`: a file's, as read)."""
    if isinstance(wav, torch.Tensor):
        if wav.device.type == "meta":
            raise AudioError("a tensor on the 'meta' device holds no samples")
        wav = wav.detach().cpu()
        if wav.is_floating_point() and wav.dtype not in (torch.float16, torch.float32, torch.float64):
            wav = wav.float()  # bfloat16 and the float8 types have no numpy counterpart
        wav = wav.numpy()
    wav = np.asarray(wav)
    if np.issubdtype(wav.dtype, np.integer) and wav.dtype.itemsize == 8:
        raise AudioError(f"audio of {wav.dtype} is not a PCM sample type (np.array or torch.tensor of Python ints "
                         f"gives 64-bit integers): convert it, e.g. wav.astype(np.int16) for 16-bit samples, or "
                         f"pass float audio at full scale 1")
    if np.issubdtype(wav.dtype, np.unsignedinteger):  # unsigned PCM (WAV's 8-bit) is centred on half its range
        half = float(2 ** (8 * wav.dtype.itemsize - 1))
        wav = (wav.astype(np.float64) - half) / half
    elif np.issubdtype(wav.dtype, np.integer):
        wav = wav.astype(np.float32) / float(2 ** (8 * wav.dtype.itemsize - 1))
    elif not np.issubdtype(wav.dtype, np.floating):
        raise AudioError(f"audio must be numbers, got an array of {wav.dtype}")
    if wav.ndim == 0:
        raise AudioError("audio must be (samples,) or (channels, samples), got a single number")
    if wav.ndim > 2:
        raise AudioError(f"audio must be (samples,) or (channels, samples), got shape {wav.shape}")
    check_finite(wav)  # before float32, which would turn samples above its range into infinities
    wav = np.atleast_2d(wav.astype(np.float32, copy=False))
    if wav.shape[0] == 0:
        raise AudioError(f"the audio has no channels (shape {wav.shape})")
    if wav.shape[-1] == 0:
        raise AudioError("the audio has zero length")
    if wav.shape[0] > wav.shape[1] and not layout_known:
        raise AudioError(f"audio of shape {wav.shape} has more channels than samples: the API takes (channels, "
                         f"samples); for soundfile's (samples, channels) layout pass the transpose (wav.T)")
    return wav


def output_folder_name(path: str | os.PathLike) -> str:
    """OUT/<this>/ for an input: its name without the extension, never '.' or '..' (which would write into -o
    itself or above it)."""
    stem = Path(path).stem
    return stem.replace(".", "_") if stem in ("", ".", "..") else stem
