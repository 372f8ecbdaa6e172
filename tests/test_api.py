"""The Python API: shapes, rates, channels, residuals and files."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tone_noise
from lass import Separator
from lass.api import OutputOptions, output_names
from lass.audio import AudioError
from lass.query import QueryError


@pytest.fixture(scope="module")
def tiny(model_dir):
    return Separator(str(model_dir / "tiny.safetensors"), device="cpu", segment=3.0)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (8000, 3)])
def test_target_plus_residual_is_mixture(tiny, rate, channels):
    x = tone_noise(4.2, rate, channels)
    tracks = tiny.separate_tensor(x, rate, ["a dog barking"])
    assert tracks.sample_rate == rate
    assert tracks["a dog barking"].shape == x.shape
    assert np.allclose(tracks["a dog barking"] + tracks["residual"], x, atol=1e-6)


def test_several_queries_residual_is_mixture_minus_all(tiny):
    x = tone_noise(3.0, 16000, 1)
    tracks = tiny.separate_tensor(x, 16000, ["rain", "a dog barking"], negative="music")
    assert set(tracks) == {"rain", "a dog barking", "residual"}
    assert np.allclose(tracks["rain"] + tracks["a dog barking"] + tracks["residual"], x, atol=1e-6)


def test_batched_queries_equal_one_at_a_time(tiny):
    """Queries are decoded in groups sharing one STFT and mixture encoding: same result as alone."""
    x = tone_noise(3.0, 22050, 2)
    queries = [f"sound number {i}" for i in range(6)]  # more than one decoding group
    together = tiny.separate_tensor(x, 22050, queries)
    for q in queries:
        alone = tiny.separate_tensor(x, 22050, [q])[q]
        assert np.allclose(together[q], alone, atol=1e-5)
    assert len({float(np.abs(together[q]).sum()) for q in queries}) == len(queries)  # queries differ


def test_negative_query_changes_the_output(tiny):
    x = tone_noise(2.0, 16000, 1)
    plain = tiny.separate_tensor(x, 16000, "rain")["rain"]
    with_negative = tiny.separate_tensor(x, 16000, "rain", negative="wind")["rain"]
    assert not np.allclose(plain, with_negative)


def test_empty_query_and_empty_audio_are_errors(tiny):
    with pytest.raises(QueryError, match="empty query"):
        tiny.separate_tensor(tone_noise(1.0, 16000), 16000, ["  "])
    with pytest.raises(AudioError, match="zero length"):
        tiny.separate_tensor(np.zeros((1, 0), np.float32), 16000, ["rain"])


def test_bad_samples_rates_and_repeated_queries_are_errors(tiny, tmp_path):
    x = tone_noise(1.0, 16000)
    for value in (np.nan, np.inf):
        bad = x.copy()
        bad[0, 100] = value
        with pytest.raises(AudioError, match="NaN or infinite"):
            tiny.separate_tensor(bad, 16000, "rain")
    path = tmp_path / "bad.wav"
    sf.write(path, bad.T, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=f"^{re.escape(str(path))}: the audio contains NaN or infinite samples$"):
        tiny.separate_file(path, "rain")
    for rate in (0, 1, 1999, -8000, 44100.5, True, "16k"):
        with pytest.raises(AudioError, match="sample rate"):
            tiny.separate_tensor(x, rate, "rain")
    with pytest.raises(QueryError, match="more than once"):
        tiny.separate_tensor(x, 16000, ["dog", " dog "])
    # the text encoder reads no case: these were two identical tracks, and the residual lost the sound twice
    with pytest.raises(QueryError, match="the queries 'dog' and 'DOG' are one query to the text encoder"):
        tiny.separate_tensor(x, 16000, ["dog", "rain", "DOG"])
    with pytest.raises(QueryError, match="'Dog' is both a query and a negative query"):
        tiny.separate_tensor(x, 16000, ["dog", "rain"], negative=["music", "Dog"])
    with pytest.raises(QueryError, match="residual track"):
        tiny.separate_tensor(x, 16000, ["residual"])
    # "but not" in a query is its own negative query, beside the ones given for every query (averaged)
    said, given = tiny.conditions(["dog, but not music", "rain"]), tiny.conditions(["dog", "rain"], negative="music")
    assert torch.allclose(said[0], given[0]) and torch.equal(said[1, 384:], torch.zeros(384))
    both = tiny.conditions(["dog but not music"], negative="rain")
    expected = tiny.encoder.encode(["music", "rain"]).mean(0)
    assert torch.allclose(both[0, 384:], expected / expected.norm(), atol=1e-6)
    with pytest.raises(QueryError, match="'Dog' is both a query and a negative query"):
        tiny.separate_tensor(x, 16000, ["dog, except Dog"])
    assert set(tiny.separate_tensor(x, 16000, ["residual"], residual=False)) == {"residual"}
    with pytest.raises(QueryError, match="empty negative query"):
        tiny.separate_tensor(x, 16000, "rain", negative="")


def test_input_arrays_in_other_shapes_and_types(tiny):
    """Integer PCM is read at full scale, as soundfile reads it; shapes that are not (channels, samples), the
    (samples, channels) layout soundfile returns included, are refused instead of separated as nonsense."""
    x = tone_noise(1.0, 16000, 2)
    as_float = tiny.separate_tensor(x, 16000, "rain")["rain"]
    pcm16 = np.round(x * 32768).clip(-32768, 32767).astype(np.int16)
    from_int16 = tiny.separate_tensor(pcm16, 16000, "rain")
    assert from_int16["rain"].dtype == np.float32 and from_int16["rain"].shape == as_float.shape
    assert np.max(np.abs(from_int16["rain"] - as_float)) < 1e-3  # the same level, not 90 dB louder
    assert np.max(np.abs(from_int16["rain"] + from_int16["residual"] - pcm16 / 32768)) < 1e-5
    pcm32 = tiny.separate_tensor(torch.from_numpy(np.round(x * 2 ** 31 * 0.5).astype(np.int32)), 16000, "rain")
    assert np.max(np.abs(pcm32["rain"] - tiny.separate_tensor(x * 0.5, 16000, "rain")["rain"])) < 1e-3
    for bad, message in ((x.T, r"shape \(16000, 2\) has more channels than samples.*wav\.T"),
                         (x[None], r"must be \(samples,\) or \(channels, samples\), got shape \(1, 2, 16000\)"),
                         (np.array(["a", "b"]), "audio must be numbers"),
                         # np.array of Python ints is int64: read as 64-bit PCM it was 1e-15 of full scale, and the
                         # network heard silence without a word
                         (np.round(x * 32767).astype(np.int64), "audio of int64 is not a PCM sample type"),
                         (torch.from_numpy(np.round(x * 32767).astype(np.int64)), "int64 is not a PCM sample type"),
                         (np.float64(0.5), "got a single number"), (np.zeros((0, 5)), "the audio has no channels"),
                         (torch.zeros(100, device="meta"), "a tensor on the 'meta' device holds no samples"),
                         # float64 beyond float32's range became infinities; near it, every output came back NaN
                         (np.full(100, 1e300), r"samples reach 1e\+300"),
                         (x.astype(np.float32) * 3e38, "overflow the separation")):
        with pytest.raises(AudioError, match=message):
            tiny.separate_tensor(bad, 16000, "rain")
    # unsigned PCM is centred on half its range, as WAV's 8-bit is: uint16 had a DC offset of full scale
    unsigned = (pcm16.astype(np.int32) + 32768).astype(np.uint16)
    from_uint16 = tiny.separate_tensor(unsigned, 16000, "rain")
    assert np.max(np.abs(from_uint16["rain"] - from_int16["rain"])) < 1e-6
    assert abs(float(from_uint16["residual"].mean())) < 1e-3


def test_caller_mistakes_are_named_before_any_work(tiny, model_dir, tmp_path):
    """Paths as bytes work; an empty path, folder or model name, a callback that is not a function, options of
    the wrong type and a block length that would read one sample at a time are refused up front."""
    from lass.models.registry import ModelNotFound

    path = tmp_path / "a.wav"
    sf.write(path, tone_noise(1.0, 16000, 1).T, 16000)
    assert np.array_equal(tiny.separate_file(bytes(path), "rain")["rain"], tiny.separate_file(path, "rain")["rain"])
    with pytest.raises(AudioError, match="the audio file's path is empty"):
        tiny.separate_file("", "rain")
    with pytest.raises(TypeError, match="must be a str or os.PathLike, got NoneType"):
        tiny.separate_to_files(None, "rain", options=OutputOptions(directory=str(tmp_path / "out")))
    for options, error, message in (
            (OutputOptions(directory=None), AudioError, r"output folder \(directory, -o\) must be a folder's path"),
            (OutputOptions(directory=str(tmp_path / "out"), residual="no"), TypeError,
             "OutputOptions.residual must be True or False, got 'no'")):
        with pytest.raises(error, match=message):
            tiny.separate_to_files(path, "rain", options=options)
    for block_seconds in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="block_seconds must be a number of seconds, from 0.01 to 3600"):
            tiny.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "out")),
                                   block_seconds=block_seconds)
    assert not (tmp_path / "out").exists()
    with pytest.raises(TypeError, match=r"callback must be a function of \(done, total\), got str"):
        Separator(str(model_dir / "tiny.safetensors"), device="cpu", callback="print")
    with pytest.raises(ModelNotFound, match="the model name is empty"):
        Separator(" ", device="cpu")
    with pytest.raises(ModelNotFound, match=f"{tmp_path} is a folder, not a model file"):
        Separator(str(tmp_path), device="cpu")


def test_tracks_are_keyed_by_the_query_as_given(tiny):
    tracks = tiny.separate_tensor(tone_noise(1.0, 16000), 16000, ["a  dog barking", "Rain "])
    assert set(tracks) == {"a  dog barking", "Rain ", "residual"}


def test_a_refused_setting_keeps_the_previous_one(tiny):
    with pytest.raises(ValueError, match="segment"):
        tiny.update_parameter(segment=-1)
    assert tiny.engine.segment == 3.0
    assert tiny.separate_tensor(tone_noise(1.0, 16000), 16000, "rain")["rain"].shape == (1, 16000)


def test_separate_to_files_streams_and_names_outputs(tiny, tmp_path):
    x = tone_noise(7.5, 22050, 2)
    path = tmp_path / "song.flac"
    sf.write(path, x.T, 22050)
    result = tiny.separate_to_files(path, ["A dog, barking!", "rain"], options=OutputOptions(
        directory=str(tmp_path / "out"), format="flac", per_query_residual=True), block_seconds=2.0)
    names = {p.split("/")[-1] for p in result.outputs.values()}
    assert names == {"a-dog-barking.flac", "rain.flac", "residual.flac", "a-dog-barking-residual.flac",
                     "rain-residual.flac"}
    dog, rate = sf.read(tmp_path / "out" / "song" / "a-dog-barking.flac", always_2d=True)
    assert rate == 22050 and dog.shape == (x.shape[1], 2)
    rain, _ = sf.read(tmp_path / "out" / "song" / "rain.flac", always_2d=True)
    residual, _ = sf.read(tmp_path / "out" / "song" / "residual.flac", always_2d=True)
    mixture, _ = sf.read(path, always_2d=True)
    assert np.max(np.abs(dog + rain + residual - mixture)) < 3 / 32768  # three int16 roundings
    assert not list((tmp_path / "out" / "song").glob("*.part"))


def test_progress_callback_counts_up_to_the_total(model_dir, tmp_path):
    x = tone_noise(7.0, 16000, 1)
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 16000)
    calls = []
    sep = Separator(str(model_dir / "tiny.safetensors"), device="cpu", segment=3.0,
                    callback=lambda done, total: calls.append((done, total)))
    sep.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "out")), block_seconds=2.0)
    assert len(calls) >= 3 and all(total == x.shape[1] for _, total in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == x.shape[1]  # a running total: a bar built on it ends full


def test_wav_files_past_4_gib_are_rf64_and_temporaries_wave64(tmp_path):
    """WAV's 32-bit sizes end at 4 GiB and readers stop there, so a longer output read back short (an 8-channel
    96 kHz hour): outputs that long are RF64, and the float32 temporaries, read back to convert, Wave64."""
    from lass.audio import AtomicWriter

    hour = 96000 * 3600
    for kwargs, container in (({"frames": hour}, "RF64"), ({"frames": 96000}, "WAV"), ({}, "WAV"),
                              ({"frames": hour, "scratch": True}, "W64")):
        writer = AtomicWriter(tmp_path / "a.wav", 96000, 8, "wav", "float32", **kwargs)
        assert writer.file.format == container, kwargs
        writer.abort()
    writer = AtomicWriter(tmp_path / "a.flac", 96000, 8, "flac", "int16", frames=hour)
    assert writer.file.format == "FLAC"
    writer.abort()
    with pytest.raises(sf.SoundFileError, match="does not support this sample rate"):  # no temporary left behind
        AtomicWriter(tmp_path / "b.flac", 768000, 1, "flac", "int16")
    assert not list(tmp_path.iterdir())


def test_a_quiet_file_is_separated_as_its_loud_copy(tiny, tmp_path):
    """The file's level is measured in a first pass, so a copy 40 dB quieter (streamed in blocks) gives the same
    tracks 40 dB quieter, as the array API does; written as float32 so no rounding hides a difference."""
    x = tone_noise(5.0, 22050, 2, seed=2)
    tracks = {}
    for name, scale in (("loud", 1.0), ("quiet", 0.01)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, (x * scale).T, 22050, subtype="FLOAT")
        tiny.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "out"),
                                                                   subtype="float32"), block_seconds=1.5)
        tracks[name] = sf.read(tmp_path / "out" / name / "rain.wav")[0]
    assert np.max(np.abs(tracks["quiet"] * 100 - tracks["loud"])) < 1e-4 * np.max(np.abs(tracks["loud"]))
    assert np.allclose(tracks["loud"].T, tiny.separate_tensor(x, 22050, "rain")["rain"], atol=1e-5)


def test_output_sample_rate_override(tiny, tmp_path):
    x = tone_noise(2.0, 44100, 1)
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 44100)
    tiny.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path), sample_rate=16000))
    info = sf.info(tmp_path / "a" / "rain.wav")
    assert info.samplerate == 16000 and info.frames == 32000


def test_output_options_are_checked_before_any_file_work(tiny, tmp_path):
    x = tone_noise(1.0, 16000, 1)
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 16000)
    out = tmp_path / "out"
    bad_rate = (r"output sample rate \(sample_rate, --sample-rate\) must be a whole number of Hz, "
                r"from 2000 to 768000")
    for options, message in ((OutputOptions(directory=str(out), sample_rate=0), bad_rate),
                             (OutputOptions(directory=str(out), sample_rate=-8000), bad_rate),
                             (OutputOptions(directory=str(out), sample_rate=22050.5), bad_rate),
                             (OutputOptions(directory=str(out), sample_rate=44100000), bad_rate),
                             (OutputOptions(directory=str(out), clip_mode="bogus"), "unknown clip mode 'bogus'"),
                             (OutputOptions(directory=str(out), format="mp3"), "unknown output format 'mp3'")):
        with pytest.raises(AudioError, match=message):
            tiny.separate_to_files(path, "rain", options=options)
    with pytest.raises(TypeError, match="options must be lass.api.OutputOptions, got dict"):
        tiny.separate_to_files(path, "rain", options={"directory": str(out)})
    with pytest.raises(AudioError, match="outputs at 768000 Hz, and FLAC holds at most 655350 Hz: use --format wav"):
        tiny.separate_to_files(path, "rain", options=OutputOptions(directory=str(out), format="flac",
                                                                   sample_rate=768000))
    assert not out.exists()  # no folder, no temporary file left behind


def test_engine_settings_must_be_numbers(model_dir):
    sep = Separator(str(model_dir / "tiny.safetensors"), device="cpu")
    for bad in ("10", True, [1.0]):
        with pytest.raises(ValueError, match=r"segment \(--segment\) must be a number"):
            sep.update_parameter(segment=bad)
    assert sep.engine.segment == 10.0  # a refused value leaves the setting as it was
    for segment in (0.01, 3601, float("nan")):  # 0.01: 15x real time
        with pytest.raises(ValueError, match=f"must be from 0.5 to 3600 seconds, got {segment}"):
            sep.update_parameter(segment=segment)
    sep.update_parameter(segment=np.float32(2.0), overlap=np.float64(0.3))  # numpy numbers are numbers
    assert sep.engine.segment == 2.0 and sep.engine.overlap == pytest.approx(0.3)


def test_bfloat16_tensor_input(tiny):
    x = torch.from_numpy(tone_noise(1.0, 16000, 1))
    tracks = tiny.separate_tensor(x.bfloat16(), 16000, "rain")
    assert tracks["rain"].shape == (1, 16000) and np.isfinite(tracks["rain"]).all()


@pytest.mark.parametrize("rate", [8000, 11025, 48000])
def test_output_rate_changes_only_the_rate(tiny, tmp_path, rate):
    """The file is separated at its own rate and the tracks resampled: a rate below the model's must not take
    away the band the network listens to (at 8 kHz it did: the track came out 13 dB too quiet)."""
    from lass.audio import resample

    x = tone_noise(3.0, 22050, 2, seed=6)
    path = tmp_path / "a.wav"
    sf.write(path, x.T, 22050, subtype="FLOAT")
    options = OutputOptions(directory=str(tmp_path / "own"), subtype="float32")
    tiny.separate_to_files(path, "rain", options=options, block_seconds=0.7)
    options = OutputOptions(directory=str(tmp_path / "other"), subtype="float32", sample_rate=rate)
    tiny.separate_to_files(path, "rain", options=options, block_seconds=0.7)
    own = sf.read(tmp_path / "own" / "a" / "rain.wav", dtype="float32")[0].T
    track, got = sf.read(tmp_path / "other" / "a" / "rain.wav", dtype="float32")
    residual = sf.read(tmp_path / "other" / "a" / "residual.wav", dtype="float32")[0]
    expected = resample(own, 22050, rate).T
    assert got == rate and track.shape == expected.shape == resample(x, 22050, rate).T.shape
    assert np.max(np.abs(track - expected)) < 1e-4 * np.max(np.abs(expected))
    assert np.max(np.abs(track + residual - resample(x, 22050, rate).T)) < 1e-4  # tracks still sum to the input


def test_clipping_is_rescaled_with_one_common_gain(model_dir, tmp_path):
    sep = Separator(str(model_dir / "ones.safetensors"), device="cpu")
    x = 4.0 * tone_noise(1.0, 16000, 1)
    assert np.abs(x).max() > 1.0
    path = tmp_path / "loud.wav"
    sf.write(path, x.T, 16000, subtype="FLOAT")
    result = sep.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "o")))
    assert result.gain < 1.0
    out, _ = sf.read(tmp_path / "o" / "loud" / "rain.wav", always_2d=True)
    assert np.allclose(out[:, 0], x[0] * result.gain, atol=2 / 32768)
    clamp = sep.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "c"),
                                                                      clip_mode="clamp"))
    assert clamp.gain == 1.0 and clamp.clipped_samples > 0


def test_output_names_are_unique_and_safe():
    assert output_names(["Rain", "rain", "residual", "!!"]) == ["rain", "rain-2", "residual-query", "query"]
    # never '<name>-residual', the per-query residual's name; letters of any script are kept
    assert output_names(["dog", "Dog residual", "犬の鳴き声", "Café_bell"]) == [
        "dog", "dog-residual-query", "犬の鳴き声", "café-bell"]
    bold = "".join(chr(0x1D41A + i % 26) for i in range(70))  # mathematical bold letters: 4 bytes each in UTF-8
    name = output_names([bold])[0]
    assert name == bold[:30] and len(name.encode("utf-8")) == 120  # with suffixes, far below 255 bytes
    mixed = "a" + bold  # the 120th byte falls inside a 4-byte letter: the letter cut in two is dropped, not mangled
    assert output_names([mixed])[0] == "a" + bold[:29]


def test_two_queries_for_one_sound_are_told_apart_from_two_sounds(tmp_path):
    """The residual is the input minus every track: queries that find the same sound show it in `correlations`."""
    from lass.api import OutputOptions

    example = Path(__file__).resolve().parent.parent / "examples" / "dog_and_rain.flac"
    result = Separator().separate_to_files(example, ["a dog barking", "dog", "rain"],
                                           options=OutputOptions(directory=str(tmp_path)))
    same, different = result.correlations["a dog barking"]["dog"], result.correlations["dog"]["rain"]
    assert same > 0.9 and abs(different) < 0.3, result.correlations
    assert result.correlations["rain"]["dog"] == different and "dog" not in result.correlations["dog"]
    tracks = Separator().separate_file(example, ["a dog barking", "dog", "rain"])  # the same figures in memory
    for first, others in result.correlations.items():
        for second, value in others.items():
            assert tracks.correlations[first][second] == pytest.approx(value, abs=0.02)


def test_queries_as_any_iterable_and_clear_errors_for_what_is_not_text(tiny):
    """A generator of queries is read once (it was used up by the encoder, and every track was lost while the
    residual had them all taken out); numbers, or an audio array, as queries are one clear QueryError."""
    x = tone_noise(1.0, 16000)
    listed = tiny.separate_tensor(x, 16000, ["rain", "a dog barking"])
    generated = tiny.separate_tensor(x, 16000, (q for q in ["rain", "a dog barking"]))
    assert set(generated) == set(listed) == {"rain", "a dog barking", "residual"}
    assert np.array_equal(generated["residual"], listed["residual"])
    from_numpy = tiny.separate_tensor(x, 16000, np.array(["rain", "a dog barking"]), negative=np.array(["wind"]))
    assert set(from_numpy) == set(listed)
    for audio_query in (np.zeros(1600, np.float32), torch.zeros(1600)):
        with pytest.raises(QueryError, match="queries must be text, got a .* of numbers"):
            tiny.separate_tensor(x, 16000, audio_query)
    with pytest.raises(QueryError, match="queries must be text or a list of texts, got int"):
        tiny.separate_tensor(x, 16000, 3)
    with pytest.raises(QueryError, match="queries must be text, got bytes: decode it first"):
        tiny.separate_tensor(x, 16000, b"rain")


def test_silent_audio_is_refused_by_every_call(tiny, tmp_path):
    """All-zero input is an error for arrays as for files and the command line, not a set of silent tracks; so is
    a sample rate below 2 kHz, whichever call reads the file."""
    with pytest.raises(AudioError, match="the audio is silent"):
        tiny.separate_tensor(np.zeros((2, 1600), np.float32), 16000, "rain")
    sf.write(tmp_path / "silent.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(AudioError, match=f"^{re.escape(str(tmp_path / 'silent.wav'))}: the audio is silent"):
        tiny.separate_file(tmp_path / "silent.wav", "rain")
    sf.write(tmp_path / "slow.wav", tone_noise(1.0, 1000)[0], 1000)
    for call in (tiny.separate_file, tiny.separate_to_files):
        with pytest.raises(AudioError, match="slow.wav: the sample rate must be a whole number of Hz, at least 2000"):
            call(tmp_path / "slow.wav", "rain")


def test_devices_by_name_torch_device_or_none():
    from lass.api import pick_device

    assert pick_device(None) == pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device(torch.device("cpu")) == pick_device(" CPU ") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pick_device("tpu")
    with pytest.raises(ValueError, match="a device is 'auto', 'cpu', 'cuda' or 'cuda:N', got int"):
        pick_device(0)


def test_one_separator_serves_threads_from_its_first_call(model_dir):
    """The text encoder is loaded on first use; threads that separate at once in a fresh process must not each
    start loading it (transformers' lazy imports raised ImportError), nor share its tokenizer at once."""
    import subprocess
    import sys

    script = f"""
import numpy as np
from concurrent.futures import ThreadPoolExecutor
from lass import Separator
separator = Separator({str(model_dir / "tiny.safetensors")!r}, device="cpu")
x = np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32)
texts = ["rain", "a dog barking", "wind", "speech", "a siren", "birds"]
with ThreadPoolExecutor(6) as pool:
    results = list(pool.map(lambda q: separator.separate_tensor(x, 16000, q, residual=False)[q], texts))
for text, result in zip(texts, results):
    assert np.array_equal(result, separator.separate_tensor(x, 16000, text, residual=False)[text])
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_tracks_report_their_level_against_the_input(tiny, tmp_path):
    """Arrays get each track's level in dB as files do (FileResult.levels_db), by the query as given."""
    x = tone_noise(2.0, 16000, 2)
    tracks = tiny.separate_tensor(x, 16000, ["rain", " a dog "])
    assert set(tracks.levels_db) == {"rain", " a dog "}
    for query, level in tracks.levels_db.items():
        assert level == pytest.approx(10 * np.log10(np.sum(tracks[query] ** 2.0) / np.sum(x ** 2.0)), abs=1e-4)
    path = tmp_path / "x.wav"
    sf.write(path, x.T, 16000, subtype="FLOAT")
    result = tiny.separate_to_files(path, ["rain", " a dog "], options=OutputOptions(directory=str(tmp_path / "o")))
    assert result.levels_db == pytest.approx(tracks.levels_db, abs=1e-3)


def test_a_file_of_fewer_samples_than_channels_is_separated(tiny, tmp_path):
    # (channels, samples) as read from a file: only arrays given to separate_tensor are checked for the transpose
    path = tmp_path / "short.wav"
    sf.write(path, np.array([[0.5, -0.5, 0.25]]), 16000)
    tracks = tiny.separate_file(path, "rain")
    assert tracks["rain"].shape == (3, 1)
    assert np.allclose(tracks["rain"] + tracks["residual"], [[0.5], [-0.5], [0.25]], atol=1e-6)
    with pytest.raises(AudioError, match="more channels than samples"):
        tiny.separate_tensor(np.array([[0.5, -0.5, 0.25]]).T, 16000, "rain")


def test_the_progress_bar_counts_seconds_of_audio(model_dir, tmp_path, monkeypatch):
    import tqdm

    bars = []

    class Bar:  # records what lass gives the bar
        def __init__(self, total, **kwargs):
            self.total, self.n, self.kwargs = total, 0.0, kwargs
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            pass

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    path = tmp_path / "a.wav"
    sf.write(path, tone_noise(7.5, 22050, 2).T, 22050)
    sep = Separator(str(model_dir / "tiny.safetensors"), device="cpu", segment=3.0, progress=True)
    sep.separate_to_files(path, "rain", options=OutputOptions(directory=str(tmp_path / "out")), block_seconds=2.0)
    assert len(bars) == 1 and bars[0].total == pytest.approx(7.5) and bars[0].n == pytest.approx(7.5)
    assert bars[0].kwargs["unit"] == "s"


def test_the_default_model_anchors_queries_to_its_training_phrasings():
    """Words the model was not trained on are pulled toward the nearest phrasings it was (lass.query.
    anchor_queries), positive and negative queries alike; weight 0 gives the encoder's embeddings as they are."""
    from lass.query import anchor_queries, build_condition

    separator = Separator(device="cpu")
    model = separator.model
    assert model.vocabulary is not None and model.vocabulary.shape[1] == 384 and model.config.query_anchor > 0
    raw = separator.encoder.encode(["a puppy yapping", "cars honking"])
    cond = separator.conditions("a puppy yapping", negative="cars honking")
    weight = model.config.query_anchor
    expected = build_condition(anchor_queries(raw[:1], model.vocabulary, weight),
                               anchor_queries(raw[1:], model.vocabulary, weight))
    assert torch.allclose(cond, expected, atol=1e-6)
    dog = separator.encoder.encode(["a dog barking"])[0]  # one of the phrasings the dog's clips were trained with
    assert float(cond[0, :384] @ dog) > float(raw[0] @ dog) + 0.05
    plain = copy.deepcopy(separator)
    plain.model.set_query_anchor(0.0)
    unanchored = plain.conditions("a puppy yapping", negative="cars honking")
    assert torch.allclose(unanchored, build_condition(raw[:1], raw[1:]), atol=1e-6)
