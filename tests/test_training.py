"""Training: a few real optimisation steps on generated data, DDP with 2 CPU processes, fine-tuning, export."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import synthetic_class_folders, tone_noise
from lass.models.registry import load_model_file
from lass.train.config import FINE_TUNE_LR, SCRATCH_LR, config_yaml, load_config
from lass.train.machine import choose_precision, cpu_flags, cpu_has_native_bf16

pytest.importorskip("lightning")


def write_config(tmp_path, data_root, optim=None, **trainer):
    config = {
        "output_dir": str(tmp_path / "run"),
        "model": {"name": "tiny", "network_args": {"channels": 32, "hidden": 64, "repeats": 1}},
        "data": {"train": [{"type": "folders", "path": str(data_root)}],
                 "validation": {"type": "folders", "path": str(data_root)},
                 "validation_mixtures": 6, "examples_per_epoch": 8, "batch_size": 4,
                 "mixing": {"segment_seconds": 1.0}},
        "optim": {"warmup_steps": 2, **(optim or {})},
        "trainer": {"max_steps": 4, "log_every_n_steps": 1, **trainer},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class _TouchesWhenLoaded:
    """Unpickling this creates a file: what a checkpoint from an untrusted source could do instead."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (type(self.path).touch, (self.path,))


def validation_rows(run_dir, version: str) -> list[dict]:
    """The rows of a run's CSV log that carry a validation score."""
    with open(run_dir / "logs" / version / "metrics.csv", newline="") as log:
        return [row for row in csv.DictReader(log) if row["val_sdri"]]


def exported_weights(path, checkpoint: dict) -> dict:
    """A model file's weights, after checking that the training phrasings it keeps beside them (for query
    anchoring) are the checkpoint's."""
    from safetensors.torch import load_file

    from lass.models.registry import VOCABULARY_KEY

    weights = load_file(path)
    assert torch.equal(weights.pop(VOCABULARY_KEY), checkpoint["lass_query_vocabulary"])
    return weights


def lass_cmd(*args, show_warnings: bool = False, env: dict | None = None):
    env = {**os.environ, "PYTHONWARNINGS": "default" if show_warnings else "ignore", "OMP_NUM_THREADS": "1",
           **(env or {})}
    return subprocess.run([sys.executable, "-m", "lass", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_train_export_and_resume(tmp_path, capsys):
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data)
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    model = load_model_file(tmp_path / "run" / "model.safetensors")
    assert model.config.network_args["channels"] == 32
    # the file carries every phrasing the run trained on, for query anchoring (lass.query.anchor_queries)
    from lass.query import shared_text_encoder
    from lass.train.phrasing import phrasings

    trained = [text for label in ("beeping", "hissing", "humming") for text in phrasings(label)]
    assert model.vocabulary.shape == (len(trained), 384)
    assert float((model.vocabulary @ shared_text_encoder().encode(trained).T).max(1).values.min()) > 0.999
    metrics = (tmp_path / "run" / "logs" / "version_0" / "metrics.csv").read_text()
    assert "val_sdri" in metrics and "train_loss" in metrics
    assert "12 validation clips are also in the training data: validation scores will be too high" in done.stderr
    # beside the log: every setting the run used, which reads back as the same config
    kept = tmp_path / "run" / "logs" / "version_0" / "config.yaml"
    assert kept.read_text().startswith("# lass train, lass ") and "resumed" not in kept.read_text()
    given = load_config(config)
    assert given.optim.lr is None  # the config sets none: the run keeps the rate it chose
    given.optim.lr = SCRATCH_LR
    assert given.model.band_fill is None  # nor band_fill: decided from the data (all clips at the model's rate)
    given.model.band_fill = True
    assert config_yaml(load_config(kept)) == config_yaml(given)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert ckpt.exists()
    exported = tmp_path / "exported.safetensors"
    done = lass_cmd("export", str(ckpt), "-o", str(exported), "--name", "mine", "--mask-power", "0.7",
                    "--query-anchor", "0.25")
    assert done.returncode == 0, done.stderr[-2000:]
    again = load_model_file(exported)
    assert again.config.name == "mine" and again.config.mask_power == 0.7 and again.config.query_anchor == 0.25
    assert torch.equal(again.vocabulary, model.vocabulary)
    # an earlier export is not replaced unless asked, and a model file keeps the suffix models are found by
    written = exported.stat().st_mtime_ns
    again = lass_cmd("export", str(ckpt), "-o", str(exported))
    assert again.returncode == 1 and f"{exported} exists; choose another -o, or -f/--force" in again.stderr
    assert exported.stat().st_mtime_ns == written and load_model_file(exported).config.name == "mine"
    assert lass_cmd("export", str(ckpt), "-o", str(exported), "--force").returncode == 0
    assert load_model_file(exported).config.name == "tiny"
    wav = lass_cmd("export", str(ckpt), "-o", str(tmp_path / "model.wav"))
    assert wav.returncode == 1 and "a model file's name ends in .safetensors" in wav.stderr
    assert not (tmp_path / "model.wav").exists()
    refused = lass_cmd("export", str(ckpt), "-o", str(tmp_path / "bad.safetensors"), "--mask-power", "0")
    assert refused.returncode == 1 and "mask_power must be a finite number > 0" in refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "bad.safetensors").exists()
    # what a file is, is read from its contents: a checkpoint named .safetensors exports, a model named .ckpt is
    # said to be one; weights that do not fit their config (an older network) are one line; inf, an empty name, a
    # name that is only the suffix and a folder in the output's place are refused before anything is written
    shutil.copy(ckpt, tmp_path / "ckpt.safetensors")
    shutil.copy(exported, tmp_path / "model.ckpt")
    edited = torch.load(ckpt, map_location="cpu", weights_only=True)
    edited["state_dict"] = {k: v[:1] if v.ndim else v for k, v in edited["state_dict"].items()}
    torch.save(edited, tmp_path / "older.ckpt")
    torch.save({**edited, "lass_model_config": "[1]"}, tmp_path / "listed.ckpt")  # JSON, not a config: a traceback
    (tmp_path / "folder.safetensors").mkdir()
    from lass.cli import main

    out = str(tmp_path / "z.safetensors")
    assert main(["export", str(tmp_path / "ckpt.safetensors"), "-o", out]) == 0 and load_model_file(out)
    written, _ = os.stat(out).st_mtime_ns, capsys.readouterr()
    for args, message in (((str(tmp_path / "model.ckpt"), "-o", out, "-f"), "model.ckpt: an exported model, not a "
                                                                              "training checkpoint"),
                          ((str(tmp_path / "older.ckpt"), "-o", out, "-f"), "older.ckpt: the weights do not match "
                                                                            "the model its config describes (size "
                                                                            "mismatch for network."),
                          ((str(tmp_path / "listed.ckpt"), "-o", out, "-f"), "listed.ckpt: its model config is "
                                                                             "unusable here (a model config is a "
                                                                             "mapping of settings, got list)"),
                          ((str(ckpt), "-o", out, "-f", "--mask-power", "inf"), "mask_power must be a finite number"),
                          ((str(ckpt), "-o", out, "-f", "--query-anchor", "-1"), "query_anchor must be a finite "
                                                                                   "number >= 0"),
                          ((str(ckpt), "-o", out, "-f", "--name", " "), "--name: give a name"),
                          ((str(ckpt), "-o", str(tmp_path / ".safetensors")), "give the model a name before "
                                                                              ".safetensors"),
                          ((str(ckpt), "-o", str(tmp_path / "folder.safetensors"), "-f"), "folder.safetensors is a "
                                                                                          "folder; give a file name")):
        assert main(["export", *args]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert os.stat(out).st_mtime_ns == written and not (tmp_path / ".safetensors").exists()
    folder = lass_cmd("export", str(tmp_path / "run"), "-o", str(tmp_path / "y.safetensors"))  # the run, not a file
    assert folder.returncode == 1 and "Traceback" not in folder.stderr
    assert f"is a folder; its checkpoints: {ckpt.parent / 'best.ckpt'} (the best validation score), " in folder.stderr
    # resume continues from the checkpoint's step to a later max_steps
    # (Lightning restores the optimizer's schedule, so a new optim.lr would be silently unused: said, and kept true)
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt), "--set", "max_steps=6",
                    "--set", "optim.lr=0.5", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"continues the run's learning-rate schedule (optim.lr {SCRATCH_LR:g}); the config's optim.lr 0.5" in done.stderr
    assert f"start a new run from this one's model: --init {tmp_path / 'run' / 'model.safetensors'}" in done.stderr
    resumed = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 6
    kept = (tmp_path / "run" / "logs" / "version_1" / "config.yaml").read_text()
    assert f"# resumed from {ckpt}" in kept and yaml.safe_load(kept)["trainer"]["max_steps"] == 6
    assert yaml.safe_load(kept)["optim"]["lr"] == SCRATCH_LR
    # a run that stops inside an epoch (2 steps each here) still validates its last weights
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt), "--set", "max_steps=7", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    validated = validation_rows(tmp_path / "run", "version_2")
    # logged as the steps trained, in the epoch of the last one (Lightning's own row said step 8, epoch 4)
    assert validated and (int(validated[-1]["step"]), int(validated[-1]["epoch"])) == (7, 3)


def test_hints_name_the_run_folder_only_for_a_checkpoint_in_one():
    """A checkpoint copied out of its run folder (to a backup, say) has no model.safetensors two folders up."""
    from lass.train.run import run_folder, run_model

    assert run_folder(Path("runs/a/checkpoints/last.ckpt")) == Path("runs/a")
    assert run_model("runs/a/checkpoints/last.ckpt") == str(Path("runs/a/model.safetensors"))
    assert run_folder("backup/last.ckpt") is None
    assert run_model("backup/last.ckpt") == ("MODEL.safetensors (made by: lass export backup/last.ckpt -o "
                                             "MODEL.safetensors)")


def test_training_to_a_log_file_prints_progress_lines(tmp_path):
    # `nohup lass train ... > log`: a redrawn progress bar shows nothing in a file until the run ends
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, precision="auto")
    # stderr is a pipe here, as with a log file; max_steps inside an epoch: a final validation after fit
    done = lass_cmd("train", "--config", str(config), "--set", "max_steps=5", show_warnings=True)
    assert done.returncode == 0, done.stderr[-2000:]
    # nothing a user cannot act on: Lightning's advertisements and its own deprecation warnings
    assert "Tip:" not in done.stderr and "LeafSpec" not in done.stderr, done.stderr
    # the recipe's precision, made concrete for this machine and said once
    chosen = "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    assert done.stderr.count("lass: precision auto -> ") == 1 and f"auto -> {chosen} (this CPU" in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("lass train: ")]
    assert lines[0].startswith("lass train: step 1/5 (epoch 0), loss ") and "first step took" in lines[0]
    validations = [line for line in lines if "validation: SDRi" in line]
    assert [line.split()[3] for line in validations] == ["2", "4", "5"]  # after each epoch of 2 steps, and the end
    assert "\r" not in done.stderr and "━" not in done.stderr
    quiet = lass_cmd("train", "--config", str(config), "--resume", str(tmp_path / "run" / "checkpoints" / "last.ckpt"),
                     "--set", "max_steps=6", "--quiet")
    assert quiet.returncode == 0 and "lass train: step" not in quiet.stderr


def test_progress_lines_give_the_step_rate_and_time_left(monkeypatch):
    import io
    from types import SimpleNamespace

    from lass.train import progress

    clock = iter([0.0, 30.0, 228.0, 230.0])  # start, first step (compiling), then 99 steps of 2 s, validation
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    lines = progress.ProgressLines(every=100, stream=out)
    trainer = SimpleNamespace(global_step=5000, max_steps=9000, current_epoch=5, is_global_zero=True,
                              sanity_checking=False, callback_metrics={"train_loss_step": torch.tensor(-9.5)})
    lines.on_train_start(trainer, None)
    for step in (5001, 5050, 5100):  # 5050: no line between multiples of `every`
        trainer.global_step = step
        lines.on_train_batch_end(trainer, None, None, None, 0)
    trainer.callback_metrics.update(val_sdri=torch.tensor(7.5), val_si_sdri=torch.tensor(6.25))
    lines.on_validation_end(trainer, None)
    assert out.getvalue().splitlines() == [
        "lass train: step 5001/9000 (epoch 5), loss -9.50, first step took 30 s",
        "lass train: step 5100/9000 (epoch 5), loss -9.50, 2.00 s/step, about 2 h 10 min to step 9000",
        "lass train: step 5100 validation: SDRi 7.50 dB, SI-SDRi 6.25 dB"]


def test_the_progress_bar_counts_the_epochs_of_a_run_bounded_by_steps():
    # Lightning's own bar said "Epoch 0/-2" for such a run (max_epochs -1)
    from types import SimpleNamespace

    from lass.train import progress

    recipe = SimpleNamespace(max_steps=9000, num_training_batches=1000, max_epochs=-1)
    assert progress.epochs_in_run(recipe) == 9
    assert progress.epochs_in_run(SimpleNamespace(max_steps=120, num_training_batches=50)) == 3  # the last is short
    assert progress.epochs_in_run(SimpleNamespace(max_steps=-1, num_training_batches=50)) is None
    assert progress.epochs_in_run(SimpleNamespace(max_steps=10, num_training_batches=float("inf"))) is None
    bar = progress.progress_bar()
    if bar is not None:  # rich is installed
        bar._trainer = recipe
        assert bar._get_train_description(3).strip() == "Epoch 3/8"


XEON_WITHOUT_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\nmodel name\t: Xeon\n"
XEON_WITH_AMX = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_WITH_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpu_flags_tell_native_bf16_apart():
    assert {"avx512f", "avx512_vnni"} <= cpu_flags(XEON_WITHOUT_BF16) and "Xeon" not in cpu_flags(XEON_WITHOUT_BF16)
    assert not cpu_has_native_bf16(XEON_WITHOUT_BF16)  # AVX-512 alone emulates bf16
    assert cpu_has_native_bf16(XEON_WITH_AMX) and cpu_has_native_bf16(ARM_WITH_BF16)
    assert not cpu_has_native_bf16("")  # unknown: float32, never the 2.7x-slower emulation


def test_precision_auto_picks_bf16_only_where_native(capsys):
    args = {"max_steps": 9, "precision": "auto"}
    assert choose_precision(args, native_bf16=False) == {"max_steps": 9, "precision": "32-true"}
    assert "precision auto -> 32-true (this CPU has no native bf16" in capsys.readouterr().err
    assert choose_precision(args, native_bf16=True)["precision"] == "bf16-mixed"
    assert "precision auto -> bf16-mixed (this CPU has native bf16)" in capsys.readouterr().err
    assert args["precision"] == "auto"  # the config's own settings are not changed in place
    # an explicit choice is the user's: kept, with a note where bf16 would be emulated
    explicit = {"precision": "bf16-mixed"}
    assert choose_precision(explicit, native_bf16=False) == explicit
    assert "--set precision=32" in capsys.readouterr().err
    assert choose_precision(explicit, native_bf16=True) == explicit and capsys.readouterr().err == ""
    for other in ({"precision": "32"}, {}, {"precision": "bf16-mixed", "accelerator": "gpu"}):
        assert choose_precision(other, native_bf16=False) == other and capsys.readouterr().err == ""


def test_compile_without_a_cpp_compiler_trains_uncompiled_with_a_note(tmp_path):
    # torch.compile builds C++ kernels: without a compiler its first step failed with inductor's traceback
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"compile": True}, max_steps=2)
    done = lass_cmd("train", "--config", str(config), "--quiet", env={"CXX": str(tmp_path / "no-such-g++")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "optim.compile is set but no C++ compiler was found" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_malformed_configs_and_checkpoints_give_one_line(tmp_path, capsys):
    import soundfile as sf

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [1\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    not_ckpt = tmp_path / "notes.ckpt"
    not_ckpt.write_text("not a checkpoint")
    misspelt, not_a_block = tmp_path / "misspelt.yaml", tmp_path / "not_a_block.yaml"
    for path, extra in ((misspelt, {"atention_after": [1]}), (not_a_block, {"attention_after": "x"})):
        raw = yaml.safe_load(config.read_text())
        raw["model"]["network_args"].update(extra)
        path.write_text(yaml.safe_dump(raw))
    one_class = tmp_path / "one_class"
    (one_class / "rain").mkdir(parents=True)
    (data / "humming" / "humming_0.wav").rename(one_class / "rain" / "rain_0.wav")
    data_mistakes = {"no_train": ("train", [{"type": "folders", "path": str(tmp_path / "gone")}]),
                     "no_validation": ("validation", {"type": "esc50", "path": str(tmp_path / "gone")}),
                     "one_class_validation": ("validation", {"type": "folders", "path": str(one_class)})}
    for name, (key, value) in data_mistakes.items():
        raw = yaml.safe_load(config.read_text())
        raw["data"][key] = value
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    manifests = {"columns.csv": "file,text\na.wav,dog\n", "no_caption.csv": "path,caption\na.wav\n",
                 "entry.json": '{"data": [{"wav": "a.wav", "caption": "dog"}, {"wav": "b.wav"}]}',
                 "broken.json": '[{"wav": "a.wav"', "gone.csv": "path,caption\nx.wav,dog\ny.wav,rain\n"}
    for name, text in manifests.items():
        (tmp_path / name).write_text(text)
        raw = yaml.safe_load(config.read_text())
        raw["data"]["train"] = [{"type": "manifest", "path": str(tmp_path / name)}]
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    # a checkpoint from elsewhere that would run code when unpickled: refused, and the code never runs
    torch.save({"lass_model_config": "{}", "state_dict": {}, "extra": _TouchesWhenLoaded(tmp_path / "ran")},
               tmp_path / "foreign.ckpt")
    (tmp_path / "my_esc" / "audio").mkdir(parents=True)
    (tmp_path / "my_esc" / "meta.csv").write_text("filename,category\n1-1-A-0.wav,dog\n")
    (tmp_path / "empty_validation").mkdir()
    for label in ("rain", "dog"):  # clips, all digital silence: every one left out
        (tmp_path / "silent_validation" / label).mkdir(parents=True)
        sf.write(tmp_path / "silent_validation" / label / "a.wav", np.zeros(8000, np.float32), 16000)
    for name, key, value in (("no_fold", "train", [{"type": "esc50", "path": str(tmp_path / "my_esc")}]),
                             ("empty_validation", "validation", {"type": "folders",
                                                                 "path": str(tmp_path / "empty_validation")}),
                             ("silent_validation", "validation", {"type": "folders",
                                                                  "path": str(tmp_path / "silent_validation")})):
        raw = yaml.safe_load(config.read_text())
        raw["data"][key] = value
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    cases = [
        (("train", "--config", str(tmp_path / "columns.csv.yaml")), "columns.csv: expected columns path, caption; "
                                                                    "found file, text (its first line must be the "
                                                                    "header: path,caption)"),
        (("train", "--config", str(tmp_path / "no_caption.csv.yaml")), "no_caption.csv, row 1 after the header: "
                                                                       "no caption"),
        (("train", "--config", str(tmp_path / "entry.json.yaml")), 'entry.json, entry 2: expected "wav" (a file) and '
                                                                   '"caption"'),
        (("train", "--config", str(tmp_path / "broken.json.yaml")), "broken.json: not JSON"),
        (("train", "--config", str(tmp_path / "gone.csv.yaml")), "none of the 2 training clips could be used"),
        (("train", "--config", str(tmp_path / "gone.csv.yaml")), "left out 2 training clips that are not found"),
        (("train", "--config", str(config), "--set", "data.mixing.segment_seconds=0.01"),
         "data.mixing.segment_seconds (0.01 s) must hold at least one STFT frame"),
        (("train", "--config", str(config), "--set", "data.phases=[{from_epoch: 2, segment_seconds: 0.01}]"),
         "data.phases[0].segment_seconds (0.01 s) must hold at least one STFT frame"),
        (("train", "--config", str(config), "--set", "model.n_fft=512", "--set", "model.hop_length=128", "--set",
          "data.mixing.segment_seconds=0.05", "--init", "default", "--print-config"),  # the initial model's STFT
         "data.mixing.segment_seconds (0.05 s) must hold at least one STFT frame of the model's n_fft (1024 samples"),
        (("train", "--config", str(tmp_path / "no_fold.yaml")), "meta.csv: expected columns filename, fold, "
                                                                "category; found filename, category"),
        (("train", "--config", str(tmp_path / "empty_validation.yaml")),
         f"data.validation: {tmp_path / 'empty_validation'}: no audio files"),
        (("train", "--config", str(tmp_path / "silent_validation.yaml")),
         f"data.validation: no clips to make validation mixtures from in {tmp_path / 'silent_validation'} (the lines "
         f"above say which were left out and why)"),
        (("train", "--config", str(config), "--set", "model.text_encoder=/no/such/encoder", "--print-config"),
         "text encoder '/no/such/encoder': not a local model folder"),
        (("train", "--config", str(tmp_path / "no_train.yaml")),
         f"data.train: folders data not found: {tmp_path / 'gone'}"),
        (("train", "--config", str(tmp_path / "no_validation.yaml")), "data.validation: esc50 data not found: "),
        (("train", "--config", str(tmp_path / "one_class_validation.yaml")),
         "data.validation: mixtures with 1 interferer need clips of at least 2 classes; this set has 1 (rain)"),
        (("train", "--config", str(misspelt)), "model.network_args: unknown setting 'atention_after' for film_tcn "
                                               "(did you mean 'attention_after'?); known: channels, hidden,"),
        # a negative size was torch's traceback, a size of 0 trained a network with empty layers and exported it
        (("train", "--config", str(config), "--set", "model.network_args.channels=-8", "--print-config"),
         "model.network_args for film_tcn: Trying to create tensor with negative dimension -8"),
        (("train", "--config", str(config), "--set", "model.network_args.cond_hidden=0", "--print-config"),
         "model.network_args for film_tcn: a layer has no weights (a size of 0?)"),
        (("train", "--config", str(not_a_block)), "model.network_args for film_tcn: invalid literal for int()"),
        (("train", "--config", str(broken)), "broken.yaml: not valid YAML (line 2)"),
        (("train", "--config", str(listed)), "a config is a mapping of sections"),
        (("train", "--config", str(config), "--set", "max_steps=[1"), "--set max_steps: cannot read the value"),
        (("train", "--config", str(config), "--set", "max_steps=ten"), "trainer.max_steps must be a whole number, "
                                                                         "got 'ten'"),
        (("train", "--config", str(config), "--set", "acelerator=cpu"),
         "trainer: unknown setting 'acelerator' (did you mean 'accelerator'?)"),
        # a device whose package is missing was Lightning's traceback
        (("train", "--config", str(config), "--set", "accelerator=tpu"), "trainer: Requirement 'torch_xla"),
        (("train", "--config", str(config), "--set", "precision=bf17", "--print-config"),
         "trainer.precision must be auto or one of 32-true, bf16-mixed"),
        (("train", "--config", str(config), "--output", str(not_ckpt)), f"output folder {not_ckpt} is a file"),
        (("train", "--config", str(config), "--set", f"data.train=[{{type: folders, path: {broken}}}]"),
         "a folders source is a folder of class folders; a CSV or JSON list of clips and captions is `type: manifest`"),
        (("train", "--config", str(config), "--set", "data.batch_size=0"), "data.batch_size must be at least 1, got 0"),
        (("train", "--config", str(config), "--resume", str(not_ckpt)),
         "notes.ckpt: neither a lass training checkpoint nor a lass model file"),
        (("train", "--config", str(config), "--resume", str(tmp_path / "gone.ckpt")), "checkpoint to resume not found"),
        (("train", "--config", str(config), "--resume", str(tmp_path)), f"--resume takes a checkpoint file, and "
                                                                         f"{tmp_path} is a folder"),
        (("export", str(not_ckpt), "-o", str(tmp_path / "x.safetensors")),
         "notes.ckpt: neither a lass training checkpoint nor a lass model file (not a PyTorch or safetensors file)"),
        (("export", str(config), "-o", str(tmp_path / "x.safetensors")),
         "neither a lass training checkpoint nor a lass model file (not a PyTorch"),
        (("export", str(tmp_path / "foreign.ckpt"), "-o", str(tmp_path / "x.safetensors")),
         "foreign.ckpt: not a lass training checkpoint (it holds Python objects beyond tensors and plain values"),
        (("train", "--config", str(config), "--resume", str(tmp_path / "foreign.ckpt")),
         "foreign.ckpt: not a lass training checkpoint (it holds Python objects"),
    ]
    from lass.cli import main

    for args, message in cases:  # in this process (main catches what it says in one line): 30 starts take minutes
        code = main([*args, "--quiet"] if args[0] == "train" else list(args))
        err = capsys.readouterr().err
        assert code == 1 and message in err, (args, err[-1500:])
    done = lass_cmd(*cases[0][0], "--quiet")  # and once as a command: one line, no traceback
    assert done.returncode == 1 and cases[0][1] in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "x.safetensors").exists()
    assert not (tmp_path / "ran").exists()


def test_config_mistakes_name_the_setting_and_what_it_must_be(tmp_path):
    """Every section and value is checked when the config loads: unknown keys (with the nearest known one),
    wrong types, values out of range, data sources in the wrong shape, trainer settings Lightning lacks."""
    from lass.train.config import check_trainer_settings, load_config

    config = write_config(tmp_path, tmp_path)

    def loaded(*overrides: str, edit=None):
        raw = yaml.safe_load(config.read_text())
        if edit:
            edit(raw)
        path = tmp_path / "edited.yaml"
        path.write_text(yaml.safe_dump(raw))
        return load_config(path, overrides)

    # numbers as YAML 1.2 reads them: 1e-3 without a dot is a number, 1:00:00:00 the time it looks like (YAML 1.1
    # made it 216000 in base 60, and Lightning failed on it after the data had loaded)
    assert loaded("max_time=1:00:00:00").trainer["max_time"] == "1:00:00:00"
    assert loaded("gradient_clip_val=1e-1").trainer["gradient_clip_val"] == 0.1
    from lass.train.config import config_yaml  # and text that reads so is written in quotes, to read back as text

    (tmp_path / "again.yaml").write_text(config_yaml(loaded("model.name='1e5'")))
    assert load_config(tmp_path / "again.yaml").model.name == "1e5"
    mistakes = [
        ({"optimiser": {"lr": 1e-3}}, "config: unknown section 'optimiser' (did you mean 'optim'?)"),
        ({"optim": {"wieght_decay": 0.1}}, "optim: unknown setting 'wieght_decay' (did you mean 'weight_decay'?)"),
        # a setting in the wrong section is sent to its own (optim's max_steps was "did you mean 'warmup_steps'?")
        ({"optim": {"max_steps": 100}}, "optim: unknown setting 'max_steps' (a setting of trainer: trainer.max_steps)"),
        ({"lr": 0.001}, "config: unknown section 'lr' (a setting of optim: optim.lr)"),
        ({"data": {"snr_db": [-5, 5]}},
         "data: unknown setting 'snr_db' (a setting of data.mixing: data.mixing.snr_db)"),
        ({"optim": {"lr": "fast"}}, "optim.lr must be a number or null, got 'fast'"),
        ({"optim": {"lr": 0}}, "optim.lr must be > 0, got 0"),
        ({"optim": {"compile": "yes"}}, "optim.compile must be true or false, got 'yes'"),
        ({"data": [1, 2]}, "data: expected a mapping of settings"),
        ({"trainer": ["max_steps", 2]}, "trainer must be a mapping"),
        ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
        ({"model": {"name": "x", "hop_length": 2048}}, "model.hop_length (2048) must not exceed model.n_fft (1024)"),
        ({"data": {"train": ["somewhere"]}}, "data.train: a list of data sources, each a mapping such as "
                                             "{type: folders, path: DIR}; got ['somewhere']"),
        ({"data": {"validation": "somewhere"}}, "data.validation: one data source"),
        ({"data": {"batch_size": 0}}, "data.batch_size must be at least 1, got 0"),
        # one step an epoch, each followed by a whole validation: a run ten times slower than meant
        ({"data": {"batch_size": 16}}, "data.examples_per_epoch (8) must be at least data.batch_size (16)"),
        ({"data": {"mixing": {"snr_db": 5}}}, "data.mixing.snr_db must be 2 numbers [lowest, highest], got 5"),
        ({"data": {"mixing": {"snr_db": [5, -5]}}}, "data.mixing.snr_db must be [lowest, highest], got [5, -5]"),
        ({"data": {"mixing": {"absent_prob": 1.5}}}, "data.mixing.absent_prob must be in [0, 1], got 1.5"),
        ({"data": {"mixing": {"interferer_probs": [0.5, 0.5]}}}, "must be lists of the same length, got [1, 2, 3] "
                                                                  "and [0.5, 0.5]"),
        ({"data": {"mixing": {"interferer_probs": [0.5, 0.5, 0.5]}}}, "interferer_probs (each >= 0, summing to 1"),
        # a misspelt `folds` was ignored: the source then trained on every fold, the validation fold too
        ({"data": {"train": [{"type": "esc50", "path": "x", "flods": [1, 2, 3]}]}},
         "data.train: data source x: unknown setting 'flods' (did you mean 'folds'?)"),
        ({"data": {"train": [{"path": "x", "flods": [1, 2, 3]}]}},  # a folders source: no suggestion before
         "data source x: unknown setting 'flods' (did you mean 'folds', a setting of esc50 sources?)"),
        ({"data": {"validation": {"type": "esc50", "path": "x", "folds": "4"}}},
         "data.validation: data source x: folds must be a list of fold numbers"),
        ({"data": {"train": [{"type": "folders", "path": "x", "root": "y"}]}},
         "unknown setting 'root' (a setting of manifest sources); folders sources take type, path"),
        ({"data": {"train": [{"type": "folder", "path": "x"}]}}, "unknown data source type 'folder'"),
        ({"data": {"train": [{"type": "esc50"}]}}, "data.train: a data source needs a path"),
        ({"data": {"train": [{"path": "x", "folds": [1]}]}}, "folds is a setting of esc50 sources: add type: esc50"),
    ]
    for change, message in mistakes:
        def edit(raw, change=change):
            for section, value in change.items():
                if isinstance(value, dict) and isinstance(raw.get(section), dict):
                    raw[section].update(value)
                else:
                    raw[section] = value
        with pytest.raises(ValueError, match=re.escape(message)):
            loaded(edit=edit)

    # what is meant is taken as meant: YAML's 1e-3 (a string to YAML 1.1), one train source as a mapping,
    # a validation source in a list of one, and --set on any setting by its path
    def one_source(raw):
        raw["optim"]["lr"] = "1e-3"
        raw["data"]["train"] = raw["data"]["train"][0]
        raw["data"]["validation"] = [raw["data"]["validation"]]
    config_read = loaded("optim.weight_decay=0.05", "max_steps=7", "data.mixing.snr_db=[-3, 3]", edit=one_source)
    assert config_read.optim.lr == 1e-3 and config_read.optim.weight_decay == 0.05
    assert config_read.trainer["max_steps"] == 7 and config_read.data.mixing.snr_db == [-3, 3]
    assert [spec["path"] for spec in config_read.data.train] == [str(tmp_path)]
    assert config_read.data.validation["path"] == str(tmp_path)
    one_fold = loaded(edit=lambda raw: raw["data"].update(validation={"type": "esc50", "path": "x", "folds": 4}))
    assert one_fold.data.validation["folds"] == [4]  # `folds: 4` means fold 4
    # a fold the data does not have was a source that quietly gave nothing
    from lass.datasets import read_dataset

    (tmp_path / "esc").mkdir()
    (tmp_path / "esc" / "meta.csv").write_text("filename,fold,category\na.wav,1,dog\nb.wav,2,rain\n")
    assert len(read_dataset({"type": "esc50", "path": str(tmp_path / "esc"), "folds": [2]})) == 1
    with pytest.raises(ValueError, match="no clips in folds 5, 6; its meta.csv has folds 1, 2"):
        read_dataset({"type": "esc50", "path": str(tmp_path / "esc"), "folds": [1, 5, 6]})
    with pytest.raises(ValueError, match=re.escape("--set data.train.path: data.train is not a section")):
        loaded("data.train.path=x")
    with pytest.raises(ValueError, match=re.escape("--set optim: a section, not a setting; set one of its settings")):
        loaded("optim=")  # was "trainer: unknown setting 'optim'"
    with pytest.raises(ValueError, match=re.escape("--set data.train[0].path: a list's items cannot be set one by")):
        loaded("data.train[0].path=x")
    with pytest.raises(ValueError, match=re.escape("seed must be from 0 to 4294967295, got -1")):
        loaded("seed=-1")

    check_trainer_settings({"max_steps": 10, "max_time": "00:05:00:00", "precision": "auto", "devices": 1})
    check_trainer_settings({"max_steps": -1, "max_time": "00:05:00:00"})
    for settings, message in (({"max_epochs": 2.5}, "trainer.max_epochs must be a whole number, got 2.5"),
                              ({"max_time": "5h"}, "trainer.max_time must be DD:HH:MM:SS"),
                              ({"callbacks": []}, "trainer.callbacks is set by lass train itself"),
                              ({"acelerator": "cpu"}, "(did you mean 'accelerator'?)"),
                              ({"lr": 1e-3}, "trainer: unknown setting 'lr' (a setting of optim: optim.lr)"),
                              # 0 once trained nothing and exported the untrained network as the model
                              ({"max_steps": 0}, "trainer.max_steps must be at least 1, or -1 for no limit"),
                              # these got past the checks and failed in Lightning, or trained nothing
                              ({"max_steps": None}, "trainer.max_steps must be a number of steps, or -1"),
                              ({"max_time": 216000}, "trainer.max_time must be DD:HH:MM:SS"),
                              ({"max_epochs": 0}, "trainer.max_epochs must be at least 1, or -1 for no limit"),
                              ({"accumulate_grad_batches": 0}, "trainer.accumulate_grad_batches must be at least 1"),
                              ({"limit_train_batches": 0}, "trainer.limit_train_batches is 0: no step would be")):
        with pytest.raises(ValueError, match=re.escape(message)):
            check_trainer_settings(settings)


def test_a_run_without_validation_data_says_so_and_exports_its_last_weights(tmp_path):
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, max_steps=3)  # stops inside the second epoch
    raw = yaml.safe_load(config.read_text())
    del raw["data"]["validation"]
    config.write_text(yaml.safe_dump(raw))
    done = lass_cmd("train", "--config", str(config), "--quiet", show_warnings=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no data.validation in the config: no validation scores, and the exported model is the last one" in done.stderr
    assert "Total length of `list`" not in done.stderr  # Lightning's warning about an empty validation loop
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 3
    exported = exported_weights(tmp_path / "run" / "model.safetensors", last)
    assert all(torch.equal(value, last["state_dict"]["model." + key].to(value.dtype)) for key, value in exported.items())


def test_ctrl_c_finishes_the_step_keeps_it_and_says_how_to_go_on(tmp_path):
    """Ctrl-C (or SIGTERM) inside an epoch, before any checkpoint: the run finishes its step, checkpoints,
    validates and exports it, says how to go on, and exits as interrupted; the resume carries on from that step.
    Before, everything since the last epoch's end was lost ("nothing was kept")."""
    import signal

    data = synthetic_class_folders(tmp_path / "data")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        config = write_config(tmp_path, data, max_steps=100000)
        raw = yaml.safe_load(config.read_text())
        raw["data"]["examples_per_epoch"] = 4000  # 1,000 steps an epoch: the signal comes inside the first
        raw["output_dir"] = str(tmp_path / f"run{signum}")
        config.write_text(yaml.safe_dump(raw))
        run_dir = tmp_path / f"run{signum}"
        # Ctrl-C's default action even where the tests run in the background, whose SIGINT is ignored and inherited
        run = subprocess.Popen([sys.executable, "-m", "lass", "train", "--config", str(config)], env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        for line in run.stderr:  # progress lines: stderr is a pipe here
            if line.startswith("lass train: step 1/100000"):  # the first step is done, no checkpoint yet
                break
        run.send_signal(signum)
        try:
            rest = run.communicate(timeout=120)[1]
        except subprocess.TimeoutExpired:
            run.kill()
            pytest.fail("lass train went on after the signal")
        assert run.returncode == status and "Traceback" not in rest, rest[-2000:]
        assert "stopping after this step" in rest
        said = next(line for line in rest.splitlines() if line.startswith("lass train: stopped at step "))
        step = int(said.split("stopped at step ")[1].split(";")[0])
        assert 1 <= step < 1000  # inside the first epoch
        assert f"{run_dir / 'model.safetensors'} holds the best validated model so far (step {step})" in said
        last = run_dir / "checkpoints" / "last.ckpt"
        recorded = run_dir / "logs" / "version_0" / "config.yaml"
        go_on = f"lass train --config {recorded} --resume {last} --output {run_dir}"
        assert said.endswith(f"To go on from step {step}: {go_on}")
        assert f"lass train: step {step} validation: SDRi" in rest  # its weights were validated
        assert load_model_file(run_dir / "model.safetensors").config.name == "tiny"
    done = lass_cmd(*go_on.split()[1:], "--set", f"max_steps={step + 1}", "--quiet")  # the command as printed
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == step + 1


def test_stop_on_signal_asks_once_stops_at_the_second_and_leaves_an_ignored_sigint_alone():
    import signal
    from types import SimpleNamespace

    from lass.signals import StoppedBySignal, signals_held
    from lass.train.stopping import StopOnSignal

    trainer = SimpleNamespace(world_size=1, should_stop=False, fit_loop=SimpleNamespace(_can_stop_early=True))
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stopper = StopOnSignal()
        stopper.on_train_start(trainer, None)
        os.kill(os.getpid(), signal.SIGINT)
        assert stopper.signum == signal.SIGINT and trainer.should_stop  # the first: finish the step
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second: at once
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
        finished = []
        with pytest.raises(KeyboardInterrupt) as held:  # while the last files are written, a signal waits
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                finished.append(True)
        assert finished and held.value.signum == signal.SIGINT  # then stops the command, which exits 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        heard = []  # a program's own handler (lass used as a library) gets the signal, once the files are whole
        signal.signal(signal.SIGINT, lambda signum, frame: heard.append((signum, len(finished))))
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)
        assert heard == [(signal.SIGINT, 2)]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pytest.raises(StoppedBySignal) as stopped:  # a block that stops the run itself keeps its own reason
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                raise StoppedBySignal(signal.SIGTERM)
        assert stopped.value.signum == signal.SIGTERM
        # a run started with SIGINT ignored (a script's background job) does not hear the terminal's Ctrl-C
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ignoring = StopOnSignal()
        ignoring.on_train_start(SimpleNamespace(**{**vars(trainer), "should_stop": False}), None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == ignoring._handle
        ignoring.restore()
    finally:
        signal.signal(signal.SIGINT, before)


def test_resumed_run_keeps_one_best_checkpoint_and_exports_it(tmp_path):
    # resuming from the first epoch's last.ckpt once wrote best-v1.ckpt beside best.ckpt and exported the stale one

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, max_steps=2)  # one epoch of 2 steps, then validation
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "first.ckpt").write_bytes((checkpoints / "best.ckpt").read_bytes())  # step 2, saved before last
    done = lass_cmd("train", "--config", str(config), "--resume", str(checkpoints / "last.ckpt"),
                    "--set", "max_steps=8", "--quiet", show_warnings=True)
    assert done.returncode == 0, done.stderr[-2000:]
    # the restored epoch's end once ran the best-checkpoint callback without a score, with Lightning's warning
    assert "could not find the monitored key" not in done.stderr
    assert "exists and is not empty" not in done.stderr  # the run's own folder: expected when resuming
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best.ckpt", "first.ckpt", "last.ckpt"]
    scores = {int(row["epoch"]): float(row["val_sdri"])
              for version in ("version_0", "version_1") for row in validation_rows(tmp_path / "run", version)}
    assert sorted(scores) == [0, 1, 2, 3]
    best = torch.load(checkpoints / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["global_step"] == 2 * (max(scores, key=scores.get) + 1)  # 2 steps per epoch
    exported = exported_weights(tmp_path / "run" / "model.safetensors", best)
    weights = {key.removeprefix("model."): value for key, value in best["state_dict"].items()}
    assert exported.keys() <= weights.keys() and len(exported) > 10
    assert all(torch.equal(exported[key], weights[key].to(exported[key].dtype)) for key in exported)
    # resumed from an older checkpoint, with optim settings changed: last.ckpt is replaced (it was last-v1.ckpt
    # beside a stale last.ckpt), and each change is said: weight decay is the optimizer state's, warm-up is taken
    done = lass_cmd("train", "--config", str(config), "--resume", str(checkpoints / "first.ckpt"), "--set",
                    "max_steps=4", "--set", "optim.weight_decay=0.5", "--set", "optim.warmup_steps=3", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from step 2: the steps after it in {checkpoints}'s last.ckpt (step 8)" in done.stderr
    assert "--resume keeps the run's optim.weight_decay 0.01 (restored with its optimizer's state)" in done.stderr
    assert ("this run changes optim.warmup_steps 3 (the run had optim.warmup_steps 2): taken from step 2 on"
            in done.stderr)
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best.ckpt", "first.ckpt", "last.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 4
    recorded = yaml.safe_load((tmp_path / "run" / "logs" / "version_2" / "config.yaml").read_text())
    assert recorded["optim"]["weight_decay"] == 0.01 and recorded["optim"]["warmup_steps"] == 3


def test_a_moved_run_resumes_with_its_best_checkpoint(tmp_path):
    """A run folder moved (or copied from another machine) resumes as in place: Lightning alone forgot the best
    score, wrote best-v1.ckpt and last-v1.ckpt beside the files and exported the resumed part's best."""
    import shutil

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, max_steps=4)  # two epochs of 2 steps, each validated
    assert lass_cmd("train", "--config", str(config), "--quiet").returncode == 0
    shutil.move(tmp_path / "run", tmp_path / "moved")
    moved = tmp_path / "moved" / "checkpoints"
    done = lass_cmd("train", "--config", str(config), "--output", str(tmp_path / "moved"), "--resume",
                    str(moved / "last.ckpt"), "--set", "max_steps=8", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in moved.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(moved / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 8
    scores = {int(row["epoch"]): float(row["val_sdri"])
              for version in ("version_0", "version_1") for row in validation_rows(tmp_path / "moved", version)}
    best = torch.load(moved / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["global_step"] == 2 * (max(scores, key=scores.get) + 1)  # the best of all four epochs
    exported = exported_weights(tmp_path / "moved" / "model.safetensors", best)
    assert all(torch.equal(exported[key], best["state_dict"]["model." + key].to(exported[key].dtype))
               for key in exported)
    # the state under ModelCheckpoint's own key: checkpoints of earlier versions (plain Lightning) resume with it
    assert all(key.startswith("ModelCheckpoint{") for key in best["callbacks"])
    # resumed into another folder: the best checkpoint comes along; into one holding another run: refused
    done = lass_cmd("train", "--config", str(config), "--output", str(tmp_path / "other"), "--resume",
                    str(moved / "last.ckpt"), "--set", "max_steps=10", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "other" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    done = lass_cmd("train", "--config", str(config), "--output", str(tmp_path / "other"), "--resume",
                    str(moved / "last.ckpt"), "--set", "max_steps=12", "--quiet")
    assert done.returncode == 1 and "already holds another training run: to go on with" in done.stderr
    assert f"give --output {tmp_path / 'moved'}, or a new folder" in done.stderr
    # its best checkpoint deleted: said, and the best of the steps from here on is kept and exported
    (moved / "best.ckpt").unlink()
    done = lass_cmd("train", "--config", str(config), "--output", str(tmp_path / "moved"), "--resume",
                    str(moved / "last.ckpt"), "--set", "max_steps=10", "--quiet")
    assert done.returncode == 0 and "the run's best checkpoint (best.ckpt, validation SDRi" in done.stderr
    assert sorted(path.name for path in moved.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(moved / "best.ckpt", map_location="cpu", weights_only=False)["global_step"] in (10,)
    # moved again, then resumed into a new folder: its best checkpoint is found beside the one resumed from
    shutil.move(tmp_path / "moved", tmp_path / "far")
    done = lass_cmd("train", "--config", str(config), "--output", str(tmp_path / "third"), "--resume",
                    str(tmp_path / "far" / "checkpoints" / "last.ckpt"), "--set", "max_steps=12", "--quiet")
    assert done.returncode == 0 and "best checkpoint" not in done.stderr, done.stderr[-2000:]
    assert sorted(path.name for path in (tmp_path / "third" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_run_folder_in_use_or_holding_a_model_is_refused_and_resuming_must_match(tmp_path):
    """A folder another training is writing to (it holds the folder's lock), or that holds a model, takes no new
    run; a lock file left by a killed run is taken over. Resuming refuses max_steps already reached, another
    optimizer, --init, and --set takes the config's own top-level settings by name."""
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, max_steps=2)
    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".lass-train.lock"
    holder = ("import fcntl, sys, time\nf = open(sys.argv[1], 'a+')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
              "f.write('process 4242 on elsewhere'); f.flush(); print('held', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", holder, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        done = lass_cmd("train", "--config", str(config), "--quiet")
        assert done.returncode == 1, done.stderr[-2000:]
        assert f"another lass train (process 4242 on elsewhere) is writing to {run} (it holds {lock})" in done.stderr
    finally:
        other.kill()
        other.wait()
    assert lock.exists()  # left by the killed process, whose lock the system let go
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in run.iterdir()) == ["checkpoints", "logs", "model.safetensors"]
    last = str(run / "checkpoints" / "last.ckpt")
    cases = [(("--resume", last, "--set", "max_steps=2"), "has trained 2 steps already, and trainer.max_steps is 2"),
             (("--resume", last, "--set", "max_steps=6", "--set", "optim.optimizer=muon"),
              "was trained with optim.optimizer adamw, and this config has optim.optimizer muon"),
             (("--resume", last, "--init", "default"), "--init starts a new run from a model and --resume goes on"),
             (("--resume", last, "--set", "max_steps=6", "--set", "data.validation_mixtures=4"),
              "was validated on other mixtures than this config's data.validation makes"),
             (("--output", str(tmp_path / "kept")), "already holds a model"),
             (("--resume", str(run / "model.safetensors")), "an exported model, not a training checkpoint")]
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "model.safetensors").write_bytes((run / "model.safetensors").read_bytes())
    for args, message in cases:
        done = lass_cmd("train", "--config", str(config), *args, "--quiet")
        assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    done = lass_cmd("train", "--config", str(config), "--set", "seed=7", "--set", f"output_dir={tmp_path / 'x'}",
                    "--print-config")
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["seed"] == 7 and shown["output_dir"] == str(tmp_path / "x") and "seed" not in shown["trainer"]


def test_time_limit_before_max_steps_warns_and_still_exports(tmp_path):
    # on a machine slower than the recipe's, max_time ends the run first: say so instead of a silent short model
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, max_steps=100000, max_time="00:00:00:01")
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max_time (00:00:00:01) stopped training at step" in done.stderr
    assert "of 100000" in done.stderr
    recorded = tmp_path / "run" / "logs" / "version_0" / "config.yaml"
    assert (f"lass train --config {recorded} --resume {tmp_path / 'run' / 'checkpoints' / 'last.ckpt'} --output "
            f"{tmp_path / 'run'} --set max_time=DD:HH:MM:SS") in done.stderr
    assert (tmp_path / "run" / "model.safetensors").exists()
    # the README's remedy: resume with a longer limit, which the checkpoint's carried timer then allows
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    step = torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt), "--set", "max_time=00:01:00:00",
                    "--set", f"max_steps={step + 2}", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "max_time" not in done.stderr  # the run reached its steps: no time-limit warning
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"] == step + 2


def test_ema_weights_are_validated_checkpointed_and_exported(tmp_path):
    from lass.train.run import load_checkpoint

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"ema_decay": 0.5})
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt_path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    moved = [k for k in averaged if k.startswith("model.") and not torch.equal(averaged[k], current[k])]
    assert moved  # the checkpoint's weights are the average, not the last step's
    exported = load_checkpoint(ckpt_path).state_dict()
    assert all(torch.equal(exported[k[len("model."):]], v) for k, v in averaged.items() if k.startswith("model."))
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt_path), "--set", "max_steps=6", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 6 and "current_model_state" in resumed  # the average went on too
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt_path), "--set", "max_steps=8", "--set",
                    "optim.ema_decay=0", "--quiet")
    assert done.returncode == 1 and "was trained with optim.ema_decay above 0, and this config has optim.ema_decay " \
        "at 0: resume with the run's own settings" in done.stderr, done.stderr[-2000:]
    bad = write_config(tmp_path, data, optim={"ema_decay": 1.0})
    refused = lass_cmd("train", "--config", str(bad), "--quiet")
    assert refused.returncode == 1 and "ema_decay must be in [0, 1)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_muon_updates_hidden_matrices_and_resumes(tmp_path):
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator
    from lass.train.optimizers import build_optimizer

    model = MaskSeparator(ModelConfig(network_args={"channels": 32, "hidden": 64, "repeats": 1}))
    optimizer = build_optimizer("muon", model, lr=1e-3, weight_decay=0.01, muon_lr_scale=5.0)
    by_id = {id(p): name for name, p in model.named_parameters()}
    muon = [by_id[id(p)] for g in optimizer.optimizers["muon"].param_groups for p in g["params"]]
    adamw = [by_id[id(p)] for g in optimizer.optimizers["adamw"].param_groups for p in g["params"]]
    assert sorted(muon + adamw) == sorted(by_id.values())
    assert muon and all(dict(model.named_parameters())[n].ndim == 2 for n in muon)
    assert "network.input_proj.weight" in adamw and "network.output_proj.weight" in adamw
    assert optimizer.optimizers["muon"].param_groups[0]["lr"] == pytest.approx(5e-3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mixture, cond = torch.randn(2, 8000), torch.randn(2, 2 * model.config.query_dim)
    for _ in range(3):  # residual branches start at zero: their inner layers get gradients from step 2 on
        optimizer.zero_grad()
        model(mixture, cond).square().mean().backward()
        optimizer.step()
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in muon)
    restored = build_optimizer("muon", model, lr=1e-3, weight_decay=0.01, muon_lr_scale=5.0)
    restored.load_state_dict(optimizer.state_dict())
    restored.param_groups[0]["lr"] = 1e-4  # what an LR scheduler does: it must reach the inner optimizer
    assert restored.optimizers["muon"].param_groups[0]["lr"] == 1e-4
    assert restored.optimizers["muon"].state  # momentum buffers came back

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"optimizer": "muon", "muon_lr_scale": 5.0})
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt_path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert set(torch.load(ckpt_path, map_location="cpu", weights_only=False)["optimizer_states"][0]) == {
        "muon", "adamw"}
    done = lass_cmd("train", "--config", str(config), "--resume", str(ckpt_path), "--set", "max_steps=6", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.load(ckpt_path, map_location="cpu", weights_only=False)["global_step"] == 6
    for bad, message in [({"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
                         ({"optimizer": "muon", "muon_lr_scale": 0}, "muon_lr_scale must be > 0")]:
        refused = lass_cmd("train", "--config", str(write_config(tmp_path, data, optim=bad)), "--quiet")
        assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr


def test_ddp_two_cpu_processes(tmp_path):
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, strategy="ddp", devices=2, accelerator="cpu")
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "model.safetensors").exists()
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4
    assert len(list((tmp_path / "run" / "logs").glob("*/config.yaml"))) == 1  # written by one process
    assert done.stderr.count("model written to") == 1  # said by the process that wrote it


def test_print_config_shows_every_setting_and_reads_back(tmp_path):
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data)
    done = lass_cmd("train", "--config", str(config), "--set", "optim.lr=5e-4", "--set", "max_steps=9",
                    "--print-config")
    assert done.returncode == 0, done.stderr[-2000:]
    shown = yaml.safe_load(done.stdout)
    assert shown["optim"]["lr"] == 5e-4 and shown["trainer"]["max_steps"] == 9
    assert shown["data"]["mixing"]["snr_db"] == [-5.0, 5.0]  # defaults the file leaves out are shown too
    assert shown["trainer"]["gradient_clip_val"] == 5.0 and shown["trainer"]["accelerator"] == "cpu"  # lass's own
    assert not (tmp_path / "run").exists()  # nothing trained, no run folder
    (tmp_path / "shown.yaml").write_text(done.stdout)
    again = lass_cmd("train", "--config", str(tmp_path / "shown.yaml"), "--print-config")
    assert again.returncode == 0 and again.stdout == done.stdout
    # a config that sets no learning rate: the rate from scratch, or a gentler one for fine-tuning
    scratch = lass_cmd("train", "--config", str(config), "--print-config")
    tuning = lass_cmd("train", "--config", str(config), "--init", "default", "--print-config")
    assert scratch.returncode == 0 and tuning.returncode == 0, tuning.stderr[-2000:]
    assert yaml.safe_load(scratch.stdout)["optim"]["lr"] == SCRATCH_LR
    assert yaml.safe_load(tuning.stdout)["optim"]["lr"] == FINE_TUNE_LR < SCRATCH_LR
    assert f"fine-tuning default at optim.lr {FINE_TUNE_LR:g}" in tuning.stderr
    # the initial model's inference settings, unless the config sets its own
    assert yaml.safe_load(tuning.stdout)["model"]["mask_power"] == 0.7
    own = lass_cmd("train", "--config", str(config), "--init", "default", "--set", "model.mask_power=0.5",
                   "--set", "model.input_level_db=null", "--print-config")
    assert own.returncode == 0, own.stderr[-2000:]
    assert yaml.safe_load(own.stdout)["model"]["mask_power"] == 0.5
    assert yaml.safe_load(own.stdout)["model"]["input_level_db"] is None
    # the trainer section is checked as training would check it, not shown as if it would run
    misspelt = lass_cmd("train", "--config", str(config), "--set", "trainer.max_step=1", "--print-config")
    assert misspelt.returncode == 1 and "Traceback" not in misspelt.stderr
    assert "trainer: unknown setting 'max_step' (did you mean 'max_steps'?)" in misspelt.stderr
    assert not misspelt.stdout


def test_best_score_record_reaches_last_checkpoint(tmp_path, capsys):
    """The record a resume reads: rewritten in place, or, where the file cannot be, left as it was with a warning
    (the run still exports its model)."""
    from lass.train.checkpoints import RunCheckpoint, recorded_best

    callback = RunCheckpoint(dirpath=tmp_path, filename="best", monitor="val_sdri", mode="max", save_top_k=1)
    last = tmp_path / "last.ckpt"
    callback.record_best(tmp_path / "best.ckpt", 2.19)
    torch.save({"global_step": 3, "callbacks": {callback.state_key: callback.state_dict()}}, last)
    callback.record_best(tmp_path / "best.ckpt", 2.30)  # the run's own check after Lightning's loop
    torch.save({"global_step": 3, "callbacks": {callback.state_key: callback.state_dict()}}, tmp_path / "best.ckpt")
    callback.rewrite_record(last)
    assert recorded_best(torch.load(last, weights_only=True)) == pytest.approx(2.30)
    resumed = RunCheckpoint(dirpath=tmp_path, filename="best", monitor="val_sdri", mode="max", save_top_k=1)
    resumed.load_state_dict(torch.load(last, weights_only=True)["callbacks"][callback.state_key])
    assert float(resumed.best_model_score) == pytest.approx(2.30)
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_text("not a checkpoint")
    callback.rewrite_record(damaged)
    assert damaged.read_text() == "not a checkpoint" and not list(tmp_path.glob(".*.part"))
    assert "could not record the best score in" in capsys.readouterr().err


def test_fine_tune_default_model_on_own_folder(tmp_path):
    """`lass train --init default` on a folder of the user's clips: same architecture, new weights."""
    from lass.models import registry

    import soundfile as sf

    data = synthetic_class_folders(tmp_path / "data")
    for clip in sorted(data.glob("*/*.wav")):  # one's own clips come in many lengths: 1, 1.25, 1.5, 1.75 s
        wav, rate = sf.read(clip)
        sf.write(clip, wav[: int((1 + 0.25 * int(clip.stem[-1])) * rate)], rate)
    config = write_config(tmp_path, data, max_steps=3)
    done = lass_cmd("train", "--config", str(config), "--init", "default", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "keeps the architecture of 'default'" in done.stderr  # the config's tiny network is not used
    kept = (tmp_path / "run" / "logs" / "version_0" / "config.yaml").read_text()
    assert "to train it again: lass train --config THIS_FILE --init default --output NEW_FOLDER" in kept
    assert yaml.safe_load(kept)["model"]["network_args"]["channels"] == 320  # the architecture it trained
    assert yaml.safe_load(kept)["optim"]["lr"] == FINE_TUNE_LR  # the config sets none
    # validated on mixtures of different lengths, the initial model first: the score fine-tuning has to beat
    rows = validation_rows(tmp_path / "run", "version_0")
    assert int(rows[0]["step"]) == 0 and len(rows) >= 2
    initial, tuned = float(rows[0]["val_sdri"]), max(float(row["val_sdri"]) for row in rows[1:])
    assert f"the initial model (default) on the validation data: SDRi {initial:.2f} dB" in done.stderr
    # the best score, also one the run checked after Lightning's loop (the steps since its last check), is the
    # record best.ckpt and last.ckpt carry: a resume that kept an older one let a worse model overwrite best.ckpt
    from lass.train.checkpoints import recorded_best

    for name in ("best.ckpt", "last.ckpt"):
        kept_state = torch.load(tmp_path / "run" / "checkpoints" / name, map_location="cpu", weights_only=True)
        assert recorded_best(kept_state) == pytest.approx(tuned, abs=1e-5), name
    if tuned > initial:
        assert f"fine-tuning raised validation SDRi from {initial:.2f} (default) to {tuned:.2f} dB" in done.stderr
    else:
        assert f"did not beat the initial model on the validation data (best {tuned:.2f} dB" in done.stderr
    tuned = load_model_file(tmp_path / "run" / "model.safetensors")
    base = registry.load("default")
    assert tuned.config.network_args == base.config.network_args
    # its own name and provenance, the initial model's licence (the weights carry its training data)
    assert tuned.config.name == "tiny" and tuned.config.source.startswith("lass train --init default, from default")
    assert tuned.config.licence == base.config.licence and tuned.config.metrics == {}
    # and the phrasings it can anchor queries to: the initial model's, then its own; its anchor weight, the initial's
    from lass.train.phrasing import phrasings

    own = sum(len(phrasings(label)) for label in ("beeping", "hissing", "humming"))
    assert tuned.vocabulary.shape == (len(base.vocabulary) + own, 384)
    assert torch.allclose(tuned.vocabulary[: len(base.vocabulary)], base.vocabulary)
    assert tuned.config.query_anchor == base.config.query_anchor == 0.5
    changed = [k for k, v in base.state_dict().items() if not torch.equal(v, tuned.state_dict()[k])]
    assert changed
    x = torch.from_numpy(tone_noise(1.0, 16000))
    est, _ = tuned.separate_many(x, torch.zeros(1, 768))
    assert est.shape == (1, 1, 16000) and torch.isfinite(est).all()
    # its recorded config run again without --init would train from scratch under a fine-tuned name: said
    recorded = lass_cmd("train", "--config", str(tmp_path / "run" / "logs" / "version_0" / "config.yaml"),
                        "--print-config")
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    assert "this config's model was fine-tuned (lass train --init default); without --init" in recorded.stderr
    assert yaml.safe_load(recorded.stdout)["model"]["source"] == "random init"  # it would not be a fine-tune
    # resumed without --init: the run's own architecture and rate, not the config's tiny network and 2e-3
    checkpoints = tmp_path / "run" / "checkpoints"
    resumed = lass_cmd("train", "--config", str(config), "--resume", str(checkpoints / "last.ckpt"),
                       "--set", "max_steps=5", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "--resume keeps the architecture of the run it resumes" in resumed.stderr
    assert "planned its learning-rate schedule (warm-up, then cosine decay) over 3 steps, and this run plans 5 " \
        "(trainer.max_steps): the schedule is stretched to end at step 5, so from step 3 on the rate follows the new " \
        "one" in resumed.stderr
    # and still reports against the starting model, whose score its checkpoints keep
    best = max(float(row["val_sdri"]) for row in validation_rows(tmp_path / "run", "version_0")[1:]
               + validation_rows(tmp_path / "run", "version_1"))
    said = (f"fine-tuning raised validation SDRi from {initial:.2f} (default) to {best:.2f} dB" if best > initial else
            f"did not beat the initial model on the validation data (best {best:.2f} dB SDRi against {initial:.2f}")
    assert said in resumed.stderr, resumed.stderr[-2000:]
    kept = yaml.safe_load((tmp_path / "run" / "logs" / "version_1" / "config.yaml").read_text())
    assert kept["model"]["network_args"]["channels"] == 320 and kept["optim"]["lr"] == FINE_TUNE_LR
    assert int(validation_rows(tmp_path / "run", "version_1")[-1]["step"]) == 5
    assert torch.equal(load_model_file(tmp_path / "run" / "model.safetensors").vocabulary, tuned.vocabulary)
    # the same command again would mix two runs in one folder and replace the model: refused, nothing touched
    written = (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns
    again = lass_cmd("train", "--config", str(config), "--init", "default", "--quiet")
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert f"{tmp_path / 'run'} already holds a training run" in again.stderr and "--output NEW_FOLDER" in again.stderr
    assert (tmp_path / "run" / "model.safetensors").stat().st_mtime_ns == written
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_training_mixtures_follow_the_recipe():
    """Target-active crops, the absent-class share (silent target) and negatives, reproducibly."""
    from lass.datasets import ClipBank
    from lass.train.mixtures import MixingConfig, TrainingMixtures

    rate = 8000
    clips = []
    for k, label in enumerate(["a", "b", "c"]):
        sig = np.zeros(rate * 4, np.float32)
        sig[rate * 3 : rate * 3 + 800] = np.sin(np.arange(800) * (0.1 + 0.1 * k))  # short event late in the clip
        clips.append((label, sig))
    bank = ClipBank([], rate)
    for label, sig in clips:
        bank.by_label[label].append(len(bank.clips))
        bank.clips.append(sig)
        bank.labels.append(label)
    bank.label_names = sorted(bank.by_label)
    cfg = MixingConfig(segment_seconds=1.0, absent_prob=0.25, negative_prob=0.5)
    ds = TrainingMixtures(bank, cfg, {"a": [0], "b": [1], "c": [2]}, examples_per_epoch=200)
    absent = negatives = 0
    for i in range(200):
        mixture, target, pos, neg, present, _ = ds[i]
        assert mixture.shape == (rate,) and target.shape == (1, rate)
        target, pos, neg, present = target[0], pos[0], neg[0], present[0]
        if present:
            assert target.abs().max() > 0  # the crop holds the target's event
        else:
            absent += 1
            assert target.abs().max() == 0
        negatives += int(neg >= 0)
    assert 20 < absent < 80 and 40 < negatives < 160
    assert torch.equal(ds[5][0], ds[5][0])


def test_several_queries_per_mixture_name_its_sources():
    """With queries_per_mixture k, each example asks for k classes of one mixture: the references of
    the present ones add up to the mixture, an absent one's reference is silent; spare slots (fewer
    sources than slots) ask again for a source, or for an absent class at the recipe's rate."""
    from lass.datasets import ClipBank
    from lass.train.mixtures import MixingConfig, TrainingMixtures

    rate = 8000
    bank = ClipBank([], rate)
    for k, label in enumerate("abcd"):
        bank.by_label[label].append(k)
        bank.clips.append(np.sin(np.arange(rate) * (0.05 + 0.07 * k)).astype(np.float32))
        bank.labels.append(label)
    bank.label_names = sorted(bank.by_label)
    cfg = MixingConfig(segment_seconds=0.5, interferer_counts=[1], interferer_probs=[1.0], absent_prob=0.3,
                       queries_per_mixture=3)
    ds = TrainingMixtures(bank, cfg, {lab: [k] for k, lab in enumerate("abcd")}, examples_per_epoch=200)
    absent_first = spare = spare_absent = 0
    for i in range(200):
        mixture, refs, pos, neg, present, named = ds[i]
        assert refs.shape == (3, rate // 2) and pos.shape == neg.shape == present.shape == (3,)
        assert named.shape == (4,)
        heard = {}  # class -> reference: each source once, however often it is asked
        for j in range(3):
            if present[j] > 0:
                assert torch.equal(heard.setdefault(pos[j].item(), refs[j]), refs[j])
        assert len(heard) == 2  # target + 1 interferer
        assert set(torch.nonzero(named).flatten().tolist()) == set(heard)  # the presence targets: both sources
        assert torch.allclose(sum(heard.values()), mixture, atol=1e-5)
        assert float(refs[present == 0].abs().sum()) == 0
        assert len(set(pos[present == 0].tolist()) & set(heard)) == 0  # an absent class is not in the mixture
        for j in range(3):  # a negative query names another source of this mixture
            if neg[j] >= 0:
                assert neg[j].item() in heard and neg[j] != pos[j]
        absent_first += int(present[0] == 0)
        if present[0] > 0:  # 2 sources asked by the first two slots: the third is spare
            spare += 1
            spare_absent += int(present[2] == 0)
    assert 30 < absent_first < 90  # the first slot keeps the recipe's absent-query share (0.3)
    assert 0.15 < spare_absent / spare < 0.45  # and so does a spare slot; otherwise it repeats a source
    cfg.absent_prob, cfg.queries_per_mixture = 0.0, 4  # 2 sources, no absent queries: spare slots repeat them
    for i in range(10):
        _, refs, pos, _, present, _ = TrainingMixtures(bank, cfg, {lab: [k] for k, lab in enumerate("abcd")}, 10)[i]
        assert len(set(pos.tolist())) == 2 and present.tolist() == [1.0] * 4
    cfg.queries_per_mixture = 5
    with pytest.raises(ValueError, match="queries_per_mixture is 5"):
        TrainingMixtures(bank, cfg, {lab: [k] for k, lab in enumerate("abcd")}, 10)
    bank.clips[3] = np.zeros(rate, dtype=np.float32)  # class d: digital silence (a padded clip)
    cfg.queries_per_mixture, checked = 2, 0
    for i in range(40):
        _, refs, pos, _, present, named = TrainingMixtures(bank, cfg, {lab: [k] for k, lab in enumerate("abcd")}, 40)[i]
        if pos[0] != 3 and pos[1] == 3:  # asked for the silent interferer: the answer is silence
            assert present[1] == 0 and refs[1].abs().max() == 0
            assert named[3] == 0 and named[pos[0]] == 1  # and it is not among the classes heard
            checked += 1
    assert checked > 0


def test_shared_trunk_trains_on_several_queries(tmp_path):
    """A network with a query-independent trunk trains on 2 queries per mixture and is exported."""
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["network_args"]["shared_blocks"] = 3
    cfg["data"]["mixing"]["queries_per_mixture"] = 2
    config.write_text(yaml.safe_dump(cfg))
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    model = load_model_file(tmp_path / "run" / "model.safetensors")
    assert len(model.network.trunk) == 3 and len(model.network.blocks) == 3
    assert "train_loss" in (tmp_path / "run" / "logs" / "version_0" / "metrics.csv").read_text()


def test_presence_loss_trains_a_head_that_is_not_exported(tmp_path):
    """optim.presence_weight adds a class head on the shared trunk: it is logged and trained, the exported
    model is the plain separator, and a negative weight is refused at load."""
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"presence_weight": 0.5}, max_steps=6)
    cfg = yaml.safe_load(config.read_text())
    cfg["model"]["network_args"]["shared_blocks"] = 1
    config.write_text(yaml.safe_dump(cfg))
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv", newline="") as log:
        presence = [float(row["train_presence_step"]) for row in csv.DictReader(log) if row.get("train_presence_step")]
    assert len(presence) == 6 and presence[-1] < presence[0]  # the head learns which classes are heard
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["state_dict"]["presence.linear.weight"].shape[0] == 3  # one output per training class
    exported = load_model_file(tmp_path / "run" / "model.safetensors")
    assert not any("presence" in name for name in exported.state_dict())
    cfg["optim"]["presence_weight"] = -1.0
    config.write_text(yaml.safe_dump(cfg))
    refused = lass_cmd("train", "--config", str(config), "--quiet")
    assert refused.returncode == 1 and "presence_weight must be >= 0" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_consistency_loss_trains_and_needs_two_query_slots(tmp_path):
    """optim.consistency_weight adds the summed-estimates loss over a mixture's query slots: it is logged while
    training, and a config without a second slot per mixture, or with a negative weight, is refused at load."""
    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"consistency_weight": 0.5}, max_steps=4)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["mixing"].update(queries_per_mixture=2, interferer_counts=[1], interferer_probs=[1.0], absent_prob=0)
    config.write_text(yaml.safe_dump(cfg))
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "run" / "logs" / "version_0" / "metrics.csv", newline="") as log:
        consistency = [float(row["train_consistency_step"]) for row in csv.DictReader(log)
                       if row.get("train_consistency_step")]
    assert len(consistency) == 4 and all(-10 <= value < 5 for value in consistency)
    for mixing, weight, message in [({"queries_per_mixture": 1}, 0.5, "needs data.mixing.queries_per_mixture of 2"),
                                    ({}, -1.0, "consistency_weight must be >= 0")]:
        cfg["data"]["mixing"].update(mixing)
        cfg["optim"]["consistency_weight"] = weight
        config.write_text(yaml.safe_dump(cfg))
        refused = lass_cmd("train", "--config", str(config), "--quiet")
        assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr


def test_feature_masking_hides_bounded_bands_and_trains(tmp_path):
    """optim.feature_masking hides one band of bins and one span of frames of the network's input in the
    chosen share of rows; the mask still applies to the whole mixture; bad values are refused at load."""
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator
    from lass.train.config import load_config
    from lass.train.module import hidden_features

    torch.manual_seed(0)
    keep = hidden_features(2000, 513, 63, 0.5)
    hidden_bins = (keep == 0).all(dim=2).sum(1)  # bins hidden in every frame: the band
    hidden_frames = (keep == 0).all(dim=1).sum(1)  # frames hidden in every bin: the span
    touched = (keep == 0).any(dim=2).any(dim=1)
    assert hidden_bins.max() <= 513 // 8 and hidden_frames.max() <= 63 // 8
    assert 0.4 < touched.float().mean() < 0.55  # about half the rows (a drawn width may be 0)
    assert torch.equal(hidden_features(8, 513, 63, 0.0), torch.ones(8, 513, 63))

    model = MaskSeparator(ModelConfig(network_args={"channels": 32, "hidden": 64, "repeats": 1}))
    model.eval()
    mixture, cond = torch.randn(2, 16000), torch.randn(2, 768)
    plain = model(mixture, cond)
    seen = model.forward_with_encoding(mixture, cond, torch.ones(2, 513, 63))[0]
    hidden = model.forward_with_encoding(mixture, cond, hidden_features(2, 513, 63, 1.0))[0]
    assert torch.allclose(plain, seen) and hidden.shape == plain.shape and not torch.allclose(plain, hidden)

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data, optim={"feature_masking": 0.5}, max_steps=2)
    assert load_config(config).optim.feature_masking == 0.5
    done = lass_cmd("train", "--config", str(config), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = yaml.safe_load(config.read_text())
    for value in (1.5, -0.1):
        cfg["optim"]["feature_masking"] = value
        config.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ValueError, match=re.escape(f"feature_masking must be in [0, 1], got {value}")):
            load_config(config)
    cfg["optim"]["feature_masking"] = 0.5
    cfg["model"]["network"] = "resunet30"
    config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match="needs the film_tcn network"):
        load_config(config)


def test_augmentation_keeps_lengths_and_shifts_pitch():
    """Each augmented source keeps the segment length; speed s moves a tone at f to s*f; the
    equaliser stays within its gain bound."""
    from lass.datasets import ClipBank
    from lass.train.mixtures import MixingConfig, TrainingMixtures, random_eq

    rate = 8000
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(rate * 2).astype(np.float32)
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(random_eq(rng, noise, 6.0))[1:]) / np.abs(np.fft.rfft(noise)[1:]))
    assert np.abs(gain_db).max() <= 6.0 + 1e-3 and np.abs(gain_db).max() > 0.1

    bank = ClipBank([], rate)
    tone = np.sin(2 * np.pi * 500 * np.arange(rate * 3) / rate).astype(np.float32)
    for k, label in enumerate(["a", "b"]):
        bank.by_label[label].append(k)
        bank.clips.append(tone)
        bank.labels.append(label)
    bank.label_names = ["a", "b"]
    cfg = MixingConfig(segment_seconds=1.0, augment_prob=1.0, speed_range=(1.2, 1.2), eq_db=0.0)
    ds = TrainingMixtures(bank, cfg, {"a": [0], "b": [1]}, examples_per_epoch=4)
    source = ds._source(np.random.default_rng(1), 0, active=True)
    assert source.shape == (rate,)
    peak_hz = np.argmax(np.abs(np.fft.rfft(source[1000:-1000]))) * rate / (rate - 2000)
    assert abs(peak_hz - 600) < 5
    mixture, target, *_ = ds[0]
    assert mixture.shape == (rate,) and target.shape == (1, rate)


def test_synthetic_room_decays_at_its_rt60_and_keeps_lengths(tmp_path):
    """The room's tail holds drr_db less energy than the direct path and falls 60 dB in rt60; a
    source put in a room keeps the segment length and gains a tail after an impulse; a room with no
    reverberation time is refused when the config loads."""
    from lass.datasets import ClipBank
    from lass.train.config import load_config
    from lass.train.mixtures import MixingConfig, TrainingMixtures, synthetic_room

    rate = 8000
    room = synthetic_room(np.random.default_rng(0), rate, rt60=0.5, drr_db=6.0)
    assert room[0] == 1.0 and len(room) == rate // 2
    assert 10 * np.log10(np.sum(room[1:] ** 2)) == pytest.approx(-6.0, abs=1e-6)
    envelope_db = 10 * np.log10(np.convolve(room[1:] ** 2, np.ones(200) / 200, mode="valid"))
    slope = np.polyfit(np.arange(len(envelope_db)) / rate, envelope_db, 1)[0]
    assert slope == pytest.approx(-60 / 0.5, rel=0.1)

    bank = ClipBank([], rate)
    click = np.zeros(rate // 4, dtype=np.float32)
    click[0] = 1.0
    for k, label in enumerate(["a", "b"]):
        bank.by_label[label].append(k)
        bank.clips.append(click)
        bank.labels.append(label)
    bank.label_names = ["a", "b"]
    cfg = MixingConfig(segment_seconds=1.0, reverb_prob=1.0, rt60_range=(0.3, 0.3), drr_db=(0.0, 0.0))
    ds = TrainingMixtures(bank, cfg, {"a": [0], "b": [1]}, examples_per_epoch=4)
    source = ds._source(np.random.default_rng(1), 0, active=True)
    assert source.shape == (rate,)
    onset = int(np.argmax(np.abs(source)))
    tail = source[onset + 1 :]
    expected = min(1.0, np.sum(room[1 : len(tail) + 1] ** 2) / np.sum(room[1:] ** 2))  # 0 dB, maybe cut short
    assert np.sum(tail ** 2) > 0.2 * expected and np.sum(source[:onset] ** 2) < 1e-9
    dry = TrainingMixtures(bank, MixingConfig(segment_seconds=1.0), {"a": [0], "b": [1]}, examples_per_epoch=4)
    assert np.count_nonzero(dry._source(np.random.default_rng(1), 0, active=True)) == 1

    config = write_config(tmp_path, tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["mixing"]["rt60_range"] = [0.0, 0.5]
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"rt60_range must be \[shortest, longest\] seconds, both > 0, got \[0.0, 0.5\]"):
        load_config(config)


def test_wandering_levels_change_a_source_slowly_within_the_set_range(tmp_path):
    """With envelope_prob 1 a steady tone's level wanders: its short-time level spans several dB but stays within
    +-envelope_db and moves slowly; at 0 the source is untouched; a negative range is refused when the config loads."""
    from lass.datasets import ClipBank
    from lass.train.config import load_config
    from lass.train.mixtures import MixingConfig, TrainingMixtures

    rate = 8000
    t = np.arange(rate * 4) / rate
    bank = ClipBank([], rate)
    for k, label in enumerate(["a", "b"]):
        bank.by_label[label].append(k)
        bank.clips.append(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
        bank.labels.append(label)
    bank.label_names = ["a", "b"]

    def levels(source: np.ndarray) -> np.ndarray:  # dB re. the tone's own RMS, in 1/40 s frames
        frames = source[: len(source) // 200 * 200].reshape(-1, 200)
        return 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) / np.sqrt(0.5))

    steady = TrainingMixtures(bank, MixingConfig(segment_seconds=2.0), {"a": [0], "b": [1]}, examples_per_epoch=4)
    assert np.ptp(levels(steady._source(np.random.default_rng(3), 0, active=True))) < 0.1
    cfg = MixingConfig(segment_seconds=2.0, envelope_prob=1.0, envelope_db=6.0, envelope_seconds=0.5)
    ds = TrainingMixtures(bank, cfg, {"a": [0], "b": [1]}, examples_per_epoch=4)
    spans = []
    for seed in range(8):
        db = levels(ds._source(np.random.default_rng(seed), 0, active=True))
        assert db.min() > -6.1 and db.max() < 6.1
        assert np.abs(np.diff(db)).max() < 12.0 / 20 + 0.2  # at most 12 dB per half second: 0.6 dB a frame
        spans.append(np.ptp(db))
    assert np.median(spans) > 3.0
    mixture, refs, *_ = ds[0]
    assert mixture.shape == (2 * rate,) and refs.shape == (1, 2 * rate)

    config = write_config(tmp_path, tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["mixing"]["envelope_db"] = -3.0
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"data.mixing.envelope_db must be >= 0, got -3.0"):
        load_config(config)


def test_same_class_pairs_add_a_second_clip_of_the_class(tmp_path):
    """With pair_prob 1 a source holds its own clip plus another clip of its class at pair_gain_db below
    it; a class with one clip stays single; a pair gain range upside down is refused when the config loads."""
    from lass.datasets import ClipBank
    from lass.train.config import load_config
    from lass.train.mixtures import MixingConfig, TrainingMixtures

    rate = 8000
    t = np.arange(rate * 2) / rate
    bank = ClipBank([], rate)
    for k, (label, hz) in enumerate([("a", 500), ("a", 1500), ("b", 3000)]):
        bank.by_label[label].append(k)
        bank.clips.append(np.sin(2 * np.pi * hz * t).astype(np.float32))
        bank.labels.append(label)
    bank.label_names = ["a", "b"]
    cfg = MixingConfig(segment_seconds=1.0, pair_prob=1.0, pair_gain_db=(-6.0, -6.0))
    ds = TrainingMixtures(bank, cfg, {"a": [0], "b": [1]}, examples_per_epoch=4)
    rng = np.random.default_rng(0)
    paired = ds._with_partner(rng, "a", 0, ds._source(rng, 0, active=True), active=True)
    spectrum = np.abs(np.fft.rfft(paired))  # 1 Hz bins
    assert 20 * np.log10(spectrum[1500] / spectrum[500]) == pytest.approx(-6.0, abs=0.1)
    single = ds._source(np.random.default_rng(0), 2, active=True)
    assert np.array_equal(ds._with_partner(np.random.default_rng(1), "b", 2, single, active=True), single)
    mixture, refs, *_ = ds[0]
    assert mixture.shape == (rate,) and refs.shape == (1, rate)

    config = write_config(tmp_path, tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["data"]["mixing"]["pair_gain_db"] = [0.0, -6.0]
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"pair_gain_db \[lowest, highest\] dB, got 0.0 and \[0.0, -6.0\]"):
        load_config(config)


def test_a_late_data_source_joins_at_its_epoch_and_changes_nothing_before(tmp_path):
    """A data source with from_epoch N is drawn from epoch N on, both its new class and its clips of a class
    already there; before it the mixtures are exactly those of the recipe without it; a bad from_epoch is
    refused when the config loads."""
    import shutil

    from lass.datasets import ClipBank, read_dataset
    from lass.train.config import load_config
    from lass.train.mixtures import MixingConfig, TrainingMixtures

    data = synthetic_class_folders(tmp_path / "data")
    (tmp_path / "late").mkdir()
    shutil.move(data / "hissing", tmp_path / "late" / "hissing")
    (tmp_path / "late" / "beeping").mkdir()  # a late clip of a class that is there from the start
    shutil.move(data / "beeping" / "beeping_3.wav", tmp_path / "late" / "beeping" / "beeping_3.wav")
    early = read_dataset({"type": "folders", "path": str(data)})
    late = read_dataset({"type": "folders", "path": str(tmp_path / "late"), "from_epoch": 2})
    assert {item.first_epoch for item in early} == {0} and {item.first_epoch for item in late} == {2}
    full, base = ClipBank(early + late, 16000), ClipBank(early, 16000)
    query_index = {label: [k] for k, label in enumerate(full.label_names)}
    hissing = query_index["hissing"][0]
    cfg = MixingConfig(segment_seconds=0.5, queries_per_mixture=2, negative_prob=0.5)
    with_late = TrainingMixtures(full, cfg, query_index, examples_per_epoch=24)
    without = TrainingMixtures(base, cfg, query_index, examples_per_epoch=24)
    for epoch in (0, 1):
        with_late.epoch = without.epoch = epoch
        assert len(with_late.by_label["beeping"]) == 3 and "hissing" not in with_late.label_names
        for i in range(24):  # all but the last tensor (classes heard, one entry per class of the bank)
            assert all(torch.equal(a, b) for a, b in zip(with_late[i][:5], without[i][:5]))
    with_late.epoch = 2
    asked = [int(q) for i in range(24) for q in with_late[i][2]]
    assert hissing in asked
    assert with_late.by_label["beeping"] == full.by_label["beeping"] and len(full.by_label["beeping"]) == 4
    with pytest.raises(ValueError, match="training epoch 0 has 0 class"):
        TrainingMixtures(ClipBank(late, 16000), cfg, query_index, examples_per_epoch=4)

    config = write_config(tmp_path, data)
    raw = yaml.safe_load(config.read_text())
    for bad in (-1, "5", 1.5):
        raw["data"]["train"][0]["from_epoch"] = bad
        config.write_text(yaml.safe_dump(raw))
        with pytest.raises(ValueError, match=r"from_epoch .* must be an integer >= 0, got"):
            load_config(config)


def test_phases_switch_crops_by_epoch_and_after_resume(tmp_path, monkeypatch):
    """data.phases changes crop length and batch size from a given epoch on, also in a resumed run;
    a malformed phase is refused when the config loads."""
    from lass.train import module
    from lass.train.config import load_config
    from lass.train.run import train

    data = synthetic_class_folders(tmp_path / "data")
    config = write_config(tmp_path, data)  # 8 examples of 4: 2 steps per epoch
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["phases"] = [{"from_epoch": 1, "segment_seconds": 0.5, "batch_size": 2}]
    config.write_text(yaml.safe_dump(cfg))
    rate = load_config(config).model.sample_rate
    seen = []
    step = module.LassModule.training_step

    def spy(self, batch, batch_idx):
        seen.append((self.current_epoch, tuple(batch[0].shape)))
        return step(self, batch, batch_idx)

    monkeypatch.setattr(module.LassModule, "training_step", spy)
    train(load_config(config), progress=False)
    long, short = (4, rate), (2, rate // 2)
    assert seen == [(0, long), (0, long), (1, short), (1, short)]
    seen.clear()
    resumed = load_config(config)
    resumed.trainer["max_steps"] = 6
    train(resumed, resume=str(tmp_path / "run" / "checkpoints" / "last.ckpt"), progress=False)
    assert seen == [(2, short), (2, short)]

    for bad, message in (({"segment_seconds": 2.0}, "from_epoch"), ({"from_epoch": 0}, ">= 1"),
                         ({"from_epoch": 2, "batch_size": 0}, "batch_size must be a positive whole number"),
                         ({"from_epoch": 2, "segment_seconds": "4s"}, "segment_seconds must be a positive"),
                         ({"from_epoch": 2, "crop": 1}, "from_epoch and any of")):
        cfg["data"]["phases"] = [bad]
        config.write_text(yaml.safe_dump(cfg))
        with pytest.raises(ValueError, match=message):
            load_config(config)


def test_a_folder_of_short_words_becomes_one_class_of_joined_clips(tmp_path):
    """`caption` names every clip of a source; `join_seconds` joins its clips, in listing order, with a short
    pause between them, until each is at least that long, keeping every sample; malformed values are refused
    when the config loads."""
    import soundfile as sf

    from lass.datasets import ClipBank, read_dataset
    from lass.train.config import load_config

    rate, words = 16000, tmp_path / "digits" / "recordings"
    words.mkdir(parents=True)
    lengths = [0.3, 0.5, 0.4, 0.6, 0.35, 0.45, 0.5, 0.3]
    for k, seconds in enumerate(lengths):
        sf.write(words / f"{k}_word.wav", tone_noise(seconds, rate, seed=k).reshape(-1), rate)
    plain = read_dataset({"type": "folders", "path": str(tmp_path / "digits")})
    assert {item.label for item in plain} == {"recordings"} and len(ClipBank(plain, rate)) == len(lengths)
    spec = {"type": "folders", "path": str(tmp_path / "digits"), "caption": "speech", "join_seconds": 1.0}
    bank = ClipBank(read_dataset(spec), rate)
    gap = int(ClipBank.JOIN_GAP_SECONDS * rate)
    assert bank.label_names == ["speech"]
    joined = [clip.shape[-1] for clip in bank.clips]
    assert all(n >= rate for n in joined[:-1])  # the last join of a label may be shorter
    assert len(joined) < len(lengths)
    parts = len(lengths) - len(joined)  # each join of k clips adds k - 1 pauses
    assert sum(joined) == sum(int(round(s * rate)) for s in lengths) + parts * gap
    first = bank.clips[0]
    assert not np.any(first[int(0.3 * rate):int(0.3 * rate) + gap])  # the pause after the first word
    assert np.any(first[:int(0.3 * rate)]) and np.any(first[int(0.3 * rate) + gap:])

    config = write_config(tmp_path, tmp_path / "digits")
    raw = yaml.safe_load(config.read_text())
    for key, bad, message in (("caption", "  ", "caption must be a non-empty text"),
                              ("join_seconds", -1, "join_seconds must be a number of seconds >= 0"),
                              ("join_seconds", "4", "join_seconds must be a number of seconds >= 0")):
        raw["data"]["train"][0] = {**spec, key: bad}
        config.write_text(yaml.safe_dump(raw))
        with pytest.raises(ValueError, match=message):
            load_config(config)


def test_manifest_paths_starting_with_a_tilde_are_under_home(tmp_path, monkeypatch):
    """`~` in a manifest is the home folder, as in a config's paths (it was read as a folder named `~`)."""
    import soundfile as sf

    from lass.datasets import read_dataset

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    sf.write(tmp_path / "home" / "hum.wav", tone_noise(1.0, 16000, seed=0).reshape(-1), 16000)
    (tmp_path / "list.csv").write_text("path,caption\n~/hum.wav,a hum\n")
    items = read_dataset({"type": "manifest", "path": str(tmp_path / "list.csv")})
    assert [(item.path, item.label) for item in items] == [(str(tmp_path / "home" / "hum.wav"), "a hum")]


def test_a_manifest_listing_a_file_per_caption_gives_one_clip_with_its_captions(tmp_path):
    """Clotho-style manifests list each file once per caption. Read as one class per caption, a file was mixed
    with itself as its own interferer, and asked for its other captions as "absent" classes."""
    import json

    import soundfile as sf

    from lass.datasets import ClipBank, read_dataset
    from lass.evaluation.protocols import label_mixtures
    from lass.train.phrasing import phrasings

    for name, seed in (("pug.wav", 0), ("bells.wav", 1), ("pages.wav", 2)):
        sf.write(tmp_path / name, tone_noise(1.0, 16000, seed=seed).reshape(-1), 16000)
    rows = [("pug.wav", "A small dog snoring"), ("pug.wav", "a small  dog snoring"), ("pug.wav", "A pug groaning"),
            ("bells.wav", "Bells are rung"), ("bells.wav", "someone hits metal"), ("pages.wav", "pages turning")]
    (tmp_path / "train.json").write_text(json.dumps({"data": [{"wav": w, "caption": c} for w, c in rows]}))
    (tmp_path / "train.csv").write_text("path,caption\n" + "".join(f"{w},{c}\n" for w, c in rows))
    for manifest in ("train.json", "train.csv"):
        items = read_dataset({"type": "manifest", "path": str(tmp_path / manifest)})
        assert [(os.path.basename(item.path), item.label, item.also) for item in items] == [
            ("pug.wav", "A small dog snoring", ("A pug groaning",)),  # the second only differs in case and spaces
            ("bells.wav", "Bells are rung", ("someone hits metal",)), ("pages.wav", "pages turning", ())]
    bank = ClipBank(items, 16000)
    assert len(bank) == 3 and bank.captions["Bells are rung"] == ["someone hits metal"]
    assert "the sound of A pug groaning" in phrasings("A small dog snoring", bank.captions["A small dog snoring"])
    for case in label_mixtures(bank, 2, seed=3):  # every clip with both others: never with itself
        assert case.label not in case.interferer_labels and len(set(case.interferer_labels)) == 2
    # a source-wide caption names every clip alike: the files' own captions no longer apply
    named = read_dataset({"type": "manifest", "path": str(tmp_path / "train.json"), "caption": "noise"})
    assert {item.label for item in named} == {"noise"} and all(item.also == () for item in named)
    # the same files in two sources under other captions (a class folder and a manifest of it): one clip each
    from lass.datasets import merge_repeated_files

    (tmp_path / "folders" / "dog").mkdir(parents=True)
    os.symlink(tmp_path / "pug.wav", tmp_path / "folders" / "dog" / "pug.wav")  # another path to the same file
    both = read_dataset({"type": "folders", "path": str(tmp_path / "folders")}) + items
    merged, repeated = merge_repeated_files(both)
    assert repeated == [str(tmp_path / "folders" / "dog" / "pug.wav")]
    assert [(item.label, item.also) for item in merged] == [
        ("dog", ("A small dog snoring", "A pug groaning")), ("Bells are rung", ("someone hits metal",)),
        ("pages turning", ())]


def test_a_model_trained_on_low_rate_clips_hears_their_empty_band_as_it_is(tmp_path, capsys):
    """band_fill is decided from the training data where the config leaves it unset: off once a quarter of the
    clips come from files below the model's rate; a fine-tune keeps the config's own setting, not its base's."""
    import soundfile as sf

    from lass.datasets import ClipBank, read_class_folders
    from lass.models.config import ModelConfig
    from lass.train.run import band_fill_for, fine_tune_config

    data = synthetic_class_folders(tmp_path / "data", clips_per_class=4)
    assert band_fill_for(ClipBank(read_class_folders(data), 16000)) is True
    low = [path for path in sorted(data.rglob("*.wav")) if path.stem.endswith(("_0", "_1"))]
    for path in low[:2]:  # 2 of 12 clips at 8 kHz: the network still learns from full-band audio
        audio, rate = sf.read(path)
        sf.write(path, audio[::2], rate // 2)
    assert band_fill_for(ClipBank(read_class_folders(data), 16000)) is True
    assert "training clips are below" not in capsys.readouterr().err
    for path in low[2:]:  # 6 of 12
        audio, rate = sf.read(path)
        sf.write(path, audio[::2], rate // 2)
    assert band_fill_for(ClipBank(read_class_folders(data), 16000)) is False
    assert "6 of 12 training clips are below the model's 16000 Hz" in capsys.readouterr().err
    base = ModelConfig(name="base", band_fill=False)
    assert fine_tune_config(ModelConfig(), base, "base").band_fill is None  # decided again from the new data
    assert fine_tune_config(ModelConfig(band_fill=True), base, "base").band_fill is True
    # inference settings at their defaults are the initial model's (a recorded config names them all)
    tuned = ModelConfig(name="base", mask_power=0.7)
    assert fine_tune_config(ModelConfig(mask_power=1.0), tuned, "base").mask_power == 0.7
    assert fine_tune_config(ModelConfig(mask_power=0.8), tuned, "base").mask_power == 0.8


def test_shipped_training_lists_keep_the_held_out_recordings_unheard():
    """The held-out recordings (and the stem song kept for evaluation) measure generalisation only while no
    training manifest holds their files, and their classes that no training label names (a frame drum, an
    orchestra) only while no training phrasing repeats their queries."""
    from lass.datasets import label_text, read_manifest
    from lass.train.phrasing import PARAPHRASES, phrasings

    configs = os.path.join(os.path.dirname(__file__), os.pardir, "configs")
    with open(os.path.join(configs, "heldout_recordings.csv"), newline="") as f:
        held_out = list(csv.DictReader(f))
    held_files = {os.path.normpath(row[key]) for row in held_out for key in ("src_wav", "noise_wav")}
    unnamed = {"a drum", "percussion", "an orchestra playing", "classical music"}
    assert unnamed <= {row["caption"] for row in held_out}
    manifests = [os.path.join(configs, name) for name in ("extra_sources.csv", "music_stems.csv")]
    items = [item for path in manifests for item in read_manifest(path, data_root="DATA")]
    trained_files = {os.path.normpath(os.path.relpath(item.path, "DATA")) for item in items}
    assert len(trained_files) == len(items) > 25
    assert not trained_files & held_files
    assert not any("Bearlin_Roads" in path for path in trained_files)  # the stem song `lass evaluate --stems` scores
    labels = set(PARAPHRASES) | {item.label for item in items}
    assert {"drums", "vocals", "guitar", "bass guitar"} <= labels
    trained_queries = {text.lower() for label in labels for text in phrasings(label_text(label))}
    assert not trained_queries & unnamed


def test_docs_name_every_setting_and_the_readme_config_loads(tmp_path):
    """docs/training.md is the settings' reference: a setting added to the config without a word there fails here;
    and the README's minimal config for one's own clips is a config that loads."""
    import dataclasses
    from pathlib import Path

    from lass.models.config import ModelConfig
    from lass.train.config import DataConfig, OptimConfig, TrainConfig
    from lass.train.mixtures import MixingConfig

    root = Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "training.md").read_text()
    blocks = re.findall(r"```.*?```", guide, flags=re.S)
    spans = re.findall(r"`[^`\n]+`", re.sub(r"```.*?```", "", guide, flags=re.S))
    named = set(re.findall(r"\w+", " ".join(blocks + spans)))  # words in code: settings as a config writes them
    for section in (TrainConfig, ModelConfig, DataConfig, OptimConfig, MixingConfig):
        unnamed = [f.name for f in dataclasses.fields(section) if f.name not in named]
        assert not unnamed, f"docs/training.md does not name {section.__name__} settings {unnamed}"
    readme = (root / "README.md").read_text()
    minimal = readme.split("A minimal config for your own clips", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "my.yaml").write_text(minimal)
    config = load_config(tmp_path / "my.yaml")
    assert config.data.train[0]["type"] == "folders" and config.trainer["max_steps"] > 0


def test_config_paths_keys_and_bare_settings_say_what_they_mean(tmp_path, monkeypatch):
    """`~` in paths is the home folder (a run's files were split between `./~/...` and the home folder); a data
    path found only from the config's own folder is taken from there; a config without output_dir gets a folder
    of its own; a key given twice, or a bare --set name of another section's setting, is one clear error."""
    import soundfile as sf

    from lass.datasets import read_dataset
    from lass.train.config import load_config

    home = tmp_path / "home"
    (home / "clips" / "rain").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    project = tmp_path / "proj"
    (project / "configs").mkdir(parents=True)
    (project / "clips" / "dog").mkdir(parents=True)
    config = project / "configs" / "mine.yaml"
    config.write_text("data:\n  train: [{type: folders, path: ~/clips}]\n"
                      "  validation: {type: folders, path: ../clips}\n")
    monkeypatch.chdir(tmp_path)
    loaded = load_config(config)
    assert loaded.data.train[0]["path"] == str(home / "clips")
    assert loaded.data.validation["path"] == str(project / "clips")  # from the config's folder: proj/clips
    assert loaded.output_dir == "runs/mine"
    (project / "configs" / "pilots").mkdir()  # a config one folder deeper reads paths against the same project
    (project / "configs" / "pilots" / "deep.yaml").write_text("data:\n  train: [{type: folders, path: clips}]\n")
    assert load_config(project / "configs" / "pilots" / "deep.yaml").data.train[0]["path"] == str(project / "clips")
    config.write_text("data: {batch_size: 2}\noptim: {lr: 1e-3}\ndata: {batch_size: 4}\n")
    with pytest.raises(ValueError, match=r"not valid YAML \(line 3\): 'data' is given twice in one section"):
        load_config(config)
    config.write_text("optim: &fast {lr: 1e-3, weight_decay: 0.1}\ntrainer: {max_steps: 3}\n")
    config.write_text(config.read_text() + "data: {validation: {<<: {type: folders, path: /x}, path: ~/clips}}\n")
    merged = load_config(config)  # YAML merge keys: their keys may be overridden, as YAML means
    assert merged.data.validation == {"type": "folders", "path": str(home / "clips")}
    for bare, meant in (("lr", "optim.lr"), ("batch_size", "data.batch_size"),
                        ("segment_seconds", "data.mixing.segment_seconds")):
        with pytest.raises(ValueError, match=re.escape(f"did you mean --set {meant}=2?")):
            load_config(config, [f"{bare}=2"])
    assert load_config(config, ["max_steps=2"]).trainer["max_steps"] == 2
    # sources of the wrong kind, and folders with nothing to train on, say so and name the folder
    (tmp_path / "esc").mkdir()
    (tmp_path / "esc" / "meta.csv").write_text("filename,fold,category\n")
    (tmp_path / "esc_repo" / "meta").mkdir(parents=True)  # ESC-50's own repository: meta/esc50.csv
    (tmp_path / "esc_repo" / "meta" / "esc50.csv").write_text("filename,fold,category\n")
    for spec, message in (({"type": "folders", "path": str(tmp_path / "esc")}, "an ESC-50 folder (meta.csv)"),
                          ({"type": "folders", "path": str(tmp_path / "esc_repo")}, "an ESC-50 folder (esc50.csv)"),
                          ({"type": "manifest", "path": str(project / "clips")}, "a manifest is a CSV"),
                          ({"type": "folders", "path": str(project / "clips")},
                           "no audio files (.aif, .aiff, .flac, .mp3, .ogg, .wav) in it: its class folders (dog) are "
                           "empty"),
                          ({"type": "folders", "pth": "x"}, "a data source needs a path (is 'pth' meant to be path?)")):
        with pytest.raises(ValueError, match=re.escape(message)):
            read_dataset(spec)
    sf.write(project / "clips" / "dog" / "a.wav", np.zeros(800, np.float32), 16000)
    sf.write(project / "clips" / "dog" / "kitchen_mix.wav", np.zeros(800, np.float32), 16000)  # a clip, not a song
    assert len(read_dataset({"type": "folders", "path": str(project / "clips")})) == 2


def test_run_folder_and_checkpoint_mistakes_are_caught_before_the_data_loads(tmp_path, capsys):
    """An output folder below a file, or a model file given as a checkpoint, is one line; a short run that
    stops inside the learning-rate warm-up gets a note."""
    from lass.models import registry
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator
    from lass.train.config import load_config
    from lass.train.run import read_checkpoint, train
    from safetensors.torch import save_file

    config = load_config(write_config(tmp_path, tmp_path / "no data here", optim={"warmup_steps": 300}))
    config.output_dir = str(tmp_path / "tiny.yaml" / "sub")
    with pytest.raises(ValueError, match=re.escape(f"cannot make the output folder {config.output_dir}: "
                                                   f"{tmp_path / 'tiny.yaml'} is a file")):
        train(config, progress=False)
    config.output_dir = str(tmp_path / "run")
    with pytest.raises(ValueError, match="data.train"):  # the data is missing: after the notes on the config
        train(config, progress=False)
    assert "warms up over optim.warmup_steps 300, and this run stops at step 4" in capsys.readouterr().err
    config.optim.warmup_steps = 4  # step k runs at (k + 1) / warmup of the rate: the 4th reaches it
    with pytest.raises(ValueError, match="data.train"):
        train(config, progress=False)
    assert "warms up" not in capsys.readouterr().err
    config.data.phases = [{"from_epoch": 2, "segment_seconds": 0.5}]  # 2 steps an epoch: from step 4, the last
    with pytest.raises(ValueError, match="data.train"):
        train(config, progress=False)
    assert ("data.phases from epoch 2 start at step 4 (2 steps an epoch), and this run stops at step 4: they are "
            "never trained") in capsys.readouterr().err
    config.trainer.update(devices=2, strategy="ddp")  # two processes share an epoch's mixtures: 1 step an epoch
    config.data.phases = [{"from_epoch": 4, "segment_seconds": 0.5}]
    with pytest.raises(ValueError, match="data.train"):
        train(config, progress=False)
    assert "data.phases from epoch 4 start at step 4 (1 step an epoch)" in capsys.readouterr().err
    del config.trainer["devices"], config.trainer["strategy"]
    model_file = registry.save_model(MaskSeparator(ModelConfig(network="constant")), tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="an exported model, not a training checkpoint: separate with it"):
        read_checkpoint(model_file)
    with pytest.raises(ValueError, match="nor a lass model file \\(unreadable: FileNotFoundError\\)"):
        read_checkpoint(tmp_path / "gone.safetensors")
    (tmp_path / "empty.ckpt").touch()
    with pytest.raises(ValueError, match="empty.ckpt: neither a lass training checkpoint nor a lass model file \\(an "
                                         "empty file\\)"):
        read_checkpoint(tmp_path / "empty.ckpt")
    deep = tmp_path / ("long-folder-name-" * 8)  # a long path: the message was once cut at 200 characters
    deep.mkdir()
    save_file({"w": torch.zeros(1)}, str(deep / "damaged.safetensors"), metadata={"lass_config": "{oops"})
    with pytest.raises(ValueError, match="damaged.safetensors: a lass model file whose config is damaged \\(.*\\); "
                                         "not a training checkpoint either"):
        read_checkpoint(deep / "damaged.safetensors")


def test_audio_beside_the_class_folders_is_named_as_left_out(tmp_path, capsys):
    from lass.datasets import read_class_folders

    data = synthetic_class_folders(tmp_path / "data", clips_per_class=1)
    first = next(data.rglob("*.wav"))
    (data / "loose.wav").write_bytes(first.read_bytes())  # no folder says what it is
    items = read_class_folders(data)
    assert len(items) == len(list(data.glob("*/*.wav"))) and not any("loose" in item.path for item in items)
    assert (f"1 audio file at the top of {data}, outside the class folders, left out (no folder names its class): "
            f"loose.wav") in capsys.readouterr().err


def test_training_vocabulary_joins_what_the_run_started_from_with_its_own_phrasings():
    """The phrasings a model file keeps for query anchoring: a new run's own; a resumed run's checkpoint's plus any
    new ones (data.train may change on resume), each once; a fine-tune's initial model's plus its own; none for a
    fine-tune of a model that keeps none, whose own classes would be unknown."""
    from lass.train.run import training_vocabulary

    torch.manual_seed(0)
    table = torch.nn.functional.normalize(torch.randn(10, 384), dim=-1)
    assert torch.equal(training_vocabulary(table), table)
    same = training_vocabulary(table, resumed={"lass_query_vocabulary": table.half()})
    assert torch.equal(same, table.half().float())  # the checkpoint's, each phrasing once: a resume writes the same
    grown = training_vocabulary(table, resumed={"lass_query_vocabulary": table[:4].half()})
    assert grown.shape == (10, 384) and torch.equal(grown[:4], table[:4].half().float())
    assert torch.allclose(grown[4:], table[4:])

    class Initial:
        vocabulary = table[5:].half().float()

    tuned = training_vocabulary(table, initial=Initial())
    assert tuned.shape == (10, 384) and torch.equal(tuned[:5], Initial.vocabulary)
    Initial.vocabulary = None
    assert training_vocabulary(table, initial=Initial()) is None


def test_group_queries_ask_for_every_source_of_the_group():
    """With group_prob, an example's own query may name a group of its target ("animals"): the reference is every
    source of that group in the mixture, a negative never names one of them, and an absent-class example names a
    group none of whose classes is heard (reference: silence). Without groups no draw changes the examples."""
    from lass.datasets import ClipBank
    from lass.train.mixtures import MixingConfig, TrainingMixtures
    from lass.train.phrasing import group_phrasings, sound_groups

    rate = 8000
    bank = ClipBank([], rate)
    labels = ["dog", "cat", "cow", "rain", "wind"]
    for k, label in enumerate(labels):
        bank.by_label[label].append(k)
        bank.clips.append(np.sin(np.arange(rate) * (0.05 + 0.07 * k)).astype(np.float32))
        bank.labels.append(label)
    bank.label_names = sorted(bank.by_label)
    groups = sound_groups(bank.label_names)
    assert set(groups["animals"]) == {"dog", "cat", "cow"} and set(groups["weather"]) == {"rain", "wind"}
    assert "music" not in groups  # none of its classes is here
    assert group_phrasings("animals")[0] == "the sound of animals" and "animal noises" in group_phrasings("animals")
    index = {name: [k] for k, name in enumerate(bank.label_names + list(groups))}
    group_rows = {index[name][0]: name for name in groups}
    # two interferers and three slots: slots 1 and 2 ask for the interferers, each with its own reference
    cfg = MixingConfig(segment_seconds=0.5, interferer_counts=[2], interferer_probs=[1.0], absent_prob=0.2,
                       negative_prob=0.5, group_prob=0.5, queries_per_mixture=3)
    ds = TrainingMixtures(bank, cfg, index, examples_per_epoch=300, groups=groups)
    asked = absent_groups = partial = 0
    for i in range(300):
        mixture, refs, pos, neg, present, named = ds[i]
        name = group_rows.get(int(pos[0]))
        if name is None:
            continue
        asked += 1
        heard = [label for k, label in enumerate(bank.label_names) if named[k] > 0]
        if present[0] == 0:
            absent_groups += 1
            assert not set(heard) & set(groups[name]) and float(refs[0].abs().max()) == 0
            continue
        interferers = {bank.label_names[int(pos[j])]: refs[j] for j in (1, 2)}
        assert len(interferers) == 2
        target = mixture - sum(interferers.values())
        expected = target + sum((ref for label, ref in interferers.items() if label in groups[name]),
                                torch.zeros_like(target))
        assert torch.allclose(refs[0], expected, atol=1e-5)  # the target and every interferer of the group
        partial += int(any(label in groups[name] for label in interferers))
        if neg[0] >= 0:
            assert bank.label_names[int(neg[0])] in interferers
            assert bank.label_names[int(neg[0])] not in groups[name]
    assert 90 < asked < 200 and absent_groups > 0 and partial > 0
    plain = TrainingMixtures(bank, MixingConfig(segment_seconds=0.5), index, examples_per_epoch=10)
    no_groups = TrainingMixtures(bank, MixingConfig(segment_seconds=0.5), index, examples_per_epoch=10,
                                 groups=groups)
    assert all(torch.equal(plain[i][0], no_groups[i][0]) for i in range(10))


def test_similar_interferers_come_from_the_classes_that_sound_alike():
    """similar_classes ranks classes by the shape of their average spectrum; with similar_prob 1 every interferer
    is the target's spectral neighbour, an absent-class query still names a class that is not heard, and at 0
    the neighbours are not even computed."""
    from lass.datasets import ClipBank
    from lass.train.mixtures import MixingConfig, TrainingMixtures, similar_classes

    rate = 8000
    rng = np.random.default_rng(0)
    bands = {"hum": (80, 400), "drone": (100, 450), "hiss": (2500, 3900), "buzz": (900, 1300), "chirp": (1800, 2400)}
    bank = ClipBank([], rate)
    for label, (low, high) in bands.items():
        for _ in range(2):
            spectrum = np.fft.rfft(rng.standard_normal(rate))
            hz = np.fft.rfftfreq(rate, 1 / rate)
            spectrum[(hz < low) | (hz > high)] = 0
            bank.by_label[label].append(len(bank.clips))
            bank.clips.append(np.fft.irfft(spectrum, rate).astype(np.float32))
            bank.labels.append(label)
    bank.label_names = sorted(bank.by_label)
    near = similar_classes(bank, 2)
    assert near["hum"][0] == "drone" and near["drone"][0] == "hum" and near["hiss"][0] == "chirp"
    assert all(len(v) == 2 and label not in v for label, v in near.items())
    index = {name: [k] for k, name in enumerate(bank.label_names)}
    cfg = MixingConfig(segment_seconds=0.5, interferer_counts=[1], interferer_probs=[1.0], absent_prob=0.3,
                       similar_prob=1.0, similar_classes=1)
    ds = TrainingMixtures(bank, cfg, index, examples_per_epoch=200)
    pairs = absent = 0
    for i in range(200):
        _, refs, pos, _, present, named = ds[i]
        heard = {label for k, label in enumerate(bank.label_names) if named[k] > 0}
        asked = bank.label_names[int(pos[0])]
        if present[0] == 0:
            absent += 1
            assert asked not in heard
            continue
        (interferer,) = heard - {asked}
        assert interferer == near[asked][0]
        pairs += 1
    assert pairs > 100 and absent > 20
    assert TrainingMixtures(bank, MixingConfig(segment_seconds=0.5), index, examples_per_epoch=4).similar == {}
