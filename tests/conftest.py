"""Shared fixtures: small model files made on the fly, generated audio, and the real data when present."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LASS_SHARED_DATA", ROOT.parent / "shared" / "data"))
ESC50 = SHARED_DATA / "esc50-16k"

torch.set_num_threads(min(2, torch.get_num_threads()))


def needs_shared_data(path: Path = ESC50):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Constant-mask models (exactness checks), small random FiLM-TCNs (plain and time-strided) and a
    small random band-split network."""
    from lass.models.config import ModelConfig
    from lass.models.registry import save_model
    from lass.models.separator import MaskSeparator

    folder = tmp_path_factory.mktemp("models")
    for name, value in (("ones", 1.0), ("zeros", 0.0), ("half", 0.5)):
        save_model(MaskSeparator(ModelConfig(name=name, network="constant", network_args={"value": value})),
                   folder / f"{name}.safetensors")
    torch.manual_seed(0)
    small = {"channels": 32, "hidden": 64, "repeats": 1}
    strided = {**small, "dilations": [1, 2, 4], "time_stride": 4, "tail_dilations": [1]}
    band = {"band_dim": 8, "hidden": 16, "dilations": [1, 2, 4], "head_hidden": 8}
    for name, network, args in (("tiny", "film_tcn", small), ("tiny-strided", "film_tcn", strided),
                                ("tiny-band", "band_split", band)):
        model = MaskSeparator(ModelConfig(name=name, network=network, network_args=args))
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        save_model(model.eval(), folder / f"{name}.safetensors")
    return folder


def tone_noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    sig = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal((channels, n))
    return sig.astype(np.float32).reshape(channels, n)


def synthetic_class_folders(root: Path, clips_per_class: int = 4, seconds: float = 2.0, rate: int = 16000) -> Path:
    """A tiny 'folder per class' dataset of distinct synthetic sounds."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    makers = {
        "beeping": lambda k: np.sin(2 * np.pi * (800 + 40 * k) * t) * (np.sin(2 * np.pi * 3 * t) > 0),
        "humming": lambda k: sum(np.sin(2 * np.pi * (100 + 5 * k) * h * t) / h for h in range(1, 5)),
        "hissing": lambda k: rng.standard_normal(t.size) * (np.sin(2 * np.pi * (0.7 + 0.1 * k) * t) > 0.3),
    }
    for label, make in makers.items():
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(clips_per_class):
            sig = make(k)
            sf.write(folder / f"{label}_{k}.wav", (0.3 * sig / np.abs(sig).max()).astype(np.float32), rate)
    return root
