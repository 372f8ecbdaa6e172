"""`lass evaluate` and `lass bench` run end to end on small generated inputs and report real numbers."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import synthetic_class_folders, tone_noise
from lass.cli import main
from lass.evaluation.oracle import oracle_estimates
from lass.metrics import sdr
from lass.stft import STFTConfig
from lass.train.machine import cpu_has_native_bf16


def test_oracle_masks_bound_the_problem():
    rng = np.random.default_rng(0)
    target = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    noise = 0.5 * rng.standard_normal(16000).astype(np.float32)
    est = oracle_estimates(target + noise, target, noise, STFTConfig(1024, 256))
    base = sdr(target + noise, target)
    assert sdr(est["irm"], target) - base > 10
    assert sdr(est["psm"], target) >= sdr(est["irm"], target)


def test_ideal_ratio_mask_amplitude_and_power():
    """|S| = 3, |N| = 4: the amplitude mask is 3 / 7, the power mask 9 / 25 (sharper: it favours the louder source)."""
    import torch

    from lass.evaluation.oracle import ideal_ratio_mask

    target, interference = torch.full((2, 3), 3.0 + 0j), torch.full((2, 3), 0 + 4.0j)
    assert torch.allclose(ideal_ratio_mask(target, interference), torch.full((2, 3), 3 / 7))
    assert torch.allclose(ideal_ratio_mask(target, interference, power=2.0), torch.full((2, 3), 9 / 25))


def test_phase_sensitive_oracle_follows_the_mask_range():
    """Where an interferer cancels half the target, only a mask above 1 restores it."""
    target = np.sin(np.arange(16000) * 0.05).astype(np.float32)
    interference = -0.5 * target
    config = STFTConfig(1024, 256)
    unit = oracle_estimates(target + interference, target, interference, config)["psm"]
    double = oracle_estimates(target + interference, target, interference, config, psm_max=2.0)["psm"]
    assert abs(sdr(unit, target) - 6.02) < 0.1  # mask 1 returns the half-level mixture
    assert sdr(double, target) > 40


def test_evaluate_label_mixtures_writes_tables_and_plots(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=3)
    code = main(["evaluate", "--data", str(data), "--interferers", "1", "2", "1", "-m",
                 str(model_dir / "ones.safetensors"), "--query-checks", "-o", str(tmp_path / "ev"), "--save-audio", "1",
                 "--bss"])
    assert code == 0
    out = capsys.readouterr().out
    assert "oracle IRM" in out and "model / IRM" in out
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    one = summary["1int"]["summary"]
    # mask 1 returns the mixture itself: zero improvement, while the oracle improves a lot
    assert one["sdri"] == pytest.approx(0.0, abs=1e-3) and one["irm_sdri"] > 3
    assert one["cases"] == 9 and summary["2int"]["summary"]["cases"] == 9
    # mask 1: the "interferer" query returns the whole mixture (0 dB gain) and the absent query all of it
    assert one["interferer_query_sdri"] == pytest.approx(0.0, abs=1e-3)
    assert one["absent_query_energy_db"] == pytest.approx(0.0, abs=1e-3)
    rows = list(csv.DictReader(open(tmp_path / "ev" / "scores_1int.csv")))
    assert len(rows) == 9 and rows[0]["query"].startswith("the sound of ")
    for row in rows:  # the query checks of each case: the interferer's class, and an absent one
        assert float(row["interferer_query_sdri"]) == pytest.approx(0.0, abs=1e-3)
        assert float(row["absent_level_db"]) == pytest.approx(0.0, abs=1e-3)
        absent = row["absent_query"].removeprefix("the sound of ")
        assert absent and absent not in (row["label"], row["interferers"])
    assert all(row["interferers"] and row["label"] not in row["interferers"] for row in rows)
    for row in rows:  # each case's files, the target's first: the clip of its label, then one of each interferer
        files = row["files"].split("; ")
        assert Path(files[0]).parent.name == row["label"] and [Path(f).parent.name for f in files[1:]] == [
            row["interferers"]]
    assert list(summary) == ["1int", "2int"]  # `1 2 1`: the one-interferer protocol once
    assert (tmp_path / "ev" / "summary.md").read_text().count("interferer, 0 dB") == 1
    for plot in ("per_class_sdri.png", "sdri_hist.png", "spectrograms.png"):
        assert (tmp_path / "ev" / "plots_1int" / plot).stat().st_size > 1000
    assert (tmp_path / "ev" / "summary.md").read_text().count("| SDRi") >= 2
    assert "-0.00 dB" not in (tmp_path / "ev" / "summary.md").read_text()  # mask 1: zero, not a negative zero
    assert len(list((tmp_path / "ev" / "audio" / "1int").glob("*.wav"))) == 3


def test_query_checks_score_the_interferer_asked_for_alone(tmp_path, model_dir):
    """With several interferers, the query names the first one's class: the reference is that interferer, not
    the sum of all of them. A mask of 1 returns the whole mixture, so its SDRi against the one interferer is
    that interferer's SDR in the mixture, against 0 dB's worth if scored against the sum."""
    from lass.api import Separator
    from lass.datasets import ClipBank, read_class_folders
    from lass.evaluation.run import query_checks

    from lass.evaluation.protocols import label_mixtures

    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    bank = ClipBank(read_class_folders(data), 16000)
    cases = label_mixtures(bank, 2, seed=0)
    assert all(case.first_interferer is not None for case in cases)
    for case in cases:  # the mixture holds the target and each interferer, the first among them
        assert np.allclose(case.mixture, case.target + case.interference, atol=1e-5)
        assert 0 < np.sum(case.first_interferer ** 2) < np.sum(case.interference ** 2)
    separator = Separator(str(model_dir / "zeros.safetensors"))
    zeros = query_checks(separator, cases, {label: f"the sound of {label}" for label in bank.label_names})
    # silence scores SDR 0, so its SDRi is minus the mixture's SDR against the reference: the interferer asked for
    asked = np.mean([-sdr(c.mixture, c.first_interferer) for c in cases])
    summed = np.mean([-sdr(c.mixture, c.interference) for c in cases])
    assert zeros["interferer_query_sdri"] == pytest.approx(asked, abs=1e-3) and abs(asked - summed) > 1
    one = label_mixtures(bank, 1, seed=0)
    assert all(case.first_interferer is None for case in one)  # one interferer: the interference itself


def test_evaluate_limit_takes_rows_of_the_full_protocol(tmp_path):
    from lass.datasets import ClipBank, read_class_folders
    from lass.evaluation.protocols import label_mixtures

    data = synthetic_class_folders(tmp_path / "data", clips_per_class=3)
    bank = ClipBank(read_class_folders(data), 16000)
    full = {case.name: case for case in label_mixtures(bank, 2, seed=0)}
    small, larger = (label_mixtures(bank, 2, seed=0, limit=n, rows_of_full=True) for n in (3, 7))
    assert len(small) == 3 and len(larger) == 7 and {c.name for c in small} <= {c.name for c in larger}
    for case in larger:  # same clips, same interferers, same mixture
        assert case.interferer_labels == full[case.name].interferer_labels
        assert np.array_equal(case.mixture, full[case.name].mixture)
    # the training runs' validation subset is drawn as it always was (their scores stay comparable): these are
    # the rows lass 0.1.0 drew before rows_of_full existed (checked against that code, d8e4197)
    drawn = label_mixtures(bank, 2, seed=0, limit=7)
    assert [(c.name, c.interferer_labels) for c in drawn] == [
        ("00000", ["hissing", "humming"]), ("00001", ["hissing", "humming"]), ("00002", ["hissing", "humming"]),
        ("00003", ["beeping", "humming"]), ("00004", ["beeping", "humming"]), ("00006", ["hissing", "beeping"]),
        ("00008", ["hissing", "beeping"])]


def test_evaluate_refuses_options_its_protocol_does_not_use_and_records_its_settings(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    with open(tmp_path / "audiosep.csv", "w") as f:
        f.write("caption,src_wav,noise_wav\na beep,beeping/beeping_0.wav,humming/humming_1.wav\n")
    (tmp_path / "songs").mkdir()
    model = ["-m", str(model_dir / "half.safetensors"), "--no-plots", "--no-oracle"]
    for source, options, message in (
            (["--data", str(data)], ["--data-root", str(data)], "--data-root does not apply to --data"),
            (["--list", str(tmp_path / "audiosep.csv"), "--stems", str(tmp_path / "songs")], ["--template", "x"],
             "give exactly one of --data, --list or --stems"),
            (["--stems", str(tmp_path / "songs")], ["--negative", "--snr", "10"],
             "--negative, --snr do not apply to --stems (each stem is scored in its own song's mix"),
            (["--list", str(tmp_path / "audiosep.csv")], ["--template", "{label}", "--query-checks"],
             "--template, --query-checks do not apply to --list (a list names each mixture's sources or the mixture"),
            (["--list", str(tmp_path / "audiosep.csv"), "--data-root", str(data)], ["--negative"],
             "has no negative captions (AudioSep layout)"),
            (["--data", str(data)], ["--snr", "nan"], "--snr must be a number of dB, got nan"),
            (["--data", str(data)], ["--seed", "-1"], "--seed must be 0 or more, got -1"),
            (["--data", str(data)], ["--save-audio", "-2"], "--save-audio must be 0 or more, got -2"),
            (["--list", str(tmp_path / "audiosep.csv")], ["--aggregate", "class-median"],
             "--aggregate class-median does not apply to --list: its captions are not classes"),
            (["--list", str(tmp_path / "songs")], [], f"--list {tmp_path / 'songs'}: a folder, where a CSV file"),
            (["--list", str(data / "beeping" / "beeping_0.wav")], [], "beeping_0.wav: not a CSV file (not UTF-8")):
        assert main(["evaluate", *source, *model, *options, "-o", str(tmp_path / "ev")]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()
    with open(tmp_path / "empty.csv", "w"):
        pass
    assert main(["evaluate", "--list", str(tmp_path / "empty.csv"), *model, "-o", str(tmp_path / "ev")]) == 1
    assert f"{tmp_path / 'empty.csv'}: empty mixture list" in capsys.readouterr().err
    with open(tmp_path / "gone.csv", "w") as f:
        f.write("caption,src_wav,noise_wav\na beep,beeping/beeping_0.wav,humming/humming_1.wav\n"
                "a hum,humming/gone.wav,beeping/beeping_1.wav\n")
    assert main(["evaluate", "--list", str(tmp_path / "gone.csv"), "--data-root", str(data), *model,
                 "-o", str(tmp_path / "ev")]) == 1
    assert (f"{tmp_path / 'gone.csv'}, row 2 after the header: {data / 'humming' / 'gone.wav'}: no such file "
            f"(relative paths are taken from --data-root, here {data})") in capsys.readouterr().err
    # what the scores were made with is kept beside them
    assert main(["evaluate", "--data", str(data), *model, "--mask-power", "0.5", "--template", "{label}", "--seed",
                 "3", "--negative", "--aggregate", "class-median", "-o", str(tmp_path / "ev")]) == 0
    made = json.loads((tmp_path / "ev" / "summary.json").read_text())["1int"]["settings"]
    assert made["model_file"] == str(model_dir / "half.safetensors") and made["mask_power"] == 0.5
    assert (made["template"], made["seed"], made["negative"], made["aggregate"]) == ("{label}", 3, True,
                                                                                    "class-median")
    report = (tmp_path / "ev" / "summary.md").read_text()
    assert "template {label}" in report and "| metric | mean of class medians | median |" in report


def test_evaluate_queries_table_asks_each_class_by_its_own_text(tmp_path, model_dir, capsys):
    """--queries: the same mixtures as the template's, each class (and the query checks' interferer and absent
    class) asked by its row of the table; a class without a row, or --template beside it, is refused."""
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    asked = {"beeping": "a pager going off", "humming": "a fridge droning", "hissing": "steam escaping"}
    table = tmp_path / "queries.csv"
    table.write_text("Label,Query\n" + "".join(f"{label},{text}\n" for label, text in asked.items()))
    model = ["-m", str(model_dir / "half.safetensors"), "--no-plots", "--no-oracle"]
    assert main(["evaluate", "--data", str(data), *model, "-o", str(tmp_path / "template")]) == 0
    assert main(["evaluate", "--data", str(data), *model, "--queries", str(table), "--query-checks",
                 "-o", str(tmp_path / "table")]) == 0
    rows = {}
    for run in ("template", "table"):
        with open(tmp_path / run / "scores_1int.csv", newline="") as f:
            rows[run] = list(csv.DictReader(f))
    assert [r["files"] for r in rows["table"]] == [r["files"] for r in rows["template"]]  # the same mixtures
    assert all(r["query"] == asked[r["label"]] for r in rows["table"])
    assert all(r["query"] == f"the sound of {r['label']}" for r in rows["template"])
    for r in rows["table"]:
        absent = ({*asked} - {r["label"], r["interferers"]}).pop()
        assert r["absent_query"] == asked[absent]
    made = json.loads((tmp_path / "table" / "summary.json").read_text())["1int"]["settings"]
    assert (made["queries"], made["template"]) == (str(table), None)
    capsys.readouterr()
    assert main(["evaluate", "--data", str(data), *model, "--queries", str(table), "--compare",
                 str(tmp_path / "template"), "-o", str(tmp_path / "ev")]) == 1
    assert "it was made with other mixtures or queries (template 'the sound of {label}' there, None here" in \
        capsys.readouterr().err
    table.write_text("label,query\nbeeping,a pager going off\n")
    for options, message in ((["--queries", str(table)], f"--queries {table}: no query for 2 of the 3 classes "
                                                          f"(hissing, humming)"),
                             (["--queries", str(table), "--template", "{label}"], "give --template or --queries, "
                                                                                  "not both"),
                             (["--queries", str(tmp_path / "audio.csv")], f"--queries {tmp_path / 'audio.csv'}: "
                                                                          f"expected columns label,query")):
        (tmp_path / "audio.csv").write_text("caption,src_wav\n")
        assert main(["evaluate", "--data", str(data), *model, *options, "-o", str(tmp_path / "ev")]) == 1
        assert message in capsys.readouterr().err
    (tmp_path / "list.csv").write_text("caption,src_wav,noise_wav\n"
                                       "a beep,beeping/beeping_0.wav,humming/humming_1.wav\n")
    assert main(["evaluate", "--list", str(tmp_path / "list.csv"), *model, "--queries", str(table),
                 "-o", str(tmp_path / "ev")]) == 1
    assert "--queries does not apply to --list" in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()


def test_evaluate_mask_power_override(tmp_path, model_dir):
    """A constant 0.5 mask returns -6.02 dB of the mixture's energy; at power 0.5 it returns -3.01 dB."""
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    levels = {}
    for power in (None, 0.5):
        extra = [] if power is None else ["--mask-power", str(power)]
        out = tmp_path / f"ev{power}"
        code = main(["evaluate", "--data", str(data), "-m", str(model_dir / "half.safetensors"), "--query-checks",
                     "--no-oracle", "--no-plots", "-o", str(out), *extra])
        assert code == 0
        levels[power] = json.loads((out / "summary.json").read_text())["1int"]["summary"]["absent_query_energy_db"]
        assert f"mask power {power or 1:g}" in (out / "summary.md").read_text()
    assert levels[None] == pytest.approx(-6.02, abs=0.01) and levels[0.5] == pytest.approx(-3.01, abs=0.01)


def test_evaluate_input_level_override(tmp_path, model_dir):
    """--input-level sets the level the network hears each mixture at ('none': as given), the report says
    which, and a network that hears level scores differently."""
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    scores = {}
    for level, said in ((None, "hears the input at -25 dB RMS"), ("none", "hears the input as given"),
                        ("-50", "hears the input at -50 dB RMS")):
        out = tmp_path / f"ev{level}"
        extra = [] if level is None else ["--input-level", level]
        assert main(["evaluate", "--data", str(data), "-m", str(model_dir / "tiny.safetensors"), "--no-oracle",
                     "--no-plots", "-o", str(out), *extra]) == 0
        assert said in (out / "summary.md").read_text()
        scores[level] = json.loads((out / "summary.json").read_text())["1int"]["summary"]["sdri"]
    assert len({round(value, 6) for value in scores.values()}) == 3
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(data), "--input-level", "loud"])


def test_evaluate_mixture_list_layouts(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    rows = [("beeping/beeping_0.wav", "humming/humming_1.wav"), ("hissing/hissing_0.wav", "beeping/beeping_1.wav")]
    with open(tmp_path / "audiosep.csv", "w") as f:
        f.write("idx,caption,src_wav,noise_wav\n")
        for i, (s, n) in enumerate(rows):
            f.write(f"{i},a beep,{s},{n}\n")
    with open(tmp_path / "clapsep.csv", "w") as f:
        f.write("source_file,positive_caption,noise_file,negative_caption\n")
        for s, n in rows:
            f.write(f"{s},a beep,{n},a hum\n")
    for name, negative in (("audiosep.csv", []), ("clapsep.csv", ["--negative"])):  # only CLAPSep's has them
        code = main(["evaluate", "--list", str(tmp_path / name), "--data-root", str(data), *negative,
                     "-m", str(model_dir / "half.safetensors"), "-o", str(tmp_path / f"ev_{name}"), "--no-plots"])
        assert code == 0
        summary = json.loads((tmp_path / f"ev_{name}" / "summary.json").read_text())["list"]["summary"]
        assert summary["cases"] == 2
        assert summary["sdri"] == pytest.approx(3.0, abs=0.6)  # half the mixture at 0 dB: SNR 0 -> ~3 dB
    # a row that repeats another is scored again (a list may weight cases so), and said
    (tmp_path / "dup.csv").write_text("caption,src_wav,noise_wav\n" + f"a beep,{rows[0][0]},{rows[0][1]}\n" * 2)
    capsys.readouterr()
    assert main(["evaluate", "--list", str(tmp_path / "dup.csv"), "--data-root", str(data), "-m",
                 str(model_dir / "half.safetensors"), "-o", str(tmp_path / "ev_dup"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'dup.csv'}, row 2 after the header repeats row 1: each row is scored" in err
    # an empty negative caption, asked for, is named with its row before any scoring (it failed at that case, unnamed)
    with open(tmp_path / "clapsep.csv", "a") as f:
        f.write(f"{rows[0][0]},a beep,{rows[0][1]}, \n")
    capsys.readouterr()
    assert main(["evaluate", "--list", str(tmp_path / "clapsep.csv"), "--data-root", str(data), "--negative",
                 "-m", str(model_dir / "half.safetensors"), "-o", str(tmp_path / "ev_blank"), "--no-plots"]) == 1
    assert f"{tmp_path / 'clapsep.csv'}, row 3 after the header: no negative_caption" in capsys.readouterr().err


def test_evaluate_lists_with_their_own_ratios_or_mixtures_already_made(tmp_path, model_dir, capsys):
    """DCASE 2024's lists give each row's ratio; VGGSound's and plain `mixture,target,caption` lists give the
    mixture itself. Rows whose target cannot be scored (silent, too short) are left out and said so."""
    from lass.evaluation.protocols import mixture_list

    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    (tmp_path / "dcase.csv").write_text("source,noise,snr,caption\nbeeping/beeping_0.wav,humming/humming_1.wav,"
                                        "-6,a beep\nhissing/hissing_0.wav,beeping/beeping_1.wav,9.5,a hiss\n")
    cases = mixture_list(tmp_path / "dcase.csv", data, 16000)
    for case, ratio in zip(cases, (-6.0, 9.5)):
        achieved = 10 * np.log10(np.sum(case.target ** 2) / np.sum(case.interference ** 2))
        assert achieved == pytest.approx(ratio, abs=1e-3)
    assert cases[0].files == f"{data / 'beeping' / 'beeping_0.wav'}; {data / 'humming' / 'humming_1.wav'}"
    with pytest.raises(ValueError, match="rows give their own ratio"):
        mixture_list(tmp_path / "dcase.csv", data, 16000, snr_db=5.0)
    listed = ["evaluate", "--list", str(tmp_path / "dcase.csv"), "--data-root", str(data), "-m",
              str(model_dir / "half.safetensors"), "--no-plots", "--no-oracle", "--interferers", "1", "1"]
    assert main([*listed, "--snr", "0", "-o", str(tmp_path / "ev0")]) == 1  # even the default, given, is refused
    assert "rows give their own ratio" in capsys.readouterr().err
    assert main([*listed, "-o", str(tmp_path / "ev_dcase")]) == 0
    made = json.loads((tmp_path / "ev_dcase" / "summary.json").read_text())["list"]["settings"]
    assert (made["layout"], made["snr_db"]) == ("DCASE 2024 task 9", "each row's")
    target, noise = tone_noise(1.0, 16000, seed=1)[0], tone_noise(1.0, 16000, seed=2)[0]
    sf.write(tmp_path / "mix.wav", 0.5 * (target + noise), 16000)
    sf.write(tmp_path / "target.wav", 0.5 * target, 16000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "blip.wav", 0.5 * target[:800], 16000)
    (tmp_path / "vgg.csv").write_text("file_id,mix_wav,s0_wav,s0_text,s1_wav,s1_text\n"
                                      "a,mix.wav,target.wav,a tone,x.wav,noise\n")
    (tmp_path / "made.csv").write_text("mixture,target,caption\nmix.wav,target.wav,a tone\n"
                                       "mix.wav,silent.wav,nothing\nmix.wav,blip.wav,a blip\n")
    for name in ("vgg.csv", "made.csv"):
        case, = mixture_list(tmp_path / name, tmp_path, 16000)
        assert case.query == "a tone" and case.files == f"{tmp_path / 'target.wav'}; {tmp_path / 'mix.wav'}"
        assert np.allclose(case.mixture, case.target + case.interference, atol=1e-6)
        assert np.allclose(case.interference, 0.5 * noise, atol=1e-4)  # the mixture as made, not remixed
    err = capsys.readouterr().err
    assert "lass: 1 row whose target is digital silence over the mixture's span: left out" in err
    assert "(first: " + str(tmp_path / "made.csv") + ", row 2 after the header)" in err
    assert "lass: 1 row whose target is shorter than 0.25 s: left out" in err
    # a target silent, or too short, over the mixture's span only; a mixture longer than its target
    sf.write(tmp_path / "late.wav", np.concatenate([np.zeros(16000, np.float32), 0.5 * target]), 16000)
    sf.write(tmp_path / "short_mix.wav", 0.5 * (target + noise)[:1000], 16000)
    sf.write(tmp_path / "long_mix.wav", np.concatenate([0.5 * (target + noise), 0.5 * noise]), 16000)
    (tmp_path / "spans.csv").write_text("mixture,target,caption\nmix.wav,late.wav,late\nshort_mix.wav,target.wav,"
                                        "short\nlong_mix.wav,target.wav,long\nmix.wav,target.wav,whole\n")
    cases = mixture_list(tmp_path / "spans.csv", tmp_path, 16000, limit=2)
    assert [case.query for case in cases] == ["long", "whole"]  # --limit: that many scored rows
    assert cases[0].mixture.shape == cases[0].target.shape == (16000,)
    err = capsys.readouterr().err
    assert "1 row whose target is digital silence over the mixture's span" in err
    assert "1 row whose target is shorter than 0.25 s" in err
    assert "1 row whose mixture and target differ in length: scored over the shorter" in err  # not those left out
    # nothing to separate: silent interference, or the target as its own interferer; a caption cut at a comma
    (tmp_path / "alone.csv").write_text("caption,src_wav,noise_wav\nquiet,target.wav,silent.wav\nitself,target.wav,"
                                        "target.wav\nfine,target.wav,mix.wav\n")
    case, = mixture_list(tmp_path / "alone.csv", tmp_path, 16000)
    assert case.query == "fine"
    assert "2 rows whose mixtures hold nothing but the target" in capsys.readouterr().err
    (tmp_path / "comma.csv").write_text("source,noise,snr,caption\ntarget.wav,mix.wav,0,a tone, then noise\n")
    with pytest.raises(ValueError, match="row 1 after the header: more cells than the header names .* a cell with "
                                         "a comma .* must be in double quotes"):
        mixture_list(tmp_path / "comma.csv", tmp_path, 16000)
    with pytest.raises(ValueError, match="mixtures are already made"):
        mixture_list(tmp_path / "made.csv", tmp_path, 16000, snr_db=5.0)
    assert main(["evaluate", "--list", str(tmp_path / "made.csv"), "--data-root", str(tmp_path), "-m",
                 str(model_dir / "half.safetensors"), "-o", str(tmp_path / "ev"), "--no-plots"]) == 0
    row, = csv.DictReader(open(tmp_path / "ev" / "scores_list.csv"))
    assert row["files"] == f"{tmp_path / 'target.wav'}; {tmp_path / 'mix.wav'}" and float(row["irm_sdri"]) < 60


def test_evaluate_says_when_digital_silence_would_beat_the_model(tmp_path, model_dir, capsys):
    """Quiet stems in a loud mix: the mixture scores far below 0 dB against them, so an empty output 'improves'
    it. The summary gives that baseline and the estimates' own SDR, and says so."""
    song = tmp_path / "songs" / "one"
    song.mkdir(parents=True)
    loud, soft, softer = (tone_noise(1.0, 16000, 1, seed=k) * gain for k, gain in ((1, 1.0), (2, 0.03), (3, 0.03)))
    sf.write(song / "mix.wav", (loud + soft + softer).T, 16000)
    for name, stem in (("vocals", loud), ("bass", soft), ("drums", softer)):
        sf.write(song / f"{name}.wav", stem.T, 16000)
    out = tmp_path / "ev"
    assert main(["evaluate", "--stems", str(tmp_path / "songs"), "-m", str(model_dir / "ones.safetensors"),
                 "--no-plots", "--no-oracle", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())["stems"]["summary"]
    mix = loud + soft + softer
    silence = [sdr(np.zeros_like(stem), stem) - sdr(mix, stem) for stem in (loud, soft, softer)]
    assert summary["silent_sdri"] == pytest.approx(float(np.mean(silence)), abs=1e-3) and summary["silent_sdri"] > 5
    assert summary["sdri"] == pytest.approx(0.0, abs=1e-3)  # the mixture itself, returned
    assert summary["sdr"] == pytest.approx(float(np.mean([sdr(mix, stem) for stem in (loud, soft, softer)])), abs=1e-3)
    rows = list(csv.DictReader(open(out / "scores_stems.csv")))
    assert "Digital silence would score" in capsys.readouterr().err
    assert "SDRi of digital silence (a baseline)" in (out / "summary.md").read_text()
    assert sorted(r["files"].split("; ")[1] for r in rows) == [str(song / "mix.wav")] * 3


def test_evaluate_compares_with_an_earlier_evaluation_case_by_case(tmp_path, model_dir, capsys, monkeypatch):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    monkeypatch.chdir(tmp_path)
    quick = ["evaluate", "--data", "data", "--interferers", "1", "2", "--no-plots", "--no-oracle"]
    assert main([*quick, "-m", str(model_dir / "ones.safetensors"), "-o", "ones"]) == 0
    (tmp_path / "ones" / "scores_2int.csv").unlink()  # a protocol the earlier run has no scores of
    capsys.readouterr()
    assert main([*quick, "--data", str(data), "-m", str(model_dir / "half.safetensors"), "-o", "half",
                 "--compare", "ones"]) == 0  # the same folder by another path is the same protocol
    out = capsys.readouterr().out
    mine = {r["name"]: float(r["sdri"]) for r in csv.DictReader(open(tmp_path / "half" / "scores_1int.csv"))}
    theirs = {r["name"]: float(r["sdri"]) for r in csv.DictReader(open(tmp_path / "ones" / "scores_1int.csv"))}
    diff = np.array([mine[name] - theirs[name] for name in mine])
    compared = json.loads((tmp_path / "half" / "summary.json").read_text())["1int"]["compared"]
    assert compared["cases"] == len(diff) == 6 and compared["sdri"] == pytest.approx(diff.mean(), abs=1e-6)
    assert compared["sdri_se"] == pytest.approx(diff.std(ddof=1) / np.sqrt(6), abs=1e-6)
    assert compared["sdri_better"] == int(np.sum(diff > 0.01))
    assert f"SDRi {diff.mean():+.2f} ± " in out and "it has no scores_2int.csv" in out
    assert "paired, mean ± standard error" in (tmp_path / "half" / "summary.md").read_text()
    # other mixtures are refused, before any scoring; replacing the folder compared with reads it first
    assert main([*quick, "--seed", "1", "-m", str(model_dir / "half.safetensors"), "-o", "s1", "--compare",
                 "ones"]) == 1
    err = capsys.readouterr().err
    assert "--compare ones: it was made with other mixtures or queries (seed 0 there, 1 here)" in err
    assert not (tmp_path / "s1").exists()
    assert main([*quick, "-m", str(model_dir / "half.safetensors"), "-o", "ones", "-f", "--compare", "ones"]) == 0
    assert json.loads((tmp_path / "ones" / "summary.json").read_text())["1int"]["compared"]["cases"] == 6
    import shutil

    shutil.copytree(data, tmp_path / "moved")  # the same clips in another folder (or on another machine)
    assert main([*quick, "--data", "moved", "-m", str(model_dir / "half.safetensors"), "-o", "m", "--compare",
                 "ones"]) == 0
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["1int"]["compared"]["cases"] == 6
    assert main([*quick, "-m", str(model_dir / "half.safetensors"), "-o", "x", "--compare", "gone"]) == 1
    assert "--compare gone: no earlier evaluation there (summary.json)" in capsys.readouterr().err
    # lists paired by row must hold the same files; one case in common: no standard error, and valid JSON
    row = "caption,src_wav,noise_wav\na beep,beeping/beeping_0.wav,{}\n"
    (tmp_path / "a.csv").write_text(row.format("humming/humming_1.wav"))
    (tmp_path / "b.csv").write_text(row.format("hissing/hissing_1.wav"))
    listed = ["evaluate", "--data-root", "data", "--no-plots", "--no-oracle", "-m", str(model_dir / "half.safetensors")]
    assert main([*listed, "--list", "a.csv", "-o", "la"]) == 0
    assert main([*listed, "--list", "b.csv", "-o", "lb", "--compare", "la"]) == 1
    assert "--compare la: case 00000 ('a beep') was made of other files there" in capsys.readouterr().err
    assert main([*listed, "--list", "a.csv", "-o", "la2", "--compare", "la"]) == 0
    assert "SDRi +0.00 ± n/a dB (0 of 1 better, 1 level)" in capsys.readouterr().out
    json.loads((tmp_path / "la2" / "summary.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    # every interferer count is checked before anything is scored or written
    assert main([*quick, "--interferers", "1", "3", "-m", str(model_dir / "half.safetensors"), "-o", "few"]) == 1
    assert "mixtures with 3 interferers need clips of at least 4 classes" in capsys.readouterr().err
    assert not (tmp_path / "few").exists()


def test_evaluate_stems(tmp_path, model_dir, capsys):
    song = tmp_path / "songs" / "one"
    (song / "tracks").mkdir(parents=True)
    vocals, bass = tone_noise(2.0, 22050, 2, seed=1), tone_noise(2.0, 22050, 2, seed=2)
    sf.write(song / "one__mix.flac", (vocals + bass).T, 22050)
    sf.write(song / "tracks" / "one__vocals.flac", vocals.T, 22050)
    sf.write(song / "tracks" / "one__bass.aiff", bass.mean(0), 22050)  # any format; a mono stem of a stereo mix
    code = main(["evaluate", "--stems", str(tmp_path / "songs"), "-m", str(model_dir / "ones.safetensors"),
                 "-o", str(tmp_path / "ev"), "--no-plots"])
    assert code == 0
    scores = list(csv.DictReader(open(tmp_path / "ev" / "scores_stems.csv")))
    assert sorted(r["query"] for r in scores) == ["bass", "vocals"]
    assert "one/bass: the stem has other channels than its mix; it is scored as its channels' mean" in \
        capsys.readouterr().err


def test_a_stem_named_like_a_mix_is_a_stem_and_an_unclear_mix_is_refused(tmp_path, model_dir, capsys):
    """A stem called 'backing_mix.wav' beside 'mix.wav' was taken as a second mix: every case scored twice, half
    of them against the stem as their mixture."""
    song = tmp_path / "songs" / "one"
    song.mkdir(parents=True)
    vocals, backing = tone_noise(2.0, 16000, 1, seed=1), tone_noise(2.0, 16000, 1, seed=2)
    sf.write(song / "mix.wav", (vocals + backing).T, 16000)
    sf.write(song / "vocals.wav", vocals.T, 16000)
    sf.write(song / "backing_mix.wav", backing.T, 16000)
    args = ["evaluate", "--stems", str(tmp_path / "songs"), "-m", str(model_dir / "ones.safetensors"), "--no-plots",
            "--no-oracle"]
    assert main([*args, "-o", str(tmp_path / "ev")]) == 0
    scores = list(csv.DictReader(open(tmp_path / "ev" / "scores_stems.csv")))
    assert sorted(r["name"] for r in scores) == ["one/backing mix", "one/vocals"]
    assert all(r["files"].endswith(str(song / "mix.wav")) for r in scores)
    (song / "mix.wav").rename(song / "one_mix.wav")
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "ev2")]) == 1
    err = capsys.readouterr().err
    assert "backing_mix.wav, one_mix.wav could each be the song's mix: name the mix 'mix.<ext>'" in err
    (song / "one_mix.wav").rename(song / "mix.wav")
    (song / "mix.json").write_text("{}")  # notes beside the audio named like a mix are not a second mix
    assert main([*args, "-o", str(tmp_path / "ev3")]) == 0


def test_evaluate_stems_keeps_each_song_to_its_own_files(tmp_path, model_dir, capsys):
    """A song folder inside another is a song of its own, not more stems of the outer one; a song with a mix and
    no stems, or no such folder, is one line."""
    outer, inner = tmp_path / "songs" / "outer", tmp_path / "songs" / "outer" / "inner"
    inner.mkdir(parents=True)
    for folder, names in ((outer, ("cello", "flute")), (inner, ("drums", "bass"))):
        parts = [tone_noise(1.0, 16000, 1, seed=k) for k in range(len(names))]
        sf.write(folder / "mix.wav", sum(parts).T, 16000)
        for name, part in zip(names, parts):
            sf.write(folder / f"{name}.wav", part.T, 16000)
    args = ["-m", str(model_dir / "ones.safetensors"), "--no-plots", "--no-oracle"]
    assert main(["evaluate", "--stems", str(tmp_path / "songs"), "-o", str(tmp_path / "ev"), *args]) == 0
    rows = list(csv.DictReader(open(tmp_path / "ev" / "scores_stems.csv")))
    assert sorted(r["name"] for r in rows) == ["inner/bass", "inner/drums", "outer/cello", "outer/flute"]
    only_mix = tmp_path / "only" / "song"
    only_mix.mkdir(parents=True)
    sf.write(only_mix / "mix.wav", tone_noise(1.0, 16000, 1).T, 16000)
    for folder, message in ((tmp_path / "only", f"{only_mix}: a mix (mix.wav) but no stems"),
                            (tmp_path / "gone", f"--stems: no such folder: {tmp_path / 'gone'}")):
        assert main(["evaluate", "--stems", str(folder), "-o", str(tmp_path / "ev2"), *args]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "ev2").exists()


def test_evaluate_list_reads_spreadsheet_csvs_and_names_a_bad_row(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    args = ["--data-root", str(data), "-m", str(model_dir / "half.safetensors"), "--no-plots", "--no-oracle"]
    # "CSV UTF-8" from a spreadsheet: a byte-order mark, capitalised names, a space after each comma
    (tmp_path / "excel.csv").write_text("Caption, Src_wav, Noise_wav\na beep, beeping/beeping_0.wav, "
                                        "humming/humming_1.wav\n", encoding="utf-8-sig")
    assert main(["evaluate", "--list", str(tmp_path / "excel.csv"), "-o", str(tmp_path / "ev"), *args]) == 0
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["list"]["summary"]["cases"] == 1
    for rows, message in (("a beep,beeping/beeping_0.wav\n", "row 1 after the header: no noise_wav"),
                          ("a beep,beeping/beeping_0.wav,humming/humming_1.wav\n ,beeping/beeping_1.wav,"
                           "humming/humming_0.wav\n", "row 2 after the header: no caption")):
        (tmp_path / "bad.csv").write_text("caption,src_wav,noise_wav\n" + rows)
        assert main(["evaluate", "--list", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "ev_bad"), *args]) == 1
        err = capsys.readouterr().err
        assert f"{tmp_path / 'bad.csv'}, {message}" in err and "Traceback" not in err
    assert not (tmp_path / "ev_bad").exists()
    (tmp_path / "other.csv").write_text("file,text\nx.wav,a beep\n")
    assert main(["evaluate", "--list", str(tmp_path / "other.csv"), "-o", str(tmp_path / "ev_bad"), *args]) == 1
    err = capsys.readouterr().err
    assert "unknown layout; expected columns caption, src_wav, noise_wav (AudioSep); " in err
    assert "caption, target, mixture (mixed); found file, text" in err
    (tmp_path / "tabs.csv").write_text("caption\tsrc_wav\tnoise_wav\na beep\tx.wav\ty.wav\n")
    assert main(["evaluate", "--list", str(tmp_path / "tabs.csv"), "-o", str(tmp_path / "ev_bad"), *args]) == 1
    assert "(its columns are separated by tabs: a list's must be by commas)" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path / "other.csv"), "-o", str(tmp_path / "ev_bad"), *args[2:]]) == 1
    assert "--data takes a folder (ESC-50's layout, or a folder per class), and --list a CSV" in capsys.readouterr().err


def test_evaluate_refuses_an_earlier_evaluation_unless_forced(tmp_path, model_dir, capsys, monkeypatch):
    """An earlier run's scores must not sit beside a new run's summary as if they were its own. Without -o each
    data set, list or song folder has its own folder, so evaluating two of them needs no --force."""
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one.csv").write_text("caption,src_wav,noise_wav\na beep,beeping/beeping_0.wav,humming/humming_1.wav\n")
    quick = ["-m", str(model_dir / "half.safetensors"), "--no-oracle", "--no-plots"]
    assert main(["evaluate", "--data", str(data), *quick]) == 0
    assert main(["evaluate", "--list", "one.csv", "--data-root", str(data), *quick]) == 0
    assert sorted(p.name for p in (tmp_path / "evaluation").iterdir()) == ["data", "one"]
    assert (tmp_path / "evaluation" / "one" / "summary.json").exists()
    (tmp_path / "list.csv").write_text("caption,src_wav,noise_wav\na beep,beeping/beeping_0.wav,humming/humming_1.wav\n")
    model = ["-m", str(model_dir / "half.safetensors"), "--no-oracle", "-o", str(tmp_path / "ev")]
    assert main(["evaluate", "--data", str(data), *model]) == 0
    assert (tmp_path / "ev" / "scores_1int.csv").exists() and (tmp_path / "ev" / "plots_1int").is_dir()
    (tmp_path / "ev" / "notes.txt").write_text("mine")
    listed = ["evaluate", "--list", str(tmp_path / "list.csv"), "--data-root", str(data), *model]
    assert main(listed) == 1
    assert f"{tmp_path / 'ev'} holds an earlier evaluation (summary.json); -f/--force replaces it" in capsys.readouterr().err
    (tmp_path / "ev" / "plots_1int" / "mine.txt").write_text("mine too")  # in a folder lass wrote
    assert main([*listed, "--force"]) == 0
    left = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert left == ["notes.txt", "plots_1int", "plots_list", "scores_list.csv", "summary.json", "summary.md"]
    assert [p.name for p in (tmp_path / "ev" / "plots_1int").iterdir()] == ["mine.txt"]  # the user's files kept
    (tmp_path / "file").write_text("x")
    assert main(["evaluate", "--data", str(data), *model[:-1], str(tmp_path / "file")]) == 1
    assert f"-o {tmp_path / 'file'}: a file, not a folder" in capsys.readouterr().err
    # stopped while it scores, a forced run leaves the earlier evaluation as it was, and nothing of its own
    from lass.evaluation import run as evaluation

    before = {p.name: p.read_bytes() for p in (tmp_path / "ev").iterdir() if p.is_file()}
    real_score = evaluation.score_case
    scored = []

    def score_then_stop(*args, **kwargs):
        if scored:
            raise KeyboardInterrupt
        scored.append(1)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(evaluation, "score_case", score_then_stop)
    assert main(["evaluate", "--data", str(data), *model, "-f", "--save-audio", "2"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "ev").iterdir() if p.is_file()} == before
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == left  # no audio/, no staging folder
    monkeypatch.setattr(evaluation, "score_case", real_score)
    # a summary.json that lass did not write is not taken for an evaluation to clear (its keys named folders)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "summary.json").write_text('{"/": {"pages": 3}}')
    assert main(["evaluate", "--data", str(data), *model[:-1], str(tmp_path / "site"), "-f"]) == 1
    assert "holds a summary.json that lass evaluate did not write" in capsys.readouterr().err
    compare_site = ["--compare", str(tmp_path / "site")]
    assert main(["evaluate", "--data", str(data), *model[:-1], str(tmp_path / "c"), *compare_site]) == 1
    assert "summary.json is not a lass evaluation's" in capsys.readouterr().err
    # an output folder inside the data would be read as one more class next time (`--data .` wrote one there)
    monkeypatch.chdir(data)
    assert main(["evaluate", "--data", ".", *quick]) == 1
    assert f"the output folder {Path('evaluation') / 'data'} is inside the --data folder ." in capsys.readouterr().err
    assert not (data / "evaluation").exists()
    # data in a folder the evaluation writes into (OUT/audio/...) would be written into, or replaced
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audio").mkdir()
    data.rename(tmp_path / "audio" / "1int")
    assert main(["evaluate", "--data", str(Path("audio") / "1int"), *quick, "-o", "."]) == 1
    assert f"is inside {Path('.') / 'audio'}, where the evaluation writes its audio or plots" in \
        capsys.readouterr().err


def test_clips_from_lower_rate_files_are_scored_as_such_files_are_separated(tmp_path, model_dir, monkeypatch):
    """Label mixtures are made at the model's rate; where every clip came from an 8 kHz file the mixture carries that
    band, and scoring hears it as `lass separate` hears an 8 kHz file (its empty upper band filled)."""
    from lass import Separator
    from lass.audio import AudioError
    from lass.datasets import ClipBank, read_class_folders
    from lass.evaluation.protocols import label_mixtures
    from lass.evaluation.run import score_case
    from lass.models.separator import MaskSeparator

    for label, rate in (("low a", 8000), ("low b", 8000), ("wide", 16000)):
        (tmp_path / label).mkdir()
        for k in range(2):
            sf.write(tmp_path / label / f"{k}.wav", tone_noise(1.5, rate, 1, seed=k)[0], rate)
    bank = ClipBank(read_class_folders(tmp_path), 16000)
    assert sorted(bank.band(i) for i in range(len(bank))) == [4000] * 4 + [8000] * 2
    cases = label_mixtures(bank, 1, seed=0)
    assert {c.band_hz for c in cases} == {4000.0, "auto"}  # two low-rate clips, or a wide-band one among them
    heard_bands = []
    real_heard = MaskSeparator.heard
    monkeypatch.setattr(MaskSeparator, "heard", lambda self, spec, gain=1.0, band_hz=None: (
        heard_bands.append(band_hz) or real_heard(self, spec, gain, band_hz)))
    separator = Separator(str(model_dir / "tiny.safetensors"))
    for case in cases:
        heard_bands.clear()
        score_case(separator, case, oracle=False)
        # a wide-band clip among them fills the band: nothing is found in the content
        assert set(heard_bands) == {case.band_hz if case.band_hz != "auto" else None}
    for wrong in (0, 500, -5.0, float("nan"), float("inf"), True, "4 kHz", "none"):
        with pytest.raises(AudioError,
                           match="the band must be 'auto', 'full' or a frequency of at least 1000"):
            separator.separate_tensor(cases[0].mixture, 16000, "rain", band_hz=wrong)
    with pytest.raises(AudioError, match="^the band must"):  # the band, not the file, is named
        separator.separate_file(tmp_path / "low a" / "0.wav", "rain", band_hz="4000")


def test_default_output_is_named_by_the_folder_as_given_not_its_link_target(tmp_path, monkeypatch):
    """`--data .` is named by the current folder, and a linked data set by its link (`--compare evaluation/NAME`)."""
    import argparse

    from lass.evaluation.run import default_output

    (tmp_path / "real_esc50").mkdir()
    (tmp_path / "esc50").symlink_to(tmp_path / "real_esc50")
    monkeypatch.chdir(tmp_path / "real_esc50")
    args = argparse.Namespace(data=".", mixture_list=None, stems=None)
    assert default_output(args) == Path("evaluation") / "real_esc50"  # not evaluation/ itself
    args.data = str(tmp_path / "esc50")
    assert default_output(args) == Path("evaluation") / "esc50"


def test_lass_lists_its_api_for_tab_completion():
    import lass

    assert {"Separator", "OutputOptions", "AudioError", "QueryError"} <= set(dir(lass))


def test_evaluate_needs_one_source(capsys, tmp_path):
    assert main(["evaluate", "-o", str(tmp_path)]) == 1
    assert "exactly one of --data" in capsys.readouterr().err
    for option, message in ((["--interferers", "1", "0"], "--interferers: each count must be at least 1, got 0"),
                            (["--limit", "0"], "--limit must be at least 1, got 0"),
                            # without {label} every mixture would be asked the same query, and scored as if it fit
                            (["--template", "a dog"], "--template must contain {label}"),
                            (["--template", "{label} {x}"], "and no other braces; got '{label} {x}'")):
        assert main(["evaluate", "--data", str(tmp_path), "-o", str(tmp_path / "ev"), *option]) == 1
        assert message in capsys.readouterr().err
    assert main(["evaluate", "--list", str(tmp_path / "gone.csv"), "-o", str(tmp_path / "ev")]) == 1
    assert f"--list: no such file: {tmp_path / 'gone.csv'}" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(tmp_path / "gone"), "-o", str(tmp_path / "ev")]) == 1
    assert f"--data: no such folder: {tmp_path / 'gone'}" in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()


def test_evaluate_class_folders_skip_bad_clips_and_refuse_folds(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=3)
    label = sorted(p.name for p in data.iterdir())[0]
    nan = np.full(16000, np.nan, dtype=np.float32)
    sf.write(data / label / "nan.wav", nan, 16000, subtype="FLOAT")  # would make every score it touches NaN
    (data / label / "broken.wav").write_bytes(b"RIFF not audio")
    sf.write(data / label / "silence.wav", np.zeros(16000, dtype=np.float32), 16000)  # nothing to separate
    sf.write(data / label / "blip.wav", nan[:800] * 0 + 0.1, 16000)  # 0.05 s: too short to mix
    (data / "zz_quiet").mkdir()
    sf.write(data / "zz_quiet" / "padding.wav", np.zeros(16000, dtype=np.float32), 16000)  # a class of silence
    args = ["evaluate", "--data", str(data), "-m", str(model_dir / "ones.safetensors"), "--interferers", "1",
            "--no-oracle", "--no-plots", "-o", str(tmp_path / "ev")]
    assert main(args + ["--folds", "4"]) == 1
    assert "--folds needs the ESC-50 layout" in capsys.readouterr().err
    assert main(args) == 0
    captured = capsys.readouterr()
    # each clip left out is counted, by why, never dropped without a word
    assert "left out 2 clips that are unreadable or hold NaN or infinite samples" in captured.err
    assert f"left out 2 clips that are digital silence (first: {data / label / 'silence.wav'})" in captured.err
    assert "1 label lost every clip to the lines above, so it is left out: zz quiet" in captured.err
    assert f"left out 1 clip that is shorter than 0.25 s, too short to mix (first: {data / label / 'blip.wav'})" \
        in captured.err and "`join_seconds` joins short clips" in captured.err
    rows = list(csv.DictReader(open(tmp_path / "ev" / "scores_1int.csv")))
    assert len(rows) == 9 and all(np.isfinite(float(row["sdri"])) for row in rows)


def test_evaluate_passes_the_segment_to_the_engine(tmp_path, model_dir, capsys):
    data = synthetic_class_folders(tmp_path / "data", clips_per_class=2)
    args = ["evaluate", "--data", str(data), "-m", str(model_dir / "half.safetensors"), "--no-oracle", "--no-plots"]
    assert main([*args, "-o", str(tmp_path / "ev"), "--segment", "0.5"]) == 0
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())["1int"]["summary"]
    assert summary["sdri"] == pytest.approx(3.0, abs=0.6)  # half the mixture, put back from 0.5 s segments
    levels = [float(row["level_db"]) for row in csv.DictReader(open(tmp_path / "ev" / "scores_1int.csv"))]
    assert levels and all(level == pytest.approx(-6.02, abs=0.2) for level in levels)  # each estimate: half of it
    assert main([*args, "-o", str(tmp_path / "ev0"), "--segment", "0"]) == 1
    assert "segment (--segment) must be from 0.5 to 3600 seconds, got 0" in capsys.readouterr().err


def test_training_step_timing_skips_compiling_without_a_cpp_compiler(monkeypatch, capsys):
    from lass.evaluation.bench import time_training_steps
    from lass.models.config import ModelConfig
    from lass.train import machine

    monkeypatch.setattr(machine, "cpp_compiler_found", lambda: False)
    config = ModelConfig(name="t", network="film_tcn", network_args={"channels": 16, "hidden": 32, "repeats": 1})
    times = time_training_steps(config, 1, 0.5, 1, ("float32", "bf16+compile"))
    assert list(times) == ["float32"] and times["float32"][0] > 0
    assert "bf16+compile: not timed, no C++ compiler" in capsys.readouterr().err


def test_bench_prints_measured_figures(tmp_path, model_dir, capsys):
    code = main(["bench", "-m", str(model_dir / "tiny.safetensors"), "--seconds", "2", "--repeats", "1",
                 "--long-minutes", "0.2", "--queries", "1", "4", "--train-step", "2", "--json", str(tmp_path / "b.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "real-time factor" in out and "lass is" in out and "queries/s" in out and "peak RSS" in out
    assert "training step, batch 2 x 4 s, bf16+compile" in out
    native = cpu_has_native_bf16()
    assert (f"precision: auto trains in {'bf16' if native else 'float32'} here (this CPU "
            f"{'has' if native else 'has no'} native bf16)") in out.splitlines()
    figures = json.loads((tmp_path / "b.json").read_text())
    assert all(len(t) == 1 and t[0] > 0 for t in figures["train_step"].values())
    assert figures["speedup_vs_audiosep"] > 1 and figures["long_0.2min"]["samples"] == figures["long_0.2min"]["expected"]


def test_bench_gives_query_throughput_against_one_query_and_checks_its_json_path_first(tmp_path, model_dir,
                                                                                     capsys):
    args = ["bench", "-m", str(model_dir / "tiny.safetensors"), "--seconds", "1", "--repeats", "1", "--long-minutes",
            "--no-baseline", "--queries", "4"]
    assert main([*args, "--json", str(tmp_path / "gone" / "b.json")]) == 1  # before any measuring
    captured = capsys.readouterr()
    assert f"--json {tmp_path / 'gone' / 'b.json'}: cannot write a file there" in captured.err
    assert "real-time factor" not in captured.out
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "on one 10 s mixture" in line]
    assert [line.split()[0] for line in lines] == ["1", "4"]  # one query timed too, the baseline of the ratio
    assert "(1.0x the throughput of one query at a time)" in lines[0]
    figures = json.loads((tmp_path / "b.json").read_text())
    ratio = float(lines[1].split("(")[1].split("x")[0])
    assert ratio == pytest.approx(4 * np.median(figures["queries_1"]) / np.median(figures["queries_4"]), abs=0.051)


def test_bench_refuses_counts_and_lengths_below_one(capsys):
    # --rate 0 and --channels 0 gave soundfile tracebacks, --repeats 0 "min() arg is an empty sequence",
    # --threads 0 and --train-step 0 were ignored without a word
    for option, value in (("--seconds", "-1"), ("--seconds", "inf"), ("--rate", "0"), ("--channels", "0"),
                          ("--threads", "0"), ("--repeats", "0"), ("--queries", "0"), ("--train-step", "0"),
                          ("--long-minutes", "0")):
        assert main(["bench", option, value]) == 1
        assert f"{option} must be a positive number, got {float(value):g}" in capsys.readouterr().err
    # a rate or length a file cannot have was refused only once written, naming the benchmark's temporary file
    assert main(["bench", "--rate", "1000"]) == 1
    assert "--rate must be at least 2000 Hz, got 1000" in capsys.readouterr().err
    assert main(["bench", "--rate", "2000", "--seconds", "0.0001"]) == 1
    assert "--seconds 0.0001 at --rate 2000 is not one sample long" in capsys.readouterr().err


def test_training_step_timing_runs_the_modes_asked_for():
    from lass.evaluation.bench import time_training_steps
    from lass.models.config import ModelConfig

    config = ModelConfig(name="t", network_args={"channels": 16, "hidden": 32, "repeats": 1, "dilations": [1]})
    calls = []
    times = time_training_steps(config, 2, 0.5, 3, ("float32",), lambda: calls.append(1))
    assert list(times) == ["float32"] and len(times["float32"]) == 3 and min(times["float32"]) > 0
    assert len(calls) == 5  # two warm-up steps and three timed ones
    with pytest.raises(ValueError, match="unknown training modes"):
        time_training_steps(config, 2, 0.5, 1, ("fp8",))


def test_training_step_timing_asks_each_mixture_several_queries(monkeypatch):
    from lass.evaluation.bench import time_training_steps
    from lass.models.config import ModelConfig
    from lass.models.separator import MaskSeparator

    seen = []
    forward = MaskSeparator.forward

    def recording(self, mixture, cond):
        seen.append((mixture.shape[0], cond.shape[0]))
        return forward(self, mixture, cond)

    monkeypatch.setattr(MaskSeparator, "forward", recording)
    config = ModelConfig(name="t", network_args={"channels": 16, "hidden": 32, "repeats": 1, "dilations": [1, 2],
                                                 "shared_blocks": 1})
    times = time_training_steps(config, 2, 0.5, 1, ("float32",), queries=3)
    assert len(times["float32"]) == 1 and seen == [(2, 6)] * 3  # 3 conditions per mixture, each step
    with pytest.raises(ValueError, match="at least 1"):
        time_training_steps(config, 2, 0.5, 1, ("float32",), queries=0)


def test_class_folders_say_what_they_leave_out(tmp_path, capsys):
    """A folder per class: an empty class folder is left out with a line, and a flat folder of clips (no class
    folders) is one error saying how clips are laid out, as is a folder of songs with stems."""
    import soundfile as sf

    from lass.datasets import read_class_folders

    for label in ("rain", "dog"):
        (tmp_path / "set" / label).mkdir(parents=True)
        sf.write(tmp_path / "set" / label / "a.wav", np.zeros(800, np.float32), 16000)
    (tmp_path / "set" / "empty one").mkdir()
    items = read_class_folders(tmp_path / "set")
    assert sorted(item.label for item in items) == ["dog", "rain"]
    assert "1 class folder of " in capsys.readouterr().err
    (tmp_path / "flat").mkdir()
    sf.write(tmp_path / "flat" / "a.wav", np.zeros(800, np.float32), 16000)
    with pytest.raises(ValueError, match="audio files, but no class folders: the clips must be in a folder per class"):
        read_class_folders(tmp_path / "flat")
    for label in ("rain", "dog"):  # every clip silent: no class left to mix, one line (was a KeyError)
        (tmp_path / "silent" / label).mkdir(parents=True)
        sf.write(tmp_path / "silent" / label / "a.wav", np.zeros(8000, np.float32), 16000)
    from lass.cli import main

    assert main(["evaluate", "--data", str(tmp_path / "silent"), "-o", str(tmp_path / "out")]) == 1
    assert "0 classes with usable clips, and mixtures need two" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    song = tmp_path / "songs" / "a song"  # the --stems layout: a song's mix with its stems is not a class folder
    (song / "tracks").mkdir(parents=True)
    sf.write(song / "a_song__mix.flac", np.zeros(800, np.float32), 16000)
    for stem in ("bass", "drums"):
        sf.write(song / "tracks" / f"a_song__{stem}.flac", np.zeros(800, np.float32), 16000)
    with pytest.raises(ValueError, match=r"a song's mix, so this is a folder of songs with stems.*evaluate --stems"):
        read_class_folders(tmp_path / "songs")
    from lass.datasets import is_song_mix

    assert [is_song_mix(name) for name in ("mix.wav", "a_song__mix.flac", "a-mix.ogg", "remix.wav", "mixer.wav")] \
        == [True, True, True, False, False]
