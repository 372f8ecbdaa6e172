"""FiLM-TCN: the default mask network, built for CPU speed.

Frequency goes into channels at the first layer, so every later layer is a 1-D convolution over
time (5-10x cheaper per step than a 2-D U-Net at full STFT resolution). The query conditions every
block through FiLM (scale and shift), which makes the condition strong enough that the network
must listen to it rather than learn a query-blind denoiser.
"""
from __future__ import annotations

import torch
from torch import nn


class ChannelNorm(nn.Module):
    """LayerNorm over channels for each frame: independent of other frames, so chunking is exact."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class FiLMBlock(nn.Module):
    """Bottleneck residual block: 1x1 up, FiLM, dilated depthwise conv over time, 1x1 down."""

    def __init__(self, channels: int, hidden: int, cond_dim: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = ChannelNorm(channels)
        self.up = nn.Conv1d(channels, hidden, 1)
        self.film = nn.Linear(cond_dim, 2 * hidden)
        self.depthwise = nn.Conv1d(
            hidden, hidden, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation, groups=hidden
        )
        self.down = nn.Conv1d(hidden, channels, 1)
        self.act = nn.GELU()
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        nn.init.zeros_(self.down.weight)  # blocks start as identity: stable deep training
        nn.init.zeros_(self.down.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        h = self.act(self.up(self.norm(x)))
        h = h * (1 + gamma) + beta
        h = self.act(self.depthwise(h))
        return x + self.down(h)


class SpectralFront(nn.Module):
    """Optional 2-D convolutions over (frequency, time) before frequency goes into channels: local,
    frequency-shift-invariant features (harmonics, onsets) that a dense projection must learn per bin."""

    def __init__(self, n_bins: int, channels: int, widths: tuple[int, ...]):
        super().__init__()
        convs, cin, bins = [], 1, n_bins
        for width in widths:
            convs.append(nn.Conv2d(cin, width, 3, stride=(2, 1), padding=1))
            cin, bins = width, (bins - 1) // 2 + 1
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Conv1d(cin * bins, channels, 1)
        self.act = nn.GELU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.unsqueeze(1)  # (B, 1, F, T)
        for conv in self.convs:
            x = self.act(conv(x))
        return self.proj(x.flatten(1, 2))


class FiLMTCN(nn.Module):
    """Magnitude (B, F, T) and condition (B, C) -> mask in [0, 1] of shape (B, F, T)."""

    def __init__(
        self,
        n_bins: int,
        cond_dim: int,
        channels: int = 256,
        hidden: int = 512,
        cond_hidden: int = 256,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32),
        repeats: int = 2,
        front_channels: tuple[int, ...] = (),
        eps: float = 1e-5,
    ):
        super().__init__()
        self.eps = eps
        self.cond_mlp = nn.Sequential(
            nn.Linear(cond_dim, cond_hidden), nn.GELU(), nn.Linear(cond_hidden, cond_hidden), nn.GELU()
        )
        self.input_norm = nn.BatchNorm1d(n_bins, affine=True)
        self.input_proj = nn.Conv1d(n_bins, channels, 1)
        self.front = SpectralFront(n_bins, channels, tuple(front_channels)) if front_channels else None
        self.input_film = nn.Linear(cond_hidden, 2 * channels)
        self.blocks = nn.ModuleList(
            FiLMBlock(channels, hidden, cond_hidden, kernel, d) for _ in range(repeats) for d in dilations
        )
        self.output_norm = ChannelNorm(channels)
        self.output_proj = nn.Conv1d(channels, n_bins, 1)

    @property
    def receptive_field(self) -> int:
        """Frames on each side that influence one output frame."""
        frames = sum(blk.depthwise.dilation[0] * (blk.depthwise.kernel_size[0] - 1) // 2 for blk in self.blocks)
        return frames + (len(self.front.convs) if self.front is not None else 0)

    def encode_mixture(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Query-independent part, computed once per mixture and shared by all its queries."""
        features = self.input_norm(torch.log(magnitude + self.eps))
        encoded = self.input_proj(features)
        if self.front is not None:
            encoded = encoded + self.front(features)
        return encoded

    def forward(self, magnitude: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mixture(magnitude), cond)

    def decode(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Encoded mixture (1 or B, C, T) and condition (B, cond_dim) -> mask (B, F, T)."""
        c = self.cond_mlp(cond)
        if x.shape[0] != c.shape[0]:
            x = x.expand(c.shape[0], -1, -1)
        gamma, beta = self.input_film(c).unsqueeze(-1).chunk(2, dim=1)
        x = x * (1 + gamma) + beta
        for block in self.blocks:
            x = block(x, c)
        return torch.sigmoid(self.output_proj(self.output_norm(x)))
