"""Audio I/O: reading any file soundfile understands, resampling, and safe (atomic) writing."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np


class AudioError(ValueError):
    """A user-facing problem with an audio file (missing, unreadable, empty, silent)."""


@dataclass
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    # a WAV file cut short (an interrupted download or recording): the frames its header declares, where more than
    # the file holds. libsndfile reads what is there and does not say so.
    declared_frames: int | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _soundfile():
    import soundfile

    return soundfile


def as_path(path: str | bytes | os.PathLike) -> str:
    """A file name as given to the API: str, bytes or a Path (bytes as the OS decodes them); an empty name or
    another type is refused with its reason, not as a file that does not exist."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"an audio file's path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(path)
    if not path:
        raise AudioError("the audio file's path is empty")
    return path


def info(path: str | os.PathLike) -> AudioInfo:
    path = as_path(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if not os.path.isfile(path):  # a named pipe waited forever for a second read; <(cmd) failed as undecodable
        raise AudioError(f"{path}: a pipe or device, not a file: an input is read more than once (its level "
                         f"first), so save the audio to a file and give that")
    sf = _soundfile()
    try:
        meta = sf.info(path)
    except Exception as err:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        why = first_line(err)
        if "does not exist or is not a regular file" in why:  # what libsndfile says of a text file named .mp3
            why = "its format is not recognised, or it is damaged"
        raise AudioError(f"{path}: not a readable audio file ({why})") from None
    if meta.frames <= 0:
        raise AudioError(f"{path}: the file has no audio (zero length)")
    declared = _wav_declared_frames(path) if meta.format == "WAV" else None
    return AudioInfo(path, int(meta.samplerate), int(meta.channels), int(meta.frames), meta.format,
                     declared if declared is not None and declared > meta.frames else None)


# what streaming writers put in a header before the length is known: 0, or sizes from 2 GiB up (SoX writes
# 0x7FFFF000, others 0x7FFFFFFF or 0xFFFFFFFF); a file that large, cut short, goes without the note
_UNKNOWN_FROM = 0x7FFF0000


def _wav_declared_frames(path: str) -> int | None:
    """The frames a RIFF WAV header's data chunk declares; None where it declares no length or cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align, at = 0, 12
    while at + 8 <= len(head):
        chunk, size = head[at:at + 4], int.from_bytes(head[at + 4:at + 8], "little")
        if chunk == b"fmt " and at + 22 <= len(head):
            block_align = int.from_bytes(head[at + 20:at + 22], "little")
        if chunk == b"data":
            return size // block_align if block_align and 0 < size < _UNKNOWN_FROM else None
        at += 8 + size + (size & 1)  # chunks are padded to an even length
    return None


def read(path: str | os.PathLike, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """(channels, samples) float32 and the file's sample rate."""
    path = as_path(path)
    meta = info(path)  # a missing, unreadable or empty file fails here with a clear message
    sf = _soundfile()
    try:
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as err:
        if start or frames >= 0 or not isinstance(err, sf.SoundFileError) or meta.format != "FLAC":
            raise AudioError(f"{path}: could not decode audio ({first_line(err)})") from None
        data, rate = np.concatenate(list(decoded_blocks(path, 1 << 16))), meta.sample_rate  # as far as it decodes
    return np.ascontiguousarray(data.T), int(rate)


DAMAGE_STEP = 1024  # frames: how near a FLAC decoder's error a file cut short is read up to


def decoded_blocks(path: str, size: int) -> Iterator[np.ndarray]:
    """A file as (frames, channels) float32 blocks of about `size` frames, as far as it decodes: a FLAC file cut
    short (an interrupted download) stops its decoder with an error where a WAV, an MP3 or an Ogg file just
    ends, and is read up to the last multiple of DAMAGE_STEP frames before it, whatever `size` (so that a file
    read whole and one streamed in blocks are as long); one that decodes nothing is an AudioError."""
    sf = _soundfile()
    size = -(-size // DAMAGE_STEP) * DAMAGE_STEP  # whole steps: the blocks end where the steps would
    done, error = 0, None
    for step in (size, DAMAGE_STEP):  # the blocks; after a FLAC decoder's error, steps up to it from the last
        with sf.SoundFile(path) as f:
            try:
                if done:
                    f.seek(done)
                while (block := f.read(step, dtype="float32", always_2d=True)).shape[0]:
                    done += block.shape[0]
                    yield block
                return
            except sf.SoundFileError as err:
                if error is not None:  # the steps' error: where the file stops decoding
                    break
                if f.format != "FLAC":  # only FLAC's decoder stops so; any other error is the file's
                    raise
                error = err
    if done == 0:
        raise AudioError(f"{path}: could not decode audio ({first_line(error)})")


def read_mono(path: str | os.PathLike, sample_rate: int | None = None) -> np.ndarray:
    """Channels averaged; resampled when sample_rate is given. For training and evaluation clips."""
    data, rate = read(path)
    mono = data.mean(axis=0)
    if sample_rate is not None and rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
    return mono.astype(np.float32)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample along the last axis with soxr (high quality). Identity when rates match."""
    if rate_in == rate_out:
        return x
    import soxr

    if x.ndim == 1:
        return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(soxr.resample(x.T, rate_in, rate_out, quality="HQ").T.astype(np.float32))


# what inputs are recognised by in folders (training data, --data, --stems); any format soundfile reads works as a file
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}
SAMPLE_BYTES = {"int16": 2, "int24": 3, "float32": 4}
FORMATS = {"wav": "WAV", "flac": "FLAC"}
WAV_MAX_DATA_BYTES = 0xFFFFFFFF - (1 << 16)  # a RIFF size is 32 bits; less the header and other chunks
FLAC_MAX_SAMPLE_RATE = 655350  # FLAC stores a rate in 20 bits of 10 Hz steps above 65,535 Hz


def check_output_format(fmt: str, subtype: str) -> None:
    if fmt not in FORMATS:
        raise AudioError(f"unknown output format '{fmt}' (choose from {', '.join(FORMATS)})")
    if subtype not in SUBTYPES:
        raise AudioError(f"unknown sample type '{subtype}' (choose from {', '.join(SUBTYPES)})")
    if fmt == "flac" and subtype == "float32":
        raise AudioError("FLAC cannot store float32 samples: use --format wav, or FLAC's 16-bit (the default) "
                         "or --int24")


FLAC_MAX_CHANNELS = 8


class OutputError(OSError):
    """Outputs that could not be written (a full disk, a folder that went away): the input was fine."""


def temporary_beside(path: Path) -> Path:
    """A new, uniquely named hidden file beside `path` (two runs writing one name do not share it), where a file is
    written before `publish` puts it in place: an interrupted write never leaves a truncated file under its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: Path) -> Path:
    """Renames a finished temporary into place, with the permissions a new file gets (mkstemp makes 0600 files)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    return path


class AtomicWriter:
    """Streams blocks into a temporary file beside the target and renames it at the end.

    An interrupted run therefore never leaves a truncated file under the final name.
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, channels: int, fmt: str = "wav",
                 subtype: str = "int16", frames: int | None = None, scratch: bool = False):
        """`frames`: the length to come, where known (a WAV file past 4 GiB is written as RF64); `scratch`: a
        temporary that is read back and deleted (Wave64, whose 64-bit sizes hold any length)."""
        check_output_format(fmt, subtype)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = FORMATS[fmt]
        if scratch:
            container = "W64"
        elif fmt == "wav" and frames is not None and frames * channels * SAMPLE_BYTES[subtype] > WAV_MAX_DATA_BYTES:
            container = "RF64"  # WAV's 32-bit sizes end at 4 GiB, and readers stop there: a longer file reads short
        self.tmp = temporary_beside(self.path)
        sf = _soundfile()
        try:
            self.file = sf.SoundFile(str(self.tmp), "w", samplerate=sample_rate, channels=channels,
                                     format=container, subtype=SUBTYPES[subtype])
        except BaseException:  # a rate or channel count the format cannot hold: no empty temporary left behind
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, block: np.ndarray) -> None:
        """block: (channels, samples) float."""
        self.file.write(np.ascontiguousarray(block.T))

    def commit(self) -> Path:
        self.file.close()
        return publish(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.file.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write(path: str | os.PathLike, audio: np.ndarray, sample_rate: int, fmt: str | None = None,
          subtype: str = "int16") -> Path:
    """Write (channels, samples) or (samples,) atomically; peaks must already be handled."""
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    fmt = fmt or (Path(path).suffix.lstrip(".").lower() or "wav")
    writer = AtomicWriter(path, sample_rate, audio.shape[0], fmt, subtype)
    try:
        writer.write(audio)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def first_line(err: BaseException, limit: int = 200) -> str:
    """An error's first line, for a one-line message (libraries' errors run to many lines)."""
    text = str(err).strip().splitlines()
    return text[0][:limit] if text else type(err).__name__


MAX_SAMPLE = 1e30  # far above any real level (full scale is 1), far enough below where the STFT's float32 overflows


def check_finite(wav: np.ndarray, path: str | os.PathLike | None = None) -> None:
    """NaN or infinite samples would spread through the STFT into every output sample near them; samples near
    float32's limit (3.4e38) overflow in it, and every output came back NaN."""
    where = f"{path}: " if path is not None else ""
    if not np.isfinite(wav).all():
        raise AudioError(f"{where}the audio contains NaN or infinite samples")
    peak = float(np.abs(wav).max(initial=0.0))
    if peak > MAX_SAMPLE:
        raise AudioError(f"{where}samples reach {peak:.3g}: audio is read at full scale 1, and samples above "
                         f"{MAX_SAMPLE:.0e} overflow the separation (scale the audio down)")


def read_blocks(path: str, sample_rate: int, block_seconds: float) -> Iterator[np.ndarray]:
    """A file as (channels, n) float32 blocks of about `block_seconds` (whole steps of `decoded_blocks`), each
    checked (`check_finite`) as it is read: the streaming engine's input, in bounded memory."""
    size = max(1, int(block_seconds * sample_rate))
    try:
        for block in decoded_blocks(path, size):
            check_finite(block, path)
            yield np.ascontiguousarray(block.T)
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(f"{path}: could not decode audio ({first_line(err)})") from None


def convert(scratch: AtomicWriter, final: AtomicWriter, gain: float, clip: bool) -> int:
    """Copies a closed float32 temporary into an output's own writer, times `gain`, clipped to full scale where
    `clip` (integer outputs), and deletes the temporary. Returns the samples clipped."""
    sf = _soundfile()
    clipped = 0
    with sf.SoundFile(str(scratch.tmp)) as src:
        for block in src.blocks(blocksize=1 << 18, dtype="float32", always_2d=True):
            block = block.T * gain
            if clip:
                clipped += int((np.abs(block) > 1.0).sum())
                block = np.clip(block, -1.0, 1.0)
            final.write(block)
    scratch.tmp.unlink(missing_ok=True)
    return clipped


def soundfile_error() -> type:
    """soundfile's own error type (soundfile itself loads on first use)."""
    return _soundfile().SoundFileError


def write_failure(err: BaseException, folder: Path) -> str:
    """Why writing failed, in words: soundfile says only 'System error.' for a full disk."""
    import shutil

    try:
        if shutil.disk_usage(folder if folder.exists() else folder.parent).free < 1 << 20:
            return "no space left on the device"
    except OSError:
        pass
    return first_line(err)
