"""Band-split TCN: the spectrum cut into bands, each band a sequence over time, bands mixed per frame.

FiLM-TCN squeezes a whole frame (513 bins) into one 320-dimensional vector, so what a sound looks like
in each frequency region must be recovered from a shared summary. Here every band keeps its own
feature vector (as in BSRNN and BS-RoFormer, the strongest separators of recent challenges): a
per-band projection in, FiLM-conditioned temporal blocks with weights shared across bands, a cheap
mixing layer across bands after each of them (which band holds the queried sound depends on the
others), and a per-band mask head out. Bands are narrow at low frequencies and wide at high ones.
"""
from __future__ import annotations

import torch
from torch import nn

from .film_tcn import FiLMBlock, condition_mlp, per_query


def default_band_widths(n_bins: int) -> list[int]:
    """Widths in bins: 8 up to 1/4 of the bins, 16 up to 1/2, 32 above; the last band takes the rest.

    At 16 kHz with n_fft 1024 that is 125 Hz bands to 2 kHz, 250 Hz to 4 kHz and 500 Hz above (32 bands).
    """
    widths, start = [], 0
    for width, stop in ((8, (n_bins - 1) // 4), (16, (n_bins - 1) // 2), (32, n_bins - 1)):
        while start + width <= stop:
            widths.append(width)
            start += width
    if start < n_bins:
        widths[-1] += n_bins - start
    return widths


def _groups(widths: list[int]) -> list[tuple[int, int, int]]:
    """Runs of equal width as (first bin, bands, width), so each run is one batched product."""
    groups, start, i = [], 0, 0
    while i < len(widths):
        j = i
        while j < len(widths) and widths[j] == widths[i]:
            j += 1
        groups.append((start, j - i, widths[i]))
        start += (j - i) * widths[i]
        i = j
    return groups


class BandLinear(nn.Module):
    """A separate linear map per band: (B, T, F) bins -> (B, T, K, D) band features, or back."""

    def __init__(self, widths: list[int], dim: int, to_bands: bool):
        super().__init__()
        self.groups, self.to_bands = _groups(widths), to_bands
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for _, bands, width in self.groups:
            fan_in = width if to_bands else dim
            shape = (bands, width, dim) if to_bands else (bands, dim, width)
            self.weights.append(nn.Parameter(torch.empty(shape).uniform_(-fan_in ** -0.5, fan_in ** -0.5)))
            self.biases.append(nn.Parameter(torch.zeros(bands, dim if to_bands else width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, band = [], 0
        for (start, bands, width), weight, bias in zip(self.groups, self.weights, self.biases):
            if self.to_bands:
                chunk = x[..., start : start + bands * width].unflatten(-1, (bands, width))
                out.append(torch.einsum("btkw,kwd->btkd", chunk, weight.to(x.dtype)) + bias.to(x.dtype))
            else:
                chunk = x[:, :, band : band + bands]
                y = torch.einsum("btkd,kdw->btkw", chunk, weight.to(x.dtype)) + bias.to(x.dtype)
                out.append(y.flatten(-2))
            band += bands
        return torch.cat(out, dim=-2 if self.to_bands else -1)


class BandMixer(nn.Module):
    """Residual MLP across the band axis, per frame and feature (MLP-Mixer's token mixing)."""

    def __init__(self, bands: int, dim: int, expansion: int = 2):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mix = nn.Sequential(nn.Linear(bands, expansion * bands), nn.GELU(), nn.Linear(expansion * bands, bands))
        nn.init.zeros_(self.mix[-1].weight)
        nn.init.zeros_(self.mix[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, K, D) -> (B, T, K, D)"""
        return x + self.mix(self.norm(x).transpose(-1, -2)).transpose(-1, -2)


class BandSplitTCN(nn.Module):
    """Magnitude (B, F, T) and condition (B, C) -> mask in [0, 1] of shape (B, F, T)."""

    def __init__(
        self,
        n_bins: int,
        cond_dim: int,
        band_dim: int = 48,
        hidden: int = 96,
        cond_hidden: int = 256,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
        repeats: int = 1,
        head_hidden: int = 96,
        band_widths: tuple[int, ...] | None = None,
        eps: float = 1e-5,
    ):
        super().__init__()
        widths = list(band_widths) if band_widths else default_band_widths(n_bins)
        if sum(widths) != n_bins or min(widths) < 1:
            raise ValueError(f"band widths must be positive and sum to {n_bins} bins, got {sum(widths)}")
        bands = len(widths)
        self.eps = eps
        self.cond_mlp = condition_mlp(cond_dim, cond_hidden)
        self.input_norm = nn.BatchNorm1d(n_bins, affine=True)
        self.split = BandLinear(widths, band_dim, to_bands=True)
        self.input_film = nn.Linear(cond_hidden, 2 * band_dim)
        self.time_blocks = nn.ModuleList(
            FiLMBlock(band_dim, hidden, cond_hidden, kernel, d) for _ in range(repeats) for d in dilations
        )
        self.band_blocks = nn.ModuleList(BandMixer(bands, band_dim) for _ in self.time_blocks)
        self.output_norm = nn.LayerNorm(band_dim)
        self.head = BandLinear([head_hidden] * bands, band_dim, to_bands=False)  # per-band D -> head_hidden
        self.merge = BandLinear(widths, head_hidden, to_bands=False)  # per-band head_hidden -> its bins
        self.act = nn.GELU()

    @property
    def receptive_field(self) -> int:
        return sum(block.depthwise.context for block in self.time_blocks)

    def encode_mixture(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Query-independent part, (B, F, T) -> (B, T, K, D)."""
        features = self.input_norm(torch.log(magnitude + self.eps))
        return self.split(features.transpose(1, 2))

    def forward(self, magnitude: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mixture(magnitude), cond)

    def decode(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Encoded mixtures (1 or B, T, K, D) and conditions (B*k, cond_dim), k per mixture -> masks (B*k, F, T)."""
        c = self.cond_mlp(cond)
        x = per_query(x, c.shape[0])
        gamma, beta = self.input_film(c)[:, None, None].chunk(2, dim=-1)
        x = x * (1 + gamma) + beta
        for time_block, band_block in zip(self.time_blocks, self.band_blocks):
            x = band_block(time_block(x, c))
        hidden = self.act(self.head(self.output_norm(x)).unflatten(-1, (x.shape[2], -1)))
        return torch.sigmoid(self.merge(hidden).transpose(1, 2))
