"""FiLM-TCN: the default mask network, built for CPU speed.

Frequency goes into channels at the first layer, so every later layer is a 1-D convolution over
time (5-10x cheaper per step than a 2-D U-Net at full STFT resolution). The query conditions every
block through FiLM (scale and shift), which makes the condition strong enough that the network
must listen to it rather than learn a query-blind denoiser.

With `time_stride` s > 1 the blocks run at 1/s of the STFT frame rate: groups of s frames are
folded into channels, and after the blocks unfolded again and added to the full-rate input; a few
full-rate `tail` blocks then sharpen the mask in time. Recognising *what* sounds where needs context
more than frame-exact timing, so this buys most of the compute back (2.1x faster training steps at
s = 4) without coarsening the mask.

Activations are kept time-major, (B, T, C): the pointwise layers are then plain matrix products
(which bf16 training runs on the CPU's matrix units) and the normalisation needs no transposes.
"""
from __future__ import annotations

import torch
from torch import nn


def per_query(encoded: torch.Tensor, queries: int) -> torch.Tensor:
    """An encoded batch of B mixtures (B, ...) -> one row per query (queries, ...), k = queries / B per
    mixture: mixture b's queries are rows b*k .. b*k+k-1, so one mixture encoding serves all its
    queries (B = 1 is expanded without a copy)."""
    batch = encoded.shape[0]
    if batch == queries:
        return encoded
    if batch == 1:
        return encoded.expand(queries, *encoded.shape[1:])
    if queries % batch:
        raise ValueError(f"{queries} queries do not divide evenly over {batch} mixtures")
    return encoded.repeat_interleave(queries // batch, dim=0)


def condition_mlp(cond_dim: int, hidden: int) -> nn.Sequential:
    """Query embeddings -> the condition every FiLM layer of a mask network reads."""
    return nn.Sequential(nn.Linear(cond_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())


class DilatedDepthwise(nn.Module):
    """Depthwise convolution over time on (B, T, C), written as a sum of shifted products.

    For time-major activations this is several times faster than transposing for nn.Conv1d, and its
    parameters keep nn.Conv1d's shapes.
    """

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError("the depthwise kernel must be odd")
        self.kernel, self.dilation = kernel, dilation
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv1d's default
        bound = 1 / kernel ** 0.5
        nn.init.uniform_(self.bias, -bound, bound)

    @property
    def context(self) -> int:
        return self.dilation * (self.kernel - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ..., C): time is axis 1, channels last; any axes between (e.g. bands) are independent."""
        frames, pad = x.shape[1], self.context
        padded = nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (pad, pad))
        w = self.weight[:, 0, :].to(x.dtype)
        out = self.bias.to(x.dtype) + padded[:, :frames] * w[:, 0]
        for k in range(1, self.kernel):
            start = k * self.dilation
            out = out + padded[:, start : start + frames] * w[:, k]
        return out


class FiLMBlock(nn.Module):
    """Bottleneck residual block: pointwise up, FiLM, dilated depthwise conv over time, pointwise down."""

    def __init__(self, channels: int, hidden: int, cond_dim: int, kernel: int, dilation: int,
                 drop_path: float = 0.0):
        """cond_dim 0: an unconditioned block (the query-independent trunk). drop_path: while training,
        the chance that the block is skipped for one example (stochastic depth); inference never skips."""
        super().__init__()
        if not 0 <= drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        self.drop_path = drop_path
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, hidden)
        self.film = nn.Linear(cond_dim, 2 * hidden) if cond_dim else None
        self.depthwise = DilatedDepthwise(hidden, kernel, dilation)
        self.down = nn.Linear(hidden, channels)
        self.act = nn.GELU()
        if self.film is not None:
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        nn.init.zeros_(self.down.weight)  # blocks start as identity: stable deep training
        nn.init.zeros_(self.down.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, ..., C), cond (B, cond_dim) or None for an unconditioned block."""
        h = self.act(self.up(self.norm(x)))
        if self.film is not None:
            film = self.film(cond)
            gamma, beta = film.reshape(film.shape[0], *[1] * (x.dim() - 2), film.shape[-1]).chunk(2, dim=-1)
            h = h * (1 + gamma) + beta
        h = self.down(self.act(self.depthwise(h)))
        if self.training and self.drop_path > 0:
            keep = torch.rand(x.shape[0], *[1] * (x.dim() - 1), device=x.device) >= self.drop_path
            h = h * keep.to(h.dtype) / (1 - self.drop_path)
        return x + h


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
        self.proj = nn.Linear(cin * bins, channels)
        self.act = nn.GELU()

    # eager even inside a compiled network: torch 2.13's inductor emits C++ that does not compile for this
    # backward ("conflicting declaration at_BFloat16_tmp_acc0_vec"). The cause is proj's bias, whose gradient
    # is input_proj's: inductor stores the one bf16 reduction twice under one name. Without that bias the front
    # end compiles, but a training step was no faster (0.44 s either way, scripts/train_step_time.py at 16 x 4 s
    # and 0.41 s at 64 x 1 s, Intel Xeon with AMX), so it stays eager and the weights keep their names.
    @torch.compiler.disable
    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, F, T) -> (B, T, channels)"""
        x = features.unsqueeze(1)  # (B, 1, F, T)
        for conv in self.convs:
            x = self.act(conv(x))
        return self.proj(x.flatten(1, 2).transpose(1, 2))


class QueryPool(nn.Module):
    """Reads the mixture for the query: a per-frame match between the query-independent encoding and the
    condition (a dense audio-text similarity over time), softmax-pooled into one vector of what the queried
    sound sounds like in this mixture, added to the condition. The query blocks are then conditioned on
    this instance of the class, not only on its name. The output layer starts at zero (identity)."""

    def __init__(self, channels: int, cond_hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.key = nn.Linear(channels, cond_hidden)
        self.value = nn.Linear(channels, cond_hidden)
        self.out = nn.Linear(cond_hidden + 1, cond_hidden)  # + the best frame's match: is the sound there?
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = nn.GELU()

    def forward(self, encoded: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """encoded mixtures (B, T, C), conditions (B*k, H) with k per mixture -> condition update (B*k, H)"""
        h = self.norm(encoded)
        keys = per_query(self.key(h), cond.shape[0])
        values = per_query(self.value(h), cond.shape[0])
        scores = torch.einsum("btc,bc->bt", keys, cond.to(keys.dtype)) / keys.shape[-1] ** 0.5
        pooled = torch.einsum("bt,btc->bc", torch.softmax(scores.float(), dim=1).to(values.dtype), values)
        return self.out(self.act(torch.cat([pooled, scores.amax(1, keepdim=True)], dim=-1)))


class TimeAttention(nn.Module):
    """Multi-head self-attention over the frames of a segment, residual and pre-norm. The dilated
    convolutions compare a frame only with fixed offsets around it; attention lets it find the frames
    that sound like it anywhere in the segment (a bark that repeats, a hum that returns), which groups
    the parts of one source by content. No positional encoding: it compares content only, so it works
    at any segment length. The output layer starts at zero (identity)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention_heads ({heads}) must divide channels ({channels})")
        self.heads = heads
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C)"""
        batch, frames, channels = x.shape
        qkv = self.qkv(self.norm(x)).reshape(batch, frames, 3, self.heads, channels // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, C / heads)
        h = nn.functional.scaled_dot_product_attention(q, k, v)
        return x + self.out(h.transpose(1, 2).reshape(batch, frames, channels))


class MaskRefiner(nn.Module):
    """Optional 2-D convolutions over (frequency, time) on the mask logits beside the mixture's
    normalised log-magnitude. The dense output projection makes every frame's mask from `channels`
    numbers; this lets each bin follow the mixture's own fine structure (a harmonic, an onset) at full
    resolution. The last convolution starts at zero, so the refiner starts as the identity."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        convs, cin = [], 2
        for width in widths:
            convs.append(nn.Conv2d(cin, width, 3, padding=1))
            cin = width
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(cin, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = nn.GELU()

    @property
    def context(self) -> int:
        return len(self.convs) + 1

    @torch.compiler.disable  # eager, for the same inductor failure as SpectralFront
    def forward(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """logits and features (B, F, T) -> refined logits (B, F, T)"""
        # channels-last: a bf16 training step (16 x 4 s, front end [8, 16], refiner [16]) took 1.12 s instead of
        # 1.40 s on an AMD EPYC (scripts/train_step_time.py); SpectralFront's strided convolutions gained nothing
        x = torch.stack([logits, features.to(logits.dtype)], 1).contiguous(memory_format=torch.channels_last)
        for conv in self.convs:
            x = self.act(conv(x))
        return logits + self.out(x)[:, 0]


class FiLMTCN(nn.Module):
    """Magnitude (B, F, T) and condition (B, C) -> mask in [0, mask_max] of shape (B, F, T).

    mask_max > 1 lets a bin be amplified: with the mixture's phase, the SNR-optimal magnitude of a bin is
    the target's projection on the mixture (the phase-sensitive mask), which exceeds the mixture's own
    magnitude wherever the other sources partly cancel the target. On fold-4 mixtures that holds for 46 %
    of the target's energy, and the phase-sensitive oracle clipped to [0, 2] beats the one clipped to
    [0, 1] by 0.8 dB. Trained in full at mask_max 2 it was 0.2-0.25 dB behind on fold 4 and 0.9-1.1 dB on
    held-out recordings (docs/benchmarks.md, "Masks above one"), so the default keeps 1."""

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
        refiner_channels: tuple[int, ...] = (),
        time_stride: int = 1,
        tail_dilations: tuple[int, ...] = (),
        shared_blocks: int = 0,
        query_pool: bool = False,
        attention_after: tuple[int, ...] = (),
        attention_heads: int = 4,
        drop_path: float = 0.0,
        mask_max: float = 1.0,
        eps: float = 1e-5,
    ):
        super().__init__()
        if not mask_max > 0:
            raise ValueError(f"mask_max must be > 0, got {mask_max}")
        self.mask_max = float(mask_max)
        self.eps = eps
        self.channels = channels
        self.cond_mlp = condition_mlp(cond_dim, cond_hidden)
        self.input_norm = nn.BatchNorm1d(n_bins, affine=True)
        self.input_proj = nn.Linear(n_bins, channels)
        self.front = SpectralFront(n_bins, channels, tuple(front_channels)) if front_channels else None
        self.input_film = nn.Linear(cond_hidden, 2 * channels)
        schedule = [d for _ in range(repeats) for d in dilations]
        if not 0 <= shared_blocks < len(schedule):
            raise ValueError(f"shared_blocks is {shared_blocks}: it must be in 0..{len(schedule) - 1} "
                             "(at least one FiLM block must stay to read the query)")
        if shared_blocks and time_stride > 1:
            raise ValueError("shared_blocks needs time_stride 1")
        # stochastic depth while training: block i of n is skipped with chance drop_path * i / (n - 1)
        depth = len(schedule) + len(tail_dilations)
        rates = [drop_path * i / max(1, depth - 1) for i in range(depth)]
        # the first `shared_blocks` blocks ignore the query: computed once per mixture, shared by its queries
        self.trunk = nn.ModuleList(FiLMBlock(channels, hidden, 0, kernel, d, rates[i])
                                   for i, d in enumerate(schedule[:shared_blocks]))
        self.blocks = nn.ModuleList(
            FiLMBlock(channels, hidden, cond_hidden, kernel, d, rates[shared_blocks + i])
            for i, d in enumerate(schedule[shared_blocks:])
        )
        if time_stride < 1:
            raise ValueError("time_stride must be >= 1")
        self.time_stride = time_stride
        if time_stride > 1:
            self.pool = nn.Linear(time_stride * channels, channels)
            self.unpool_norm = nn.LayerNorm(channels)
            self.unpool = nn.Linear(channels, time_stride * channels)
        # full-rate blocks after the strided ones
        self.tail = nn.ModuleList(FiLMBlock(channels, hidden, cond_hidden, kernel, d, rates[len(schedule) + i])
                                  for i, d in enumerate(tail_dilations))
        self.query_pool = QueryPool(channels, cond_hidden) if query_pool else None
        # self-attention over time after the given blocks (1-based over trunk + query blocks): one after
        # the trunk runs once per mixture, one among the query blocks once per query
        if isinstance(attention_after, (int, str)):  # `attention_after: 6` (or "12") in a config means one layer
            attention_after = (attention_after,)
        after = sorted(set(int(a) for a in attention_after))
        if after and not (time_stride == 1 and not tail_dilations):
            raise ValueError("attention_after needs time_stride 1 and no tail blocks")
        if after and not 1 <= after[0] <= after[-1] <= len(schedule):
            raise ValueError(f"attention_after is {list(attention_after)}: each must be in 1..{len(schedule)}")
        self.attention = nn.ModuleDict({str(a): TimeAttention(channels, attention_heads) for a in after})
        self.output_norm = nn.LayerNorm(channels)
        self.output_proj = nn.Linear(channels, n_bins)
        self.refiner = MaskRefiner(tuple(refiner_channels)) if refiner_channels else None

    @property
    def receptive_field(self) -> int:
        """Frames on each side that can influence one output frame (exact for time_stride 1, a tight
        bound otherwise: a strided frame covers time_stride input frames). With query_pool the condition also
        reads every frame of the segment, and with attention_after so does every frame's encoding: chunked
        output then depends on the engine's segment length."""
        stride = self.time_stride
        frames = stride * sum(blk.depthwise.context for blk in (*self.trunk, *self.blocks)) + stride - 1
        frames += sum(blk.depthwise.context for blk in self.tail)
        frames += len(self.front.convs) if self.front is not None else 0
        return frames + (self.refiner.context if self.refiner is not None else 0)

    def encode_mixture(self, magnitude: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Query-independent part, (B, F, T) -> (B, T, C), computed once per mixture and shared by
        all its queries. With a refiner, the normalised log-magnitude rides along as the last F channels
        (B, T, C + F): the refiner reads it after the query-dependent blocks. `keep` (B, F, T), training
        only: 0 hides a feature (set to the normalised mean), as SpecAugment does."""
        features = self.input_norm(torch.log(magnitude + self.eps))
        if keep is not None:
            features = features * keep.to(features.dtype)
        encoded = self.input_proj(features.transpose(1, 2))
        if self.front is not None:
            encoded = encoded + self.front(features)
        for i, block in enumerate(self.trunk, start=1):
            encoded = self._attend(block(encoded), i)
        if self.refiner is not None:
            encoded = torch.cat([encoded, features.transpose(1, 2).to(encoded.dtype)], dim=-1)
        return encoded

    def _attend(self, x: torch.Tensor, position: int) -> torch.Tensor:
        key = str(position)
        return self.attention[key](x) if key in self.attention else x

    def _strided_blocks(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The blocks at 1/time_stride of the frame rate (groups of frames folded into channels), back
        to the frame rate with a skip from the input: most of the compute at a fraction of the frames."""
        batch, frames, channels = x.shape
        stride = self.time_stride
        pad = (-frames) % stride
        low = nn.functional.pad(x, (0, 0, 0, pad)).reshape(batch, (frames + pad) // stride, stride * channels)
        low = self.pool(low)
        for block in self.blocks:
            low = block(low, c)
        up = self.unpool(self.unpool_norm(low)).reshape(batch, frames + pad, channels)
        return x + up[:, :frames]

    def forward(self, magnitude: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mixture(magnitude), cond)

    def decode(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Encoded mixtures (1 or B, T, C) and conditions (B*k, cond_dim), k per mixture -> masks (B*k, F, T)."""
        c = self.cond_mlp(cond)
        if self.refiner is not None:
            x, features = x[..., : self.channels], x[..., self.channels :]
            features = per_query(features, c.shape[0])
        if self.query_pool is not None:
            c = c + self.query_pool(x, c)
        x = per_query(x, c.shape[0])
        gamma, beta = self.input_film(c).unsqueeze(1).chunk(2, dim=-1)
        x = x * (1 + gamma) + beta
        if self.time_stride > 1:
            x = self._strided_blocks(x, c)
        else:
            for i, block in enumerate(self.blocks, start=len(self.trunk) + 1):
                x = self._attend(block(x, c), i)
        for block in self.tail:
            x = block(x, c)
        logits = self.output_proj(self.output_norm(x)).transpose(1, 2)
        if self.refiner is not None:
            logits = self.refiner(logits, features.transpose(1, 2))
        return self.mask_max * torch.sigmoid(logits)
