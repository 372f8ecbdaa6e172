"""Does the model's own training vocabulary, asked as competitors, sharpen a query's mask? (inference only)

    python scripts/vocabulary_competition.py --data ../shared/data

Each mixture is heard whole at -25 dB RMS, as the engine hears it. Besides the query, every sound the default
recipe trained on ("the sound of {label}": the 50 ESC-50 classes and the captions of configs/extra_sources.csv) is
decoded, and the competitor is the one that takes most of what the query's mask leaves. Variants: the competitor as
the query's negative query; the mask m_q / (m_q + m_c)^a (a = 1: the two masks share each bin); and a = 1 blended
in only where the competitor takes most of what the query leaves. Sets: the fold-4 protocol (400 mixtures, one and
five interferers) and the held-out recordings (configs/heldout_recordings.csv: music, speech, a howling dog, rain and
waves as interferers; all but music are in the vocabulary), listed item by item. Results:
docs/benchmarks.md, "Vocabulary competition".
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from lass.api import Separator
from lass.datasets import ClipBank, read_dataset
from lass.evaluation.protocols import label_mixtures, mixture_list
from lass.inference import input_gain
from lass.metrics import sdr, si_sdr
from lass.query import anchor_queries, build_condition

ROOT = Path(__file__).resolve().parent.parent


def vocabulary(data: Path) -> list[str]:
    with open(data / "esc50-16k/meta.csv") as meta, open(ROOT / "configs/extra_sources.csv") as sources:
        labels = sorted({row["category"].replace("_", " ") for row in csv.DictReader(meta)})
        extra = {row["caption"] for row in csv.DictReader(sources)}
    return [f"the sound of {label}" for label in labels + sorted(extra - set(labels))]


def decode(model, encoded: torch.Tensor, conds: torch.Tensor) -> torch.Tensor:
    """(Q, 2*dim) conditions -> raw masks (Q, F, T) of one mixture's encoding (1, D, T)."""
    return torch.cat([model.network.decode(encoded.expand(len(group), *encoded.shape[1:]), group)
                      for group in conds.split(model.query_group)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="../shared/data")
    parser.add_argument("--limit", type=int, default=400, help="fold-4 mixtures")
    parser.add_argument("--sets", nargs="+", choices=["one", "five", "held-out"], default=["one", "five", "held-out"],
                        help="fold 4 with one or five interferers, the held-out recordings")
    opts = parser.parse_args()
    torch.set_grad_enabled(False)
    separator = Separator()
    model, power = separator.model, separator.model.config.mask_power
    texts = vocabulary(opts.data)
    known = separator.encoder.encode(texts)
    anchored = lambda e: anchor_queries(e, model.vocabulary, model.config.query_anchor)  # noqa: E731, as Separator does
    known_cond = anchored(known)
    bank = ClipBank(read_dataset({"type": "esc50", "path": str(opts.data / "esc50-16k"), "folds": [4]}),
                    model.sample_rate)
    sets = {"fold 4, 1 interferer": ("one", lambda: label_mixtures(bank, 1, limit=opts.limit, rows_of_full=True)),
            "fold 4, 5 interferers": ("five", lambda: label_mixtures(bank, 5, limit=opts.limit, rows_of_full=True)),
            "held-out recordings": ("held-out", lambda: mixture_list(ROOT / "configs/heldout_recordings.csv", opts.data,
                                                                     model.sample_rate))}
    for name, (key, make) in sets.items():
        if key not in opts.sets:
            continue
        cases = make()
        scores: dict[str, list[tuple[float, float]]] = {}
        for case in cases:
            mixture = torch.from_numpy(np.asarray(case.mixture, np.float32)).reshape(1, -1)
            target = torch.from_numpy(np.asarray(case.target, np.float32)).reshape(1, -1)
            spec = model.stft(mixture)
            gain = input_gain(float(mixture.pow(2).mean().sqrt()), model.config.input_level_db)  # the engine's
            encoded = model.network.encode_mixture(spec.abs() * gain)
            query = separator.encoder.encode([case.query])
            mine = decode(model, encoded, separator.conditions(case.query))
            theirs = decode(model, encoded, build_condition(known_cond, torch.zeros_like(known)))
            taken = (theirs * (1 - mine) * spec.abs()).pow(2).sum((-1, -2))
            taken[(known @ query.T).squeeze(1) >= 0.8] = -1  # the query's own sound, phrased otherwise
            rival = int(taken.argmax())
            # the share of what the query leaves that the competitor takes: near 1 where the mixture is two known
            # sounds; the competition is blended in from a share of 0.5 to 0.8 (set after seeing shares of both sets)
            share = float((theirs[rival] * (1 - mine) * spec.abs()).pow(2).sum()
                          / ((1 - mine) * spec.abs()).pow(2).sum().clamp_min(1e-12))
            blend = min(1.0, max(0.0, (share - 0.5) / 0.3))
            shared = mine / (mine + theirs[rival]).clamp_min(1e-6)
            variants = {
                "one pass (shipped)": mine,
                "competitor as negative query": decode(model, encoded,
                                                       build_condition(anchored(query), known_cond[rival : rival + 1])),
                "shared bins, a = 0.7": (mine / (mine + theirs[rival]).clamp_min(1e-6).pow(0.7)).clamp(max=1),
                "shared bins, a = 1": shared,
                "a = 1 where the share is high": (mine.clamp_min(1e-6).pow(1 - blend)
                                                  * shared.clamp_min(1e-6).pow(blend)),
            }
            before = (float(sdr(mixture, target)), float(si_sdr(mixture, target)))
            for variant, mask in variants.items():
                estimate = model.stft.inverse(spec * mask.clamp_min(0).pow(power), mixture.shape[-1])
                scores.setdefault(variant, []).append((float(sdr(estimate, target)) - before[0],
                                                       float(si_sdr(estimate, target)) - before[1]))
            if key == "held-out":  # 16 items: which competitor each got, against what the interferer was
                interferer = Path(case.files.split("; ")[-1]).stem[:28]
                print(f"  {case.query[:22]:22s} over {interferer:28s} competitor {texts[rival][13:]!r:22s} share "
                      f"{share:.2f}  SDRi " + " ".join(f"{values[-1][0]:6.2f}" for values in scores.values()))
        print(f"{name} ({len(cases)} mixtures): SDRi / SI-SDRi, mean (median SDRi)")
        for variant, values in scores.items():
            values = np.array(values)
            print(f"  {variant:30s} {values[:, 0].mean():6.2f} / {values[:, 1].mean():6.2f}  "
                  f"({np.median(values[:, 0]):.2f})", flush=True)


if __name__ == "__main__":
    main()
