"""The LightningModule: a MaskSeparator, the frozen text encoder's embeddings, the loss, validation."""
from __future__ import annotations

import dataclasses
import math
import sys

import lightning as L
import torch

from ..metrics import improvement, sdr, si_sdr
from ..models.separator import MaskSeparator
from .config import DataConfig, TrainConfig
from .losses import consistency_loss, get_loss
from .machine import cpp_compiler_found
from .mixtures import TrainingMixtures
from .optimizers import build_optimizer


class PresenceHead(torch.nn.Module):
    """Names the classes heard in a mixture from its query-independent encoding (B, T, C), pooled over
    time by mean and max: an auxiliary task that makes the shared trunk class-aware, so the query
    blocks can find the queried sound (most failures return the whole mixture or nothing). On the default
    recipe it changed the kind of failure, not the score (docs/benchmarks.md, "Auxiliary presence loss")."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.channels = channels
        self.norm = torch.nn.LayerNorm(2 * channels)
        self.linear = torch.nn.Linear(2 * channels, classes)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        x = encoded[..., : self.channels].float()  # a refiner's features ride along after the channels
        return self.linear(self.norm(torch.cat([x.mean(1), x.amax(1)], dim=-1)))


def hidden_features(batch: int, bins: int, frames: int, prob: float, device=None) -> torch.Tensor:
    """(batch, bins, frames) of 1 (seen) and 0 (hidden): in a `prob` share of the rows, one band of up to
    bins // 8 bins and one span of up to frames // 8 frames, each of uniform random width and place."""
    keep = torch.ones(batch, bins, frames, device=device)
    chosen = torch.rand(batch, device=device) < prob

    def band(size: int) -> torch.Tensor:  # (batch, size): True inside each row's hidden band
        width = (torch.rand(batch, device=device) * (size // 8 + 1)).floor()
        start = (torch.rand(batch, device=device) * (size - width + 1)).floor()
        index = torch.arange(size, device=device)
        return (index >= start[:, None]) & (index < (start + width)[:, None]) & chosen[:, None]

    keep[band(bins)[:, :, None].expand(-1, -1, frames)] = 0
    keep[band(frames)[:, None, :].expand(-1, bins, -1)] = 0
    return keep


class LassModule(L.LightningModule):
    def __init__(self, config: TrainConfig, query_table: torch.Tensor, classes: int = 0):
        super().__init__()
        self.config = config
        self.model = MaskSeparator(config.model)
        self.loss = get_loss(config.optim.loss)
        self.presence = None
        if config.optim.presence_weight > 0:
            if config.model.network != "film_tcn" or not classes:
                raise ValueError("optim.presence_weight > 0 needs the film_tcn network and labelled training data")
            self.presence = PresenceHead(self.model.network.channels, classes)
        self.validated_step = -1  # the global step of the last validation
        self.trained_epoch = 0  # the epoch of the last training step (the validation rows' epoch in metrics.csv)
        if config.optim.compile:
            if cpp_compiler_found():
                self.model.compile_network()
            else:
                print("lass: note: optim.compile is set but no C++ compiler was found (torch.compile needs g++, "
                      "clang++ on macOS, or $CXX); the network trains uncompiled, up to 1.5x slower per step",
                      file=sys.stderr, flush=True)
        # Frozen text-encoder outputs for every training phrasing: not trainable, not saved.
        self.register_buffer("query_table", query_table, persistent=False)

    def conditions(self, pos_idx: torch.Tensor, neg_idx: torch.Tensor, noise: float = 0.0) -> torch.Tensor:
        pos = self.query_table[pos_idx]
        neg = self.query_table[neg_idx.clamp_min(0)] * (neg_idx >= 0).unsqueeze(-1).to(pos.dtype)
        if noise > 0:
            pos = torch.nn.functional.normalize(pos + noise * torch.randn_like(pos), dim=-1)
            neg = torch.nn.functional.normalize(neg + noise * torch.randn_like(neg), dim=-1) * (neg_idx >= 0).unsqueeze(-1)
        return torch.cat([pos, neg], dim=-1)

    def training_step(self, batch, batch_idx):
        self.trained_epoch = self.current_epoch
        mixture, target, pos_idx, neg_idx, present, heard = batch  # target (B, k, L): k queries per mixture
        cond = self.conditions(pos_idx.flatten(), neg_idx.flatten(), self.config.optim.query_noise)
        keep = None
        if self.config.optim.feature_masking > 0:
            keep = hidden_features(mixture.shape[0], self.model.stft.config.n_bins,
                                   self.model.stft.frames(mixture.shape[-1]), self.config.optim.feature_masking,
                                   mixture.device)
        estimate, encoded = self.model.forward_with_encoding(mixture, cond, keep)
        queries = target.shape[1]
        loss = self.loss(estimate, target.flatten(0, 1), mixture.repeat_interleave(queries, dim=0),
                         present.flatten(), self.config.optim.max_snr_db)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=mixture.shape[0])
        if self.config.optim.consistency_weight > 0:
            consistency = consistency_loss(estimate.view_as(target), mixture, target)
            self.log("train_consistency", consistency, on_step=True, on_epoch=True, batch_size=mixture.shape[0])
            loss = loss + self.config.optim.consistency_weight * consistency
        if self.presence is not None:
            presence = torch.nn.functional.binary_cross_entropy_with_logits(
                self.presence(encoded), heard, reduction="none").sum(-1).mean()
            self.log("train_presence", presence, on_step=True, on_epoch=True, batch_size=mixture.shape[0])
            loss = loss + self.config.optim.presence_weight * presence
        return loss

    def validation_step(self, batch, batch_idx):
        mixture, target, cond = batch
        estimate = self.model(mixture, cond)
        sdri = improvement(sdr, estimate, target, mixture)
        sisdri = improvement(si_sdr, estimate, target, mixture)
        n = mixture.shape[0]
        self.log("val_sdri", sdri.mean(), prog_bar=True, batch_size=n, sync_dist=True)
        self.log("val_si_sdri", sisdri.mean(), prog_bar=True, batch_size=n, sync_dist=True)
        # the row's step in metrics.csv: the steps trained (0: a fine-tune's initial model), also for the check
        # after a run stops between validations, which Lightning would log a step late and in an epoch not run
        self.log("step", float(self.global_step), batch_size=n, reduce_fx="max", sync_dist=True)  # max: exact
        self.log("epoch", float(self.trained_epoch), batch_size=n, reduce_fx="max", sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.validated_step = self.global_step  # lets the run validate weights trained after the last check

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lass_model_config"] = self.model.config.to_json()  # so `lass export` needs no config
        checkpoint["lass_lr"] = self.config.optim.lr  # the rate a resumed run keeps when its config sets none
        # what shapes the saved optimizer and module state, which a resumed run must match (settle_config)
        checkpoint["lass_state_layout"] = state_layout(self.config.optim)
        checkpoint["lass_validation"] = getattr(self, "validation_id", None)  # the mixtures it was validated on
        checkpoint["lass_initial"] = getattr(self, "started_from", None)  # a fine-tune's starting model and score
        checkpoint["lass_max_steps"] = self.trainer.max_steps  # the steps its learning-rate schedule is planned over
        checkpoint["lass_optim"] = dataclasses.asdict(self.config.optim)  # what a resumed run is told it changed
        if self.model.vocabulary is not None:  # the training phrasings' embeddings, for the exported model file
            checkpoint["lass_query_vocabulary"] = self.model.vocabulary.detach().cpu().half()

    def configure_optimizers(self):
        opt = self.config.optim
        optimizer = build_optimizer(opt.optimizer, self, opt.lr, opt.weight_decay, opt.muon_lr_scale)
        total = self.trainer.max_steps if self.trainer.max_steps and self.trainer.max_steps > 0 else 10000

        def schedule(step: int) -> float:
            if step < opt.warmup_steps:
                return (step + 1) / opt.warmup_steps
            progress = min(1.0, (step - opt.warmup_steps) / max(1, total - opt.warmup_steps))
            return opt.min_lr_ratio + (1 - opt.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _ignore_ctrl_c(worker_id: int) -> None:
    """Batch workers hear a terminal's Ctrl-C too: they carry on while the run finishes its step (StopOnSignal),
    and end when it closes the loader."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class MixtureData(L.LightningDataModule):
    """Training and validation loaders. The training loader is rebuilt every epoch (the trainer runs
    with `reload_dataloaders_every_n_epochs=1`) so that each epoch draws new mixtures and its crops
    follow `data.phases`."""

    def __init__(self, dataset: TrainingMixtures, config: DataConfig, validation=None):
        super().__init__()
        self.dataset = dataset
        self.config = config
        self.validation = validation

    def train_dataloader(self):
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        seconds, batch = self.config.crop_at(epoch)
        self.dataset.epoch = epoch
        self.dataset.set_crop(seconds, self.config.steps_per_epoch * batch)
        return torch.utils.data.DataLoader(self.dataset, batch_size=batch, shuffle=False,
                                           num_workers=self.config.num_workers, drop_last=True,
                                           worker_init_fn=_ignore_ctrl_c if self.config.num_workers else None)

    def val_dataloader(self):
        if self.validation is None:
            return []
        # mixtures of one length (a TensorDataset, e.g. ESC-50's 5 s clips) go 25 at a time; a list holds
        # mixtures of different lengths, which are not stacked but validated one by one
        batch = 25 if isinstance(self.validation, torch.utils.data.TensorDataset) else 1
        return torch.utils.data.DataLoader(self.validation, batch_size=batch)


def state_layout(optim) -> dict:
    """The optim settings that change what a checkpoint holds: its optimizer's state, the presence head's
    weights, the weight average's copy."""
    return {"optim.optimizer": optim.optimizer, "optim.presence_weight above 0": optim.presence_weight > 0,
            "optim.ema_decay above 0": optim.ema_decay > 0}
