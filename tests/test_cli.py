"""Every user mistake through the CLI: one line naming the problem, non-zero exit, no traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import tone_noise
from lass.cli import main


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def song(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, tone_noise(2.0, 16000, 2).T, 16000)
    return path


@pytest.fixture()
def tiny_model(model_dir):
    return str(model_dir / "tiny.safetensors")


def assert_one_line_error(code, err, *needles):
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("lass: error")]
    assert lines, err
    for needle in needles:
        assert needle in err, err


def test_separate_writes_target_and_residual(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "a dog barking", "-q", "rain",
                           "-o", str(tmp_path / "out"), "-m", tiny_model, "--quiet")
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "out" / "song").iterdir())
    assert files == ["a-dog-barking.wav", "rain.wav", "residual.wav"]
    info = sf.info(tmp_path / "out" / "song" / "rain.wav")
    assert info.channels == 2 and info.samplerate == 16000 and info.frames == 32000 and info.subtype == "PCM_16"


def test_a_query_that_matches_little_of_the_input_gets_a_note(capsys, song, tmp_path, model_dir):
    """A near-silent track is either an absent sound or words the model does not know: say so, not nothing."""
    from lass.models.config import ModelConfig
    from lass.models.registry import save_model
    from lass.models.separator import MaskSeparator

    faint = tmp_path / "faint.safetensors"  # every mask 0.05: each track 26 dB below the input
    save_model(MaskSeparator(ModelConfig(name="faint", network="constant", network_args={"value": 0.05})), faint)
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "a drum", "-o", str(tmp_path / "a"), "-m", str(faint),
                           "--quiet")
    assert code == 0, err
    # under --quiet no line names the file, so the note does
    assert f"{song}: note: 'a drum' came out 26 dB below the input: little of the input matched it" in err
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "a drum", "-o", str(tmp_path / "b"),
                           "-m", str(model_dir / "zeros.safetensors"), "--quiet")
    assert code == 0 and "note: 'a drum' is silent: little of the input matched it" in err
    for model in ("half", "ones"):  # 6 and 0 dB below: a track the query found
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "a drum", "-o", str(tmp_path / model),
                               "-m", str(model_dir / f"{model}.safetensors"), "--quiet")
        assert code == 0 and "note:" not in err, err


def test_two_queries_that_find_one_sound_get_a_note_about_the_residual(capsys, song, tmp_path, model_dir):
    half = str(model_dir / "half.safetensors")  # every mask 0.5: every query finds the same sound, 6 dB down
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "a drum", "-q", "rain", "-o", str(tmp_path / "a"),
                           "-m", half, "--quiet")
    assert code == 0, err
    assert "note: 'a drum' and 'rain' found the same sound (correlation 1.00)" in err
    for other in (["--no-residual"], ["-m", str(model_dir / "zeros.safetensors")]):  # no residual; silent tracks
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "a drum", "-q", "rain", "-o",
                               str(tmp_path / other[-1][-8:]), "-m", half, *other, "--quiet")
        assert code == 0 and "found the same sound" not in err, err
    from lass import Separator
    from lass.api import OutputOptions

    silent = Separator(str(model_dir / "zeros.safetensors")).separate_to_files(
        song, ["a drum", "rain"], options=OutputOptions(directory=str(tmp_path / "api")))
    assert silent.correlations == {"a drum": {"rain": 0.0}, "rain": {"a drum": 0.0}}  # silent tracks: 0, not NaN


def test_the_same_sound_note_takes_tracks_near_one_and_not_two_sounds_the_model_half_parted(capsys, song, tmp_path,
                                                                                            tiny_model, monkeypatch):
    """Tracks of one sound named twice correlate 0.97 or more; of two sounds the model did not fully part, up to
    about 0.9 (cli.SAME_SOUND): only the first are told that the residual takes them out twice."""
    from lass.api import FileResult, Separator

    def result_with(correlation):
        def separate_to_files(self, path, queries, *args, **kwargs):
            return FileResult(str(path), {"a": "a.wav", "b": "b.wav", "residual": "residual.wav"}, 16000, 2.0, 16000,
                              levels_db={"a": -3.0, "b": -4.0},
                              correlations={"a": {"b": correlation}, "b": {"a": correlation}})
        return separate_to_files

    for correlation, said in ((0.97, True), (0.85, False), (0.6, False)):
        monkeypatch.setattr(Separator, "separate_to_files", result_with(correlation))
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "a", "-q", "b", "-m", tiny_model, "--quiet")
        assert code == 0 and ("found the same sound" in err) == said, (correlation, err)


def test_refuses_to_overwrite_without_force(capsys, song, tmp_path, tiny_model):
    args = ["separate", str(song), "-q", "rain", "-o", str(tmp_path), "-m", tiny_model, "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, "exists", "--force")
    assert run_cli(capsys, *args, "--force", "--int24")[0] == 0
    assert sf.info(tmp_path / "song" / "rain.wav").subtype == "PCM_24"
    # another query into the same folder: the residual exists; how to add a sound is said, and with --force the
    # earlier run's track is kept and named, since the new residual no longer takes it out
    other = ["separate", str(song), "-q", "a drum", "-o", str(tmp_path), "-m", tiny_model, "--quiet"]
    code, _, err = run_cli(capsys, *other)
    assert_one_line_error(code, err, f"output exists: {tmp_path / 'song' / 'residual.wav'}",
                          "to add a sound to an earlier run's, ask for all of them in one run")
    code, _, err = run_cli(capsys, *other, "--force", "--band", "8000")
    assert code == 0 and (f"{song}: note: {tmp_path / 'song'} also holds rain.wav (an earlier run's?); the "
                          "residual is the input minus this run's tracks only") in err
    assert f"{song}: note: --band 8000 Hz is not below the input's Nyquist frequency, 8 kHz: it changes nothing" in err
    # an input that sits in its own output folder is not another run's track
    inside = tmp_path / "inside" / "take"
    inside.mkdir(parents=True)
    (inside / "take.wav").write_bytes(song.read_bytes())
    code, _, err = run_cli(capsys, "separate", str(inside / "take.wav"), "-q", "rain", "-o", str(tmp_path / "inside"),
                           "-m", tiny_model, "--quiet")
    assert code == 0 and (inside / "rain.wav").exists() and "also holds" not in err, err


def test_missing_file(capsys, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(tmp_path / "nope.wav"), "-q", "rain", "-m", tiny_model,
                           "-o", str(tmp_path))
    assert_one_line_error(code, err, "nope.wav", "no such file")


def test_unreadable_file(capsys, tmp_path, tiny_model):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    code, _, err = run_cli(capsys, "separate", str(bad), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "notes.wav", "not a readable audio file")
    bad = tmp_path / "notes.mp3"  # libsndfile said this existing file did not exist
    bad.write_text("this is not audio")
    code, _, err = run_cli(capsys, "separate", str(bad), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "notes.mp3: not a readable audio file (its format is not recognised")


def test_a_named_pipe_is_refused_not_waited_on(capsys, tmp_path, tiny_model):
    pipe = tmp_path / "live.wav"
    os.mkfifo(pipe)  # nothing writes to it: opening it would wait forever (a subprocess, so that the test fails)
    done = subprocess.run([sys.executable, "-m", "lass", "separate", str(pipe), "-q", "rain", "-m", tiny_model,
                           "-o", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "live.wav: a pipe or device, not a file" in done.stderr and "save the audio to a file" in done.stderr


def test_zero_length_file(capsys, tmp_path, tiny_model):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    code, _, err = run_cli(capsys, "separate", str(empty), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "empty.wav", "zero length")


@pytest.mark.parametrize("subtype, channels", [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 2)])
def test_a_wav_cut_short_is_separated_with_a_note(capsys, tmp_path, tiny_model, subtype, channels):
    whole, cut = tmp_path / "whole.wav", tmp_path / "cut.wav"
    sf.write(whole, tone_noise(2.0, 16000, channels).T, 16000, subtype=subtype)
    cut.write_bytes(whole.read_bytes()[:-(whole.stat().st_size // 2)])  # a download stopped halfway
    for path in (whole, cut):
        code, _, err = run_cli(capsys, "separate", str(path), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
        assert code == 0, err
        assert ("cut short: its header declares 2.0 s and it holds 1.0 s" in err) == (path == cut), err
    assert sf.info(tmp_path / "cut" / "rain.wav").frames == sf.info(cut).frames  # what it holds, no more


def test_an_mp3_cut_short_is_noted_and_its_duration_is_what_it_holds(capsys, tmp_path, tiny_model):
    """An MP3's header (Xing) counts its samples; a download stopped halfway decodes to fewer, and the summary's
    duration and real-time factor were the header's."""
    whole, cut = tmp_path / "whole.mp3", tmp_path / "cut.mp3"
    sf.write(whole, tone_noise(4.0, 16000, 1).T, 16000)
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    held = sf.read(cut)[0].shape[0]
    assert held < sf.info(cut).frames  # what this test is about: the header counts the whole file
    for path in (whole, cut):
        code, _, err = run_cli(capsys, "separate", str(path), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
        assert code == 0, err
        assert ("the file is cut short: its header declares 4.0 s and it holds" in err) == (path == cut), err
    assert f"cut.mp3: {held / 16000:.1f} s separated" in err
    assert sf.info(tmp_path / "cut" / "rain.wav").frames == held
    # a progress display ends at 100 %: its total is what the file holds, not the header's count
    from lass import OutputOptions, Separator

    calls = []
    Separator(tiny_model, device="cpu", callback=lambda done, total: calls.append((done, total))).separate_to_files(
        cut, "rain", options=OutputOptions(directory=str(tmp_path / "api")))
    assert {total for _, total in calls} == {held} and calls[-1] == (held, held)


def test_a_flac_cut_short_is_separated_as_far_as_it_decodes(capsys, tmp_path, tiny_model):
    """A FLAC's decoder stops with an error where a download stopped ("lost sync"): that file was refused whole,
    where a WAV or an MP3 cut short is separated as far as it goes."""
    from lass import Separator

    whole, cut = tmp_path / "whole.flac", tmp_path / "cut.flac"
    sf.write(whole, tone_noise(4.0, 16000, 2).T, 16000)
    cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])
    with pytest.raises(sf.SoundFileError):
        sf.read(cut)  # what this test is about
    code, _, err = run_cli(capsys, "separate", str(cut), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path))
    assert code == 0 and "the file is cut short: its header declares 4.0 s and it holds 2." in err, err
    held = sf.info(tmp_path / "cut" / "rain.wav").frames
    assert 2.0 * 16000 < held < 2.6 * 16000  # up to a little before the cut (at 60 % of the bytes)
    assert np.allclose(sf.read(tmp_path / "cut" / "rain.wav")[0] + sf.read(tmp_path / "cut" / "residual.wav")[0],
                       sf.read(whole, frames=held)[0], atol=2e-4)  # 16-bit outputs: their sum is the input
    tracks = Separator(tiny_model, device="cpu").separate_file(cut, "rain")  # read whole, as far as it decodes
    assert 2.0 * 16000 < tracks["rain"].shape[1] < 2.6 * 16000


def test_a_wav_of_unknown_length_gets_no_cut_short_note_and_a_small_cut_is_counted(capsys, tmp_path, tiny_model):
    import struct

    whole = tmp_path / "whole.wav"
    sf.write(whole, tone_noise(2.0, 16000, 1).T, 16000, subtype="PCM_16")
    data = whole.read_bytes()
    at = data.find(b"data") + 4
    for name, size in (("sox", 0x7FFFF000), ("stream", 0xFFFFFFFF)):  # streaming writers' placeholder sizes
        (tmp_path / f"{name}.wav").write_bytes(data[:at] + struct.pack("<I", size) + data[at + 4:])
        code, _, err = run_cli(capsys, "separate", str(tmp_path / f"{name}.wav"), "-q", "rain", "-m", tiny_model,
                               "-o", str(tmp_path))
        assert code == 0 and "cut short" not in err, err
    (tmp_path / "nearly.wav").write_bytes(data[:-4])  # two 16-bit samples short
    code, _, err = run_cli(capsys, "separate", str(tmp_path / "nearly.wav"), "-q", "rain", "-m", tiny_model,
                           "-o", str(tmp_path))
    assert code == 0 and "the file is cut short: it holds 2 samples fewer than its header declares" in err


def test_silent_file_leaves_no_output(capsys, tmp_path, tiny_model):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros((16000, 1), np.float32), 16000)
    code, _, err = run_cli(capsys, "separate", str(silent), "-q", "rain", "-m", tiny_model,
                           "-o", str(tmp_path / "out"))
    assert_one_line_error(code, err, "silent")
    assert not list((tmp_path / "out").rglob("*.wav")) and not list((tmp_path / "out").rglob("*.part"))


def test_empty_query(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "   ", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "empty query")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-n", "", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "empty negative query", "--negative")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-q", " rain", "-m", tiny_model,
                           "-o", str(tmp_path))
    assert_one_line_error(code, err, "'rain' is given more than once")


def test_nan_or_infinite_samples_are_refused_and_leave_nothing(capsys, tmp_path, tiny_model):
    for name, value in [("nan.wav", np.nan), ("inf.wav", np.inf)]:
        x = tone_noise(25.0, 16000, 1)
        x[0, 21 * 16000] = value  # in the second 20 s block read, after the first was separated and written
        sf.write(tmp_path / name, x.T, 16000, subtype="FLOAT")
        code, _, err = run_cli(capsys, "separate", str(tmp_path / name), "-q", "rain", "-m", tiny_model,
                               "-o", str(tmp_path / "out"), "--quiet")
        assert_one_line_error(code, err, name, "NaN or infinite samples")
    assert not (tmp_path / "out").exists()


def test_inputs_that_would_share_an_output_folder_are_refused(capsys, song, tmp_path, tiny_model):
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "song.flac"
    sf.write(twin, tone_noise(1.0, 8000, 1).T, 8000)
    args = ["-q", "rain", "-m", tiny_model, "-o", str(tmp_path / "out"), "--force", "--quiet"]
    code, _, err = run_cli(capsys, "separate", str(song), str(twin), *args)
    assert_one_line_error(code, err, "would both write to", "song.flac")
    code, _, err = run_cli(capsys, "separate", str(song), str(song), *args)
    assert_one_line_error(code, err, "given more than once")
    assert not (tmp_path / "out").exists()


def test_a_query_named_like_a_residual_keeps_its_own_file(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "dog", "-q", "dog residual", "--per-query-residual",
                           "-m", tiny_model, "-o", str(tmp_path / "out"), "--quiet", "--float32")
    assert code == 0, err
    folder = tmp_path / "out" / "song"
    assert sorted(p.name for p in folder.iterdir()) == [
        "dog-residual-query-residual.wav", "dog-residual-query.wav", "dog-residual.wav", "dog.wav", "residual.wav"]
    mixture, dog, dog_rest = (sf.read(p, always_2d=True)[0] for p in (song, folder / "dog.wav",
                                                                       folder / "dog-residual.wav"))
    assert np.allclose(dog + dog_rest, mixture, atol=1e-4)
    other = sf.read(folder / "dog-residual-query.wav", always_2d=True)[0]
    assert not np.allclose(other, dog_rest, atol=1e-3)  # the query's own target, not a residual
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "dog", "-q", "dog residual", "--per-query-residual",
                           "-m", tiny_model, "-o", str(tmp_path / "summary"))
    assert code == 0, err  # the summary names each file by what it holds
    for label, name in (("'dog'", "dog"), ("'dog residual'", "dog-residual-query"), ("residual", "residual"),
                        ("residual without 'dog'", "dog-residual"),
                        ("residual without 'dog residual'", "dog-residual-query-residual")):
        assert f"  {label}: {tmp_path / 'summary' / 'song' / name}.wav" in err, err


def test_the_summary_names_each_file_by_its_query_as_typed(capsys, song, tmp_path, tiny_model):
    """-q 'dog!' -q dog-2 -q dog writes dog.wav, dog-2.wav and dog-3.wav: file names alone would say that the query
    dog went to dog.wav; the summary names the query that each file holds. Standard input is refused by name."""
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "dog!", "-q", "dog-2", "-q", "dog", "-m", tiny_model,
                           "-o", str(tmp_path / "out"))
    assert code == 0, err
    folder = tmp_path / "out" / "song"
    for line in (f"'dog!': {folder / 'dog.wav'}", f"'dog-2': {folder / 'dog-2.wav'}",
                 f"'dog': {folder / 'dog-3.wav'}", f"residual: {folder / 'residual.wav'}"):
        assert f"  {line}\n" in err, err
    code, _, err = run_cli(capsys, "separate", "-", "-q", "dog", "-m", tiny_model, "-o", str(tmp_path / "o2"))
    assert_one_line_error(code, err, "reading audio from standard input (-) is not supported")


def test_unknown_model(capsys, song, tmp_path):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", "no-such-model", "-o", str(tmp_path))
    assert_one_line_error(code, err, "unknown model", "no-such-model")


def test_unwritable_output_directory(capsys, song, tmp_path, tiny_model):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model,
                           "-o", str(blocker / "out"))
    assert_one_line_error(code, err, "cannot create output folder")
    (tmp_path / "out").symlink_to(tmp_path / "gone")  # a link to a folder that was removed
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "-o", str(tmp_path / "out"))
    assert_one_line_error(code, err, f"{tmp_path / 'out'} is a link to {tmp_path / 'gone'}, which does not exist")


def test_bad_options(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--overlap", "1.5")
    assert_one_line_error(code, err, "--overlap")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--format", "flac",
                           "--float32", "-o", str(tmp_path))
    assert_one_line_error(code, err, "FLAC cannot store float32")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--segment", "inf",
                           "-o", str(tmp_path))
    assert_one_line_error(code, err, "--segment")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--query-anchor", "-1",
                           "-o", str(tmp_path))
    assert_one_line_error(code, err, "query_anchor must be a finite number >= 0, got -1.0")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--query-anchor", "0.5",
                           "-o", str(tmp_path / "anchored"), "--quiet")
    assert code == 0 and "keeps no training phrasings (it was written before query anchoring): --query-anchor has " \
        "no effect" in err
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--sample-rate", "1500",
                           "-o", str(tmp_path))
    assert_one_line_error(code, err, "must be a whole number of Hz, from 2000 to 768000, "
                                     "got 1500")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", tiny_model, "--sample-rate", "4410000",
                           "-o", str(tmp_path))  # a typo for 441000 or 44100: 100 times the samples
    assert_one_line_error(code, err, "from 2000 to 768000, got 4410000")


def test_damaged_model_file(capsys, song, tmp_path, monkeypatch, tiny_model):
    broken = tmp_path / "models" / "broken.safetensors"
    broken.parent.mkdir()
    broken.write_text("not a model")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", str(broken), "-o", str(tmp_path))
    assert_one_line_error(code, err, "broken.safetensors", "not a readable")
    # a training checkpoint (torch.save's zip) where a model file is wanted: what to do instead
    import torch

    checkpoint = tmp_path / "best.ckpt"
    torch.save({"state_dict": {}, "lass_model_config": "{}"}, checkpoint)
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", str(checkpoint), "-o", str(tmp_path))
    assert_one_line_error(code, err, f"{checkpoint}: a training checkpoint, not a model file: export it first "
                                     f"with lass export {checkpoint} -o MODEL.safetensors")
    # another system's checkpoint (AudioSep's is a Lightning .ckpt; LASS-Net's an older bare-pickle .pt): not
    # "export it first", which lass export would refuse, but what lass can load; found by name in this folder too
    torch.save({"state_dict": {"ss_model.weight": torch.zeros(2)}}, tmp_path / "audiosep.ckpt")
    import pickle

    (tmp_path / "lassnet.pt").write_bytes(pickle.dumps({"weights": [0.0]}, protocol=2))
    import struct  # a damaged safetensors file whose header length starts with pickle's protocol byte: damaged
    (tmp_path / "cut.safetensors").write_bytes(struct.pack("<Q", 0x180) + b'{"x": oops')
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", str(tmp_path / "cut.safetensors"))
    assert_one_line_error(code, err, "cut.safetensors: not a readable safetensors model file")
    from safetensors.torch import save_file

    for name, config in (("list", "[1]"), ("text", "not json")):  # lass's metadata, damaged: was a traceback
        save_file({"w": torch.zeros(1)}, str(tmp_path / f"{name}.safetensors"), metadata={"lass_config": config})
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", str(tmp_path / f"{name}.safetensors"))
        assert_one_line_error(code, err, f"{name}.safetensors: a lass model file whose config is damaged (")
    monkeypatch.chdir(tmp_path)
    for name in ("audiosep.ckpt", "lassnet.pt", str(tmp_path / "lassnet.pt")):
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", name, "-o", str(tmp_path))
        assert_one_line_error(code, err, f"{name}: a PyTorch checkpoint that lass did not write; lass loads its own "
                                         ".safetensors model files", "no loader for other systems' checkpoints")
    run = tmp_path / "run"  # a training run's folder, where its model file is meant
    run.mkdir()
    (run / "model.safetensors").write_bytes(Path(tiny_model).read_bytes())
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", str(run), "-o", str(tmp_path))
    assert_one_line_error(code, err, f"{run} is a training run's folder: its model is {run / 'model.safetensors'}")
    monkeypatch.setenv("LASS_MODELS_DIR", str(tmp_path / "no such folder"))  # a typo in the variable is said
    code, out, _ = run_cli(capsys, "info")
    assert code == 0 and f"LASS_MODELS_DIR names {tmp_path / 'no such folder'}, which is not a folder" in out
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", "mine", "-o", str(tmp_path))
    assert_one_line_error(code, err, "unknown model 'mine'", "LASS_MODELS_DIR names")
    monkeypatch.setenv("LASS_MODELS_DIR", str(broken.parent))
    code, out, _ = run_cli(capsys, "info")
    assert "LASS_MODELS_DIR" not in out
    code, out, err = run_cli(capsys, "models")  # the other models are still listed
    assert code == 0 and "default" in out and "skipping" in err and "broken.safetensors" in err
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain", "-m", "broken", "-o", str(tmp_path))
    assert_one_line_error(code, err, "broken.safetensors", "not a readable")  # by name: why, not "unknown model"
    # a damaged default.safetensors in the user folder does not take the bundled model's place
    (broken.parent / "default.safetensors").write_text("not a model either")
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and out.splitlines()[1].startswith("default") and "default.safetensors" in err
    from lass.models import registry

    assert registry.resolve("default").parent == registry.PACKAGE_DIR
    code, out, _ = run_cli(capsys, "info")
    assert "broken" not in out.split("models:")[1].split("(user folder")[0]
    # a readable user default.safetensors does take its place, and lass models says so
    assert "takes the place of the bundled" not in err
    (broken.parent / "default.safetensors").write_bytes(Path(tiny_model).read_bytes())
    code, out, err = run_cli(capsys, "models")
    assert code == 0 and f"{broken.parent / 'default.safetensors'} takes the place of the bundled 'default'" in err
    # it was saved as "tiny": the list names the file (what -m takes) and says what the file calls itself
    assert f"{broken.parent / 'default.safetensors'} calls itself 'tiny'; -m takes its file name, default" in err
    code, out, _ = run_cli(capsys, "models", "--json")
    assert {"name": "default", "stored_name": "tiny"}.items() <= json.loads(out)[0].items()
    assert registry.resolve("default").parent == broken.parent


def test_several_inputs_continue_past_a_bad_one(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(tmp_path / "missing.wav"), str(song), "-q", "rain",
                           "-m", tiny_model, "-o", str(tmp_path / "out"), "--quiet")
    assert code == 1
    assert (tmp_path / "out" / "song" / "rain.wav").exists()
    assert "1 of 2 inputs failed" in err and "missing.wav" in err


def test_version_models_info(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert "lass 0.1.0" in capsys.readouterr().out
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "default" in out and "16000" in out
    code, out, _ = run_cli(capsys, "info")
    assert code == 0 and "torch" in out and "threads" in out
    from lass.train.machine import cpu_has_native_bf16

    chosen = "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    assert f"so precision auto -> {chosen}; C++ compiler for optim.compile " in out


def test_console_script_runs_as_a_process(song, tmp_path, tiny_model):
    """The installed entry point, as a user runs it: exit code and one-line error on stderr."""
    done = subprocess.run([sys.executable, "-m", "lass", "separate", str(tmp_path / "x.mp3"), "-q", "rain",
                           "-m", tiny_model], capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "no such file" in done.stderr


def test_outputs_appear_all_or_none(capsys, song, tmp_path, tiny_model, monkeypatch):
    """Interrupted or failed while the outputs are written: none of them under its final name, no temporaries; a
    full disk is one line; with --force the earlier outputs stay as they were."""
    from lass import api

    args = ["separate", str(song), "-q", "rain", "-q", "a dog", "-o", str(tmp_path / "out"), "-m", tiny_model, "--quiet"]
    converted = []

    def convert_then_stop(scratch, final, gain, clip):
        if converted:
            raise KeyboardInterrupt
        converted.append(final)
        return real_convert(scratch, final, gain, clip)

    real_convert = api.audio.convert
    monkeypatch.setattr(api.audio, "convert", convert_then_stop)
    code, _, err = run_cli(capsys, *args)
    assert code == 130 and "interrupted" in err
    assert not (tmp_path / "out").exists()  # the first output was converted, but none was put in place
    monkeypatch.setattr(api.audio, "convert", real_convert)
    assert run_cli(capsys, *args)[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "out" / "song").iterdir()}

    def disk_full(self, block):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api.audio.AtomicWriter, "write", disk_full)
    code, _, err = run_cli(capsys, *args, "--force")
    assert_one_line_error(code, err, f"could not write the outputs to {tmp_path / 'out' / 'song'}")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "song").iterdir()} == before  # no .part, unchanged


def test_a_query_with_but_not_is_read_aloud(capsys, song, tmp_path, tiny_model):
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain, but not a dog", "-m", tiny_model,
                           "-o", str(tmp_path / "out"))
    assert code == 0 and "query 'rain, but not a dog': extracting 'rain', leaving out 'a dog'" in err
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "rain (no dog)", "-m", tiny_model,
                           "-o", str(tmp_path / "quiet"), "--quiet")  # a note: said under --quiet too
    assert code == 0 and "lass: note: query 'rain (no dog)': extracting 'rain', leaving out 'dog'" in err
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["rain-but-not-a-dog.wav", "residual.wav"]
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "without rain", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "the query 'without rain' says only what to leave out")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", str(song), "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, f"the query '{song}' is an audio file: audio queries")
    code, _, err = run_cli(capsys, "separate", str(song), "-q", "dog.WAV", "-m", tiny_model, "-o", str(tmp_path))
    assert_one_line_error(code, err, "the query 'dog.WAV' names an audio file: audio queries")


def test_ctrl_c_while_outputs_are_put_in_place_waits_for_all_of_them(capsys, song, tmp_path, tiny_model, monkeypatch):
    import signal

    from lass import api

    real_publish = api.audio.publish

    def publish_after_ctrl_c(tmp, path):  # the signal comes between the renames of one input's outputs
        os.kill(os.getpid(), signal.SIGINT)
        return real_publish(tmp, path)

    monkeypatch.setattr(api.audio, "publish", publish_after_ctrl_c)
    (tmp_path / "next.wav").write_bytes(song.read_bytes())
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, _, err = run_cli(capsys, "separate", str(song), str(tmp_path / "next.wav"), "-q", "rain", "-q", "a dog",
                               "-m", tiny_model, "-o", str(tmp_path / "out"), "--quiet")
    finally:
        signal.signal(signal.SIGINT, before)
    assert code == 130 and f"interrupted once the outputs of {song} were written (1 of 2 inputs separated)" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["song"]  # the next input was not started
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["a-dog.wav", "rain.wav", "residual.wav"]


def test_output_paths_that_cannot_be_used_are_refused_first(capsys, song, tmp_path, tiny_model):
    quick = ["-q", "rain", "-m", tiny_model, "--quiet"]
    (tmp_path / "out" / "song" / "residual.wav").mkdir(parents=True)  # a folder where an output goes
    code, _, err = run_cli(capsys, "separate", str(song), *quick, "-o", str(tmp_path / "out"), "--force")
    assert_one_line_error(code, err, "residual.wav is a folder, where an output goes")
    assert sorted(p.name for p in (tmp_path / "out" / "song").iterdir()) == ["residual.wav"]
    code, _, err = run_cli(capsys, "separate", str(song), *quick, "-o", "")
    assert_one_line_error(code, err, "the output folder (directory, -o) must be a folder's path, got ''")
    code, _, err = run_cli(capsys, "separate", str(song), *quick, "-o", str(song))
    assert_one_line_error(code, err, f"the output folder (directory, -o) {song} is a file: give a folder")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "dog.wav").write_bytes(song.read_bytes())  # -q dog -o . would write its track over it
    code, _, err = run_cli(capsys, "separate", str(tmp_path / "dog" / "dog.wav"), "-q", "dog", "-m", tiny_model,
                           "-o", str(tmp_path), "--force")
    assert_one_line_error(code, err, f"the output {tmp_path / 'dog' / 'dog.wav'} is the input file itself")
    assert (tmp_path / "dog" / "dog.wav").read_bytes() == song.read_bytes()
    # FLAC holds 8 channels: refused before separating, and the next input is still separated
    nine = tmp_path / "nine.wav"
    sf.write(nine, tone_noise(0.5, 16000, 9).T, 16000)
    code, _, err = run_cli(capsys, "separate", str(nine), str(song), *quick, "-o", str(tmp_path / "f"), "--format", "flac")
    assert_one_line_error(code, err, "9 channels, and FLAC holds at most 8: use --format wav", "1 of 2 inputs failed")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["song"]
    one = tmp_path / "one.wav"  # a sample at 44.1 kHz is no sample at 8 kHz
    sf.write(one, np.array([0.5]), 44100)
    code, _, err = run_cli(capsys, "separate", str(one), *quick, "-o", str(tmp_path / "g"), "--sample-rate", "8000")
    assert_one_line_error(code, err, "1 sample at 44100 Hz is no sample at 8000 Hz")
    # names of dots only: their outputs still go into a folder of their own inside -o
    for name, folder in (("..wav", "_"), ("...wav", "__")):
        sf.write(tmp_path / name, tone_noise(0.5, 16000, 1).T, 16000, format="WAV")
        code, _, err = run_cli(capsys, "separate", str(tmp_path / name), *quick, "-o", str(tmp_path / "d" / "e"))
        assert code == 0, err
        assert (tmp_path / "d" / "e" / folder / "rain.wav").exists()
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["e"]


def test_notes_name_a_narrow_band_and_keep_long_queries_short(capsys, tmp_path, model_dir):
    low = tmp_path / "phone.wav"
    sf.write(low, tone_noise(1.0, 8000, 1).T, 8000)
    query = "rain " * 100
    code, _, err = run_cli(capsys, "separate", str(low), "-q", query, "-o", str(tmp_path / "o"),
                           "-m", str(model_dir / "zeros.safetensors"), "--quiet")
    assert code == 0, err
    note = next(line for line in err.splitlines() if "note:" in line)
    assert "the input's rate (8000 Hz) is below the model's (16000 Hz)" in note and len(note) < 400


def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """`timeout` and `kill` send SIGTERM: the run stops with 143 (128 + SIGTERM, as a shell reports it) and leaves
    no temporaries or outputs."""
    import signal
    import time

    long = tmp_path / "long.wav"
    sf.write(long, tone_noise(240.0, 16000, 1).T, 16000)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lass", "separate", str(long), "-q", "rain", "-o", str(out),
                             "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out.glob("long/.*.part")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)  # until its temporaries exist: separating has begun
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*"))


def test_audio_resampled_up_is_separated_as_its_lower_rate(capsys, tmp_path, model_dir, monkeypatch):
    """Telephone audio stored at 44.1 kHz: its band is found and the network hears it as an 8 kHz file (the band
    passed to MaskSeparator.heard), which the run says; --band full and --band HZ override, a wrong --band is
    refused."""
    from lass.audio import resample
    from lass.models.separator import MaskSeparator

    phone = tmp_path / "phone.wav"
    sf.write(phone, resample(tone_noise(2.0, 8000, 1), 8000, 44100).T, 44100)
    heard = []
    real_heard = MaskSeparator.heard
    monkeypatch.setattr(MaskSeparator, "heard", lambda self, spec, gain=1.0, band_hz=None: (
        heard.append(band_hz) or real_heard(self, spec, gain, band_hz)))
    tiny = ["-m", str(model_dir / "tiny.safetensors"), "-q", "rain", "-f"]
    code, _, err = run_cli(capsys, "separate", str(phone), *tiny, "-o", str(tmp_path / "auto"))
    assert code == 0, err
    assert heard and all(3500 < band <= 4000 for band in heard)
    assert "holds nothing above 3.8 kHz" in err or "holds nothing above 3.9 kHz" in err
    code, _, err = run_cli(capsys, "separate", str(phone), *tiny, "-o", str(tmp_path / "quiet"), "--quiet")
    assert code == 0 and f"{phone}: note: the input holds nothing above 3." in err  # notes stay under --quiet
    heard.clear()
    code, _, err = run_cli(capsys, "separate", str(phone), *tiny, "-o", str(tmp_path / "full"), "--band", "full")
    assert code == 0 and set(heard) == {None} and "holds nothing" not in err
    heard.clear()
    code, _, err = run_cli(capsys, "separate", str(phone), *tiny, "-o", str(tmp_path / "given"), "--band", "3000")
    assert code == 0 and set(heard) == {3000.0} and "holds nothing" not in err
    for wrong, message in (("0", "a frequency of at least 1000 Hz, got 0.0"), ("nan", "at least 1000 Hz, got nan"),
                           ("150", "a frequency of at least 1000 Hz, got 150.0"),
                           ("loud", "expected auto, full or a frequency in Hz")):
        with pytest.raises(SystemExit):
            main(["separate", str(phone), *tiny, "--band", wrong])
        assert message in capsys.readouterr().err
    from lass.api import OutputOptions, Separator

    separator = Separator(str(model_dir / "tiny.safetensors"))
    result = separator.separate_to_files(phone, "rain", options=OutputOptions(directory=str(tmp_path / "api"),
                                                                                force=True))
    assert 3500 < result.band_hz <= 4000
    result_auto = result.band_hz
    for given, reported in (("full", None), (None, None), (np.float32(3000), 3000.0)):
        result = separator.separate_to_files(phone, "rain", options=OutputOptions(directory=str(tmp_path / "api"),
                                                                                    force=True), band_hz=given)
        assert result.band_hz == reported and type(result.band_hz) is type(reported)  # a plain float, as JSON takes
    tracks = separator.separate_file(phone, "rain")  # in memory, the same band found and reported
    assert 3500 < tracks.band_hz <= 4000 and tracks.band_hz == pytest.approx(result_auto, abs=1e-6)
    data, rate = sf.read(phone, dtype="float32")
    for given, reported in (("full", None), (np.float32(3000), 3000.0), ("auto", tracks.band_hz)):
        assert separator.separate_tensor(data, rate, "rain", band_hz=given).band_hz == reported
    assert separator.separate_tensor(data[::4], rate // 4, "rain", band_hz="full").band_hz == rate // 4 / 2


def test_a_missing_optional_extra_is_one_line_naming_the_install(tmp_path, tiny_model):
    """`pip install -e .` alone has no lightning (training) nor matplotlib (evaluation plots): the commands that
    need them say which extra to install, before any work, instead of an ImportError's traceback."""
    data = tmp_path / "clips"
    for label in ("beep", "hum"):
        (data / label).mkdir(parents=True)
        sf.write(data / label / "a.wav", tone_noise(1.0, 16000, seed=len(label)).T, 16000)
    config = tmp_path / "mine.yaml"
    config.write_text(f"data: {{train: [{{type: folders, path: {data}}}]}}\n")
    for blocked, args, extra in (
            ("lightning", ["train", "--config", str(config)], "train"),
            ("matplotlib", ["evaluate", "--data", str(data), "-m", tiny_model, "-o", str(tmp_path / "ev")], "eval"),
            ("fast_bss_eval", ["evaluate", "--data", str(data), "-m", tiny_model, "--no-plots", "--bss", "-o",
                               str(tmp_path / "ev")], "eval")):
        code = (f"import sys; sys.modules[{blocked!r}] = None\nfrom lass.cli import main\n"
                f"sys.exit(main({args!r}))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert f'needs {blocked} here' in done.stderr and f'pip install "lass[{extra}]"' in done.stderr
    assert not (tmp_path / "ev").exists() and not (tmp_path / "runs").exists()


def test_ctrl_c_while_lass_starts_is_one_line(capsys, monkeypatch):
    from lass import cli

    def interrupted():  # building the parser imports torch: seconds in which a Ctrl-C printed a traceback
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["separate", "x.wav", "-q", "dog"]) == 130
    assert capsys.readouterr().err == "lass: interrupted\n"


def test_query_anchor_zero_separates_by_the_words_as_given(capsys, song, tmp_path):
    """The default model pulls a query toward its training phrasings; --query-anchor 0 turns that off, and the
    track changes (a query that is itself a training phrasing barely moves, so the test asks in other words)."""
    tracks = {}
    for weight in (None, "0"):
        out = tmp_path / f"anchor-{weight}"
        extra = () if weight is None else ("--query-anchor", weight)
        code, _, err = run_cli(capsys, "separate", str(song), "-q", "a puppy yapping", "-o", str(out), "--quiet",
                               *extra)
        assert code == 0, err
        tracks[weight], _ = sf.read(out / "song" / "a-puppy-yapping.wav")
    assert tracks[None].shape == tracks["0"].shape
    assert np.abs(tracks[None] - tracks["0"]).max() > 1e-3
