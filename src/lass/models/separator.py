"""A mask-based separator: STFT -> mask network -> masked mixture (mixture phase) -> iSTFT."""
from __future__ import annotations

import difflib
import inspect
import math
import warnings

import numpy as np
import torch
from torch import nn

from ..stft import STFT, STFTConfig
from .config import ModelConfig
from .band_split import BandSplitTCN
from .film_tcn import FiLMTCN, per_query


def channel_gains(gain: float | np.ndarray | torch.Tensor, channels: int, like: torch.Tensor) -> torch.Tensor:
    """One gain for all channels or one per channel -> a (channels,) tensor on `like`'s device, in its real dtype."""
    dtype = like.real.dtype if like.is_complex() else like.dtype
    gains = torch.as_tensor(np.asarray(gain, np.float32) if not isinstance(gain, torch.Tensor) else gain)
    if gains.numel() == 0:  # an input without samples: nothing to hear at any level
        gains = torch.ones(1)
    if gains.numel() not in (1, channels):
        raise ValueError(f"{gains.numel()} gains for {channels} channels")
    return gains.to(device=like.device, dtype=dtype).reshape(-1).expand(channels).contiguous()


UPPER_BAND_DB = -5.0  # -10 to 0 dB scored within 0.1 dB of each other at 8 and 11.025 kHz (docs/benchmarks.md)


class ConstantMask(nn.Module):
    """A mask network that ignores its inputs: used to prove the signal path is exact."""

    def __init__(self, n_bins: int, cond_dim: int, value: float = 1.0):
        super().__init__()
        self.value = value
        self.anchor = nn.Parameter(torch.zeros(()))  # so the module has a device and dtype

    def encode_mixture(self, magnitude: torch.Tensor) -> torch.Tensor:
        return magnitude

    def decode(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return torch.full((cond.shape[0], *x.shape[1:]), self.value, dtype=x.dtype, device=x.device)

    def forward(self, magnitude: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.decode(magnitude, cond)


NETWORKS = {"film_tcn": FiLMTCN, "band_split": BandSplitTCN, "constant": ConstantMask}


def build_network(config: ModelConfig) -> nn.Module:
    """The mask network a config names. A mistyped `network_args` (an unknown key, a number where a list
    belongs) is a ValueError naming the section, so a config mistake reads as one line, not a traceback."""
    if config.network not in NETWORKS:
        raise ValueError(f"model.network: unknown network '{config.network}' (known: {', '.join(NETWORKS)})")
    kind = NETWORKS[config.network]
    known = [name for name in inspect.signature(kind.__init__).parameters if name not in ("self", "n_bins", "cond_dim")]
    for key in config.network_args:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            raise ValueError(f"model.network_args: unknown setting {key!r} for {config.network}"
                             f"{f' (did you mean {close[0]!r}?)' if close else ''}; known: {', '.join(known)}")
    try:
        with warnings.catch_warnings():  # a size of 0 is refused below, in words
            warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
            network = kind(n_bins=config.n_fft // 2 + 1, cond_dim=2 * config.query_dim, **config.network_args)
    except (TypeError, ValueError, RuntimeError) as err:  # RuntimeError: torch's, for a negative size
        raise ValueError(f"model.network_args for {config.network}: {err}") from None
    if any(parameter.numel() == 0 for parameter in network.parameters()):  # trained with a warning, learnt nothing
        raise ValueError(f"model.network_args for {config.network}: a layer has no weights (a size of 0?): "
                         f"{config.network_args}")
    return network


class MaskSeparator(nn.Module):
    """Waveforms at the model's sample rate in, estimated target waveforms out."""

    query_group = 4  # queries decoded together; measured fastest per query on a 2-core CPU

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.set_mask_power(config.mask_power)
        self.set_query_anchor(config.query_anchor)
        self.stft = STFT(STFTConfig(config.n_fft, config.hop_length))
        self.network = build_network(config)
        # The training phrasings' query embeddings (N, query_dim), for query anchoring: a model file keeps them
        # beside the weights (registry.save_model); None where the model was not trained by lass train. Not a
        # buffer: training never reads it, and DDP would broadcast it every step.
        self.vocabulary: torch.Tensor | None = None

    def set_mask_power(self, power: float) -> None:
        if not (math.isfinite(power) and power > 0):  # inf: every mask below 1 becomes 0, a silent model
            raise ValueError(f"mask_power must be a finite number > 0, got {power}")
        self.config.mask_power = float(power)

    def set_query_anchor(self, weight: float) -> None:
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"query_anchor must be a finite number >= 0, got {weight}")
        self.config.query_anchor = float(weight)

    def compile_network(self) -> None:
        """torch.compile the mask network for training. A bound method is compiled, not the module, so
        parameter names (checkpoints, exported files) stay the same; one method for encoding and decoding,
        as compiling them apart made a default training step 20 % slower (scripts/train_step_time.py)."""
        self._mask_and_encoding = torch.compile(self._mask_and_encoding)

    def _mask_and_encoding(self, magnitude: torch.Tensor, cond: torch.Tensor,
                           keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if keep is None:
            encoded = self.network.encode_mixture(magnitude)
        else:
            encoded = self.network.encode_mixture(magnitude, keep)
        return self.network.decode(encoded, cond), encoded

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def context_frames(self) -> int:
        return int(getattr(self.network, "receptive_field", 0))

    @property
    def frame_multiple(self) -> int:
        """A time-strided network groups this many frames: chunks must start on such a group's edge."""
        return int(getattr(self.network, "time_stride", 1))

    def forward(self, mixture: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """mixture (B, L), cond (B*k, 2*query_dim), k queries per mixture -> estimates (B*k, L), mixture
        b's queries in rows b*k .. b*k+k-1 (training; the STFT and mixture encoding are shared)."""
        return self.forward_with_encoding(mixture, cond)[0]

    def forward_with_encoding(self, mixture: torch.Tensor, cond: torch.Tensor,
                              keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward`, and the query-independent mixture encoding (B, T, ...) that training's auxiliary
        presence head reads. `keep` (B, F, T), training only: which input features the network sees
        (film_tcn); the mask still applies to the whole mixture spectrogram."""
        spec = self.stft(mixture)
        mask, encoded = self._mask_and_encoding(spec.abs(), cond, keep)
        spec = per_query(spec, mask.shape[0])
        return self.stft.inverse(spec * mask, mixture.shape[-1]), encoded

    def heard(self, spec: torch.Tensor, input_gain: float | torch.Tensor = 1.0,
              band_hz: float | None = None) -> torch.Tensor:
        """The magnitude the network hears of a (..., F, T) spectrogram: at the engine's level, and where the input
        holds only frequencies below `band_hz` (its own Nyquist frequency, below the model's), the empty bins above
        filled frame by frame at the level of the band's top, UPPER_BAND_DB down. `input_gain`: a number, or a
        tensor that broadcasts to the spectrogram (one per channel: (C, 1, 1)). Trained on full-band audio, the
        network heard an empty upper band as "none of the queried sound here": fold-4 mixtures played at 8 kHz
        scored 2.4 dB SDRi as heard and 6.7 dB filled (docs/benchmarks.md, "Band-limited input")."""
        magnitude = spec.abs() * input_gain
        nyquist = self.sample_rate / 2
        if band_hz is None or band_hz >= nyquist or self.config.band_fill is False:
            return magnitude
        cut = int((magnitude.shape[-2] - 1) * band_hz / nyquist * 0.97)  # below the resampler's transition band
        if cut < 12:
            return magnitude
        top = magnitude[..., cut - cut // 12 : cut, :].mean(-2, keepdim=True) * 10 ** (UPPER_BAND_DB / 20)
        return torch.cat([magnitude[..., :cut, :], torch.maximum(magnitude[..., cut:, :], top)], dim=-2)

    def separate_many(self, mixture: torch.Tensor, conds: torch.Tensor,
                      input_gain: float | np.ndarray | torch.Tensor = 1.0,
                      band_hz: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mixture (C, L), conds (Q, 2*query_dim) -> estimates (Q, C, L) and high-band gains (Q, C, L).

        The network hears the mixture times `input_gain`, one number or one per channel (C,) (the engine's level
        normalisation, `input_gain` in lass/inference.py), with an empty band above `band_hz` filled (`heard`);
        its masks apply to the mixture as given.

        The STFT and the mixture encoding are computed once per channel and shared by all queries.
        Masks are raised to `config.mask_power` here (inference), not in `forward` (training).
        The high-band gain is the mask of the top bins, per sample: the engine applies it to content
        above this model's Nyquist frequency when the input has a higher sample rate.
        """
        channels, length = mixture.shape
        queries = conds.shape[0]
        spec = self.stft(mixture)  # (C, F, T)
        gains = channel_gains(input_gain, channels, spec).reshape(-1, 1, 1)
        encoded = self.network.encode_mixture(self.heard(spec, gains, band_hz))  # (C, D, T)
        masks = []
        for group in conds.split(self.query_group):  # bounded activations: large groups fall out of cache
            n = group.shape[0]
            batch = encoded.unsqueeze(0).expand(n, *encoded.shape).reshape(n * channels, *encoded.shape[1:])
            masks.append(self.network.decode(batch, group.repeat_interleave(channels, dim=0)))
        mask = torch.cat(masks).reshape(queries, channels, *spec.shape[1:])
        if self.config.mask_power != 1.0:
            mask = mask.clamp_min(0).pow(self.config.mask_power)
        estimate = self.stft.inverse(spec.unsqueeze(0) * mask, length)
        top = max(1, mask.shape[-2] // 8)
        # (Q, C, T): frame t is centred on sample t*hop; at most 1, as content above the model's band was never heard
        frame_gain = mask[..., -top:, :].mean(-2).clamp(max=1.0)
        positions = torch.arange(length, dtype=mask.dtype, device=mask.device) / self.config.hop_length
        lo = positions.floor().long().clamp(max=frame_gain.shape[-1] - 1)
        hi = (lo + 1).clamp(max=frame_gain.shape[-1] - 1)
        frac = positions - lo
        gain = frame_gain[..., lo] * (1 - frac) + frame_gain[..., hi] * frac
        return estimate, gain
