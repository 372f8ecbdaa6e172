"""A model is described by a config saved next to (inside) its weights, so a file is self-describing."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    name: str = "lass-tcn"
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 256
    network: str = "film_tcn"
    network_args: dict[str, Any] = field(default_factory=dict)
    text_encoder: str = "all-MiniLM-L6-v2"
    query_dim: int = 384  # one query embedding; the condition is [positive, negative] = 2 * query_dim
    # Inference masks are raised to this power. Below 1 softens them: on clips a model has not heard,
    # its masks are overconfident (docs/MODEL_CARD.md has the measurement). Training ignores it.
    mask_power: float = 1.0
    # Inference: the input is scaled to this RMS level (dB re. full scale) for the network to look at, while
    # its masks apply to the input as given, so outputs keep the input's level. The network's input
    # normalisation has fixed statistics, so it hears level: the default model lost 1.4 dB SDRi on inputs
    # 20 dB quieter and 5.1 dB at 40 dB quieter (docs/benchmarks.md). Training mixtures lie around this
    # level (mixing.level_db). None: the network sees the input as given. Training ignores it.
    input_level_db: float | None = -25.0
    # Inference: an input that holds less than the model's band (a low-rate file, or one resampled up from it) is
    # heard with its empty upper band filled (MaskSeparator.heard), as a network trained on full-band audio needs.
    # A model trained mostly on such audio learned from the empty band, and hears it as it is (False). None (files
    # from before the setting): filled. lass train decides from its data where the config does not say
    # (lass/train/run.py, band_fill_for). Training ignores it.
    band_fill: bool | None = None
    # Inference: each query embedding gets this weight of the mean of its nearest training phrasings added
    # (lass.query.anchor_queries), as a network mutes on embeddings it was not trained on. 0, or a file without
    # the training phrasings' embeddings (files from before the setting): the query as the encoder gives it.
    # Training ignores it.
    query_anchor: float = 0.0
    licence: str = "unknown"
    source: str = "random init"
    description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        if not isinstance(data, dict):  # a damaged file's JSON: said by the reader, with the file's name
            raise ValueError(f"a model config is a mapping of settings, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> "ModelConfig":
        return cls.from_dict(json.loads(text))
