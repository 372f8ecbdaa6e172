"""The run's checkpoint callback: Lightning's ModelCheckpoint, made to resume a run folder that was moved, copied
or renamed (from a GPU machine to a laptop, say), and one whose best checkpoint was deleted."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from ..audio import publish, temporary_beside


class RunCheckpoint(ModelCheckpoint):
    """Lightning's own, resuming a moved folder, forgets the best score and the files it wrote, and writes
    best-v1.ckpt and last-v1.ckpt beside them: the export then took the resumed part's best, and last.ckpt stayed
    old. Here its files are taken to be where they now are; a best checkpoint left in the old folder (--resume
    OLD/... --output NEW, OLD where the run wrote it or where it was moved to) is copied over; one that is nowhere,
    or is not this run's, is forgotten, with a note. `resumed_from`: the checkpoint the run resumes from."""

    def __init__(self, *args, resumed_from: str | os.PathLike | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resumed_from = resumed_from

    @property
    def state_key(self) -> str:
        # the key Lightning stores the state under starts with the class name: ModelCheckpoint's, so that
        # checkpoints written before this class (and by plain Lightning) resume with their state
        key = super().state_key
        return "ModelCheckpoint" + key[len(type(self).__qualname__):]

    def load_state_dict(self, state: dict) -> None:
        if self.dirpath is None:
            return super().load_state_dict(state)
        here = lambda path: str(Path(self.dirpath) / Path(path).name) if path else path  # noqa: E731
        best = state.get("best_model_path") or ""
        if self.monitor and best and not _same_run(here(best), state):  # (without a monitor: the latest file)
            beside = str(Path(self.resumed_from).parent / Path(best).name) if self.resumed_from else ""
            found = next((path for path in (best, beside) if path and _same_run(path, state)), None)
            if found is not None and os.path.realpath(found) != os.path.realpath(here(best)):
                Path(self.dirpath).mkdir(parents=True, exist_ok=True)
                shutil.copy2(found, here(best))
            else:
                looked = ", ".join(dict.fromkeys(str(Path(p).parent) for p in (here(best), best, beside) if p))
                print(f"lass train: the run's best checkpoint ({Path(best).name}, validation SDRi "
                      f"{float(state['best_model_score']):.2f} dB) is in none of {looked}: the exported model is "
                      f"the best of the steps trained from here on", file=sys.stderr, flush=True)
                state = {**state, "best_model_path": "", "best_model_score": None, "best_k_models": {},
                         "kth_best_model_path": ""}
        super().load_state_dict({
            **state, "dirpath": self.dirpath, "best_model_path": here(state.get("best_model_path")),
            "kth_best_model_path": here(state.get("kth_best_model_path")),
            "last_model_path": here(state.get("last_model_path")),
            "best_k_models": {here(path): score for path, score in (state.get("best_k_models") or {}).items()}})

    def record_best(self, path: str | os.PathLike, score: float) -> None:
        """A score the run validated after Lightning's loop (the steps since its last check) that beats the best
        recorded: taken as the best, so that best.ckpt, written next, and a resume know it. Before, a resume kept
        the older score and let a worse model overwrite best.ckpt. The run keeps one best file (save_top_k=1)."""
        value = torch.tensor(float(score))
        self.best_model_path = self.kth_best_model_path = str(path)
        self.best_model_score = self.kth_value = self.current_score = value
        self.best_k_models = {str(path): value}

    def rewrite_record(self, checkpoint: str | os.PathLike) -> None:
        """Give a checkpoint written before that validation (last.ckpt, which a resume reads) this record; if that
        fails, the run still exports its model, and says what a resume would do."""
        part = None
        try:
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
            saved.setdefault("callbacks", {})[self.state_key] = self.state_dict()
            part = temporary_beside(Path(checkpoint))
            torch.save(saved, part)
            publish(part, Path(checkpoint))
        except Exception as err:  # a full disk, say: best.ckpt and the exported model are already right
            if part is not None:
                part.unlink(missing_ok=True)
            print(f"lass train: warning: could not record the best score in {checkpoint} ({err}); a run resumed "
                  f"from it may replace best.ckpt with a model that scored lower", file=sys.stderr, flush=True)


def _same_run(path: str, state: dict) -> bool:
    """Whether the checkpoint at `path` is the best one this state recorded: it exists and carries the same best
    score (another run's best.ckpt in that folder does not)."""
    if not path or not Path(path).is_file():
        return False
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged file is not this run's best either
        return False
    recorded, score = state.get("best_model_score"), recorded_best(saved, state.get("monitor"))
    return score is not None and recorded is not None and score == float(recorded)


def recorded_best(checkpoint: dict, monitor: str | None = "val_sdri") -> float | None:
    """The best score that a checkpoint's best-model callback, monitoring `monitor`, had recorded when it was saved."""
    for key, callback in (checkpoint.get("callbacks") or {}).items():
        if key.startswith("ModelCheckpoint") and isinstance(callback, dict) and callback.get("monitor") == monitor:
            score = callback.get("best_model_score")
            return None if score is None else float(score)
    return None
