"""The one STFT front end shared by every model, trainer and oracle in lass."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class STFTConfig:
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int | None = None

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


class STFT(torch.nn.Module):
    """torch.stft / torch.istft with a periodic Hann window, centred, reflect-padded.

    The inverse takes the exact output length so that analysis followed by synthesis is the
    identity (to float precision) for any signal length.
    """

    def __init__(self, config: STFTConfig = STFTConfig()):
        super().__init__()
        self.config = config
        win = config.win_length or config.n_fft
        self.register_buffer("window", torch.hann_window(win, periodic=True), persistent=False)

    def _frame_args(self) -> dict:
        cfg = self.config
        return {"n_fft": cfg.n_fft, "hop_length": cfg.hop_length, "win_length": cfg.win_length or cfg.n_fft,
                "window": self.window, "center": True}

    def frames(self, length: int) -> int:
        """Frames of a signal of `length` samples (centred framing)."""
        return length // self.config.hop_length + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(..., samples) real -> (..., bins, frames) complex."""
        shape = wav.shape
        flat = wav.reshape(-1, shape[-1])
        pad_mode = "reflect" if shape[-1] > self.config.n_fft // 2 else "constant"
        spec = torch.stft(flat, **self._frame_args(), pad_mode=pad_mode, return_complex=True)
        return spec.reshape(*shape[:-1], *spec.shape[-2:])

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """(..., bins, frames) complex -> (..., length) real."""
        shape = spec.shape
        flat = spec.reshape(-1, *shape[-2:])
        wav = torch.istft(flat, **self._frame_args(), length=length)
        return wav.reshape(*shape[:-2], length)
