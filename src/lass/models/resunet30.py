"""AudioSep's ResUNet30 separator (architecture only, random weights): the speed baseline for `lass bench`.

Follows the description in the reference notes: 32 kHz, STFT 2048/320, BatchNorm over frequency,
6 encoder stages, a centre block, 6 decoder stages, shift-only FiLM from a 512-d condition added
after every BatchNorm, a magnitude mask and a phase rotation. It is here to be timed, not trained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..stft import STFT, STFTConfig


class ConvBlockRes(nn.Module):
    def __init__(self, cin: int, cout: int, cond: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(cin, momentum=0.01), nn.BatchNorm2d(cout, momentum=0.01)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.beta1, self.beta2 = nn.Linear(cond, cin), nn.Linear(cond, cout)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, c):
        h = self.conv1(F.leaky_relu(self.bn1(x) + self.beta1(c)[:, :, None, None], 0.01))
        h = self.conv2(F.leaky_relu(self.bn2(h) + self.beta2(c)[:, :, None, None], 0.01))
        return h + (x if self.shortcut is None else self.shortcut(x))


class Encoder(nn.Module):
    def __init__(self, cin, cout, pool, cond):
        super().__init__()
        self.block, self.pool = ConvBlockRes(cin, cout, cond), pool

    def forward(self, x, c):
        skip = self.block(x, c)
        return (F.avg_pool2d(skip, self.pool) if self.pool != (1, 1) else skip), skip


class Decoder(nn.Module):
    def __init__(self, cin, cout, up, cond):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, momentum=0.01)
        self.beta1 = nn.Linear(cond, cin)
        self.up = nn.ConvTranspose2d(cin, cout, up, stride=up, bias=False)
        self.block = ConvBlockRes(2 * cout, cout, cond)

    def forward(self, x, skip, c):
        h = self.up(F.leaky_relu(self.bn1(x) + self.beta1(c)[:, :, None, None], 0.01))
        return self.block(torch.cat([h, skip], dim=1), c)


class ResUNet30(nn.Module):
    sample_rate = 32000

    def __init__(self, cond_dim: int = 512):
        super().__init__()
        self.stft = STFT(STFTConfig(2048, 320))
        self.bn0 = nn.BatchNorm2d(1025, momentum=0.01)
        self.pre_conv = nn.Conv2d(1, 32, 1)
        chans = [(32, 32, (2, 2)), (32, 64, (2, 2)), (64, 128, (2, 2)), (128, 256, (2, 2)),
                 (256, 384, (2, 2)), (384, 384, (1, 2))]
        self.encoders = nn.ModuleList(Encoder(a, b, p, cond_dim) for a, b, p in chans)
        self.centre = Encoder(384, 384, (1, 1), cond_dim)
        ups = [(384, 384, (1, 2)), (384, 384, (2, 2)), (384, 256, (2, 2)), (256, 128, (2, 2)),
               (128, 64, (2, 2)), (64, 32, (2, 2))]
        self.decoders = nn.ModuleList(Decoder(a, b, p, cond_dim) for a, b, p in ups)
        self.after_conv = nn.Conv2d(32, 3, 1)

    def forward(self, wav: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """wav (B, L) at 32 kHz, cond (B, 512) -> (B, L)."""
        spec = self.stft(wav)  # (B, F, T)
        mag = spec.abs().clamp_min(1e-5)
        cos, sin = spec.real / mag, spec.imag / mag
        x = mag.transpose(1, 2).unsqueeze(1)  # (B, 1, T, F)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        frames = x.shape[2]
        pad = (-frames) % 32
        x = F.pad(x, (0, 0, 0, pad))[..., :1024]
        x = self.pre_conv(x)
        skips = []
        for enc in self.encoders:
            x, skip = enc(x, cond)
            skips.append(skip)
        x, _ = self.centre(x, cond)
        for dec, skip in zip(self.decoders, reversed(skips)):
            x = dec(x, skip, cond)
        x = self.after_conv(x)
        x = F.pad(x, (0, 1))[:, :, :frames]  # back to 1025 bins, original frames
        mask = torch.sigmoid(x[:, 0]).transpose(1, 2)
        r, i = torch.tanh(x[:, 1]).transpose(1, 2), torch.tanh(x[:, 2]).transpose(1, 2)
        rho = torch.sqrt(r**2 + i**2).clamp_min(1e-10)
        cos_m, sin_m = r / rho, i / rho
        out_mag = mag * mask
        real = out_mag * (cos * cos_m - sin * sin_m)
        imag = out_mag * (sin * cos_m + cos * sin_m)
        return self.stft.inverse(torch.complex(real, imag), wav.shape[-1])
