"""Optimizers for `optim.optimizer`: AdamW, or Muon on the hidden weight matrices with AdamW on the rest."""
from __future__ import annotations

import torch

OPTIMIZERS = ("adamw", "muon")

# Layers that meet the outside world (spectrogram in, mask out) stay on AdamW, as Muon's authors advise
# for a network's first and last layer; every other 2-D weight matrix is orthogonalised by Muon.
BOUNDARY_LAYERS = ("input_proj", "output_proj", "presence")  # presence: training's auxiliary class head


class CombinedOptimizer(torch.optim.Optimizer):
    """Steps several optimizers as one, so Lightning's automatic optimisation and one LR schedule drive them.

    `param_groups` are the children's own group dicts, so a scheduler's learning-rate changes reach them.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        params = [p for opt in optimizers.values() for g in opt.param_groups for p in g["params"]]
        super().__init__(params, {})
        self.optimizers = optimizers
        self.param_groups = [g for opt in optimizers.values() for g in opt.param_groups]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers.values():
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state_dict[name])
        self.param_groups = [g for opt in self.optimizers.values() for g in opt.param_groups]


def build_optimizer(name: str, model: torch.nn.Module, lr: float, weight_decay: float,
                    muon_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name != "muon":
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    matrices, others = [], []
    for pname, p in model.named_parameters():
        if not p.requires_grad:
            continue
        hidden_matrix = p.ndim == 2 and not any(b in pname.split(".") for b in BOUNDARY_LAYERS)
        (matrices if hidden_matrix else others).append(p)
    if not matrices:
        return torch.optim.AdamW(others, lr=lr, weight_decay=weight_decay)
    # "match_rms_adamw" gives Muon's update an RMS of 0.2 lr whatever the matrix shape; muon_lr_scale sets
    # it against AdamW's (whose early updates are about lr per weight). One schedule drives both.
    muon = torch.optim.Muon(matrices, lr=lr * muon_lr_scale, weight_decay=weight_decay / muon_lr_scale,
                            adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(others, lr=lr, weight_decay=weight_decay)
    return CombinedOptimizer({"muon": muon, "adamw": adamw})
