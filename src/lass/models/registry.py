"""Model files and the registry of installed models.

A model file is one safetensors file whose metadata holds the ModelConfig (JSON), so the file
alone describes the model. Installed models live in the package (`lass/pretrained/`) and in a user
folder (`$LASS_MODELS_DIR`, default `~/.cache/lass/models`).
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..audio import first_line
from .config import ModelConfig
from .separator import MaskSeparator

DEFAULT_MODEL = "default"
VOCABULARY_KEY = "query_vocabulary"  # the tensor of a model file that holds MaskSeparator.vocabulary
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "pretrained"


class ModelNotFound(LookupError):
    pass


def user_model_dir() -> Path:
    return Path(os.environ.get("LASS_MODELS_DIR", Path.home() / ".cache" / "lass" / "models"))


def missing_user_folder() -> str:
    """Why a folder the user named for their models finds none, or ''. The default folder is made when a model
    is first installed, so its absence is normal."""
    folder = user_model_dir()
    if "LASS_MODELS_DIR" in os.environ and not folder.is_dir():
        return f"LASS_MODELS_DIR names {folder}, which is not a folder"
    return ""


def save_model(model: MaskSeparator, path: str | os.PathLike) -> Path:
    from safetensors.torch import save_file

    from ..audio import OutputError, publish, temporary_beside

    path = Path(path)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.vocabulary is not None:  # half precision: cosines to 3 decimals, half the 3 MB of a default model's
        state[VOCABULARY_KEY] = model.vocabulary.detach().to("cpu", torch.float16).contiguous()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_beside(path)
        save_file(state, str(tmp), metadata={"lass_config": model.config.to_json(), "format": "lass-1"})
        return publish(tmp, path)
    except BaseException as err:  # OSError, or safetensors' own error for the same causes (no space, no permission)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if not isinstance(err, Exception):  # Ctrl-C: no temporary left behind, and the interrupt goes on
            raise
        raise OutputError(f"cannot write the model file {path}: {first_line(err)}") from None


def read_config(path: str | os.PathLike) -> ModelConfig:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for a damaged or foreign file
        if _is_lass_checkpoint(path):
            raise ModelNotFound(f"{path}: a training checkpoint, not a model file: export it first with "
                                f"lass export {path} -o MODEL.safetensors") from None
        if _is_torch_pickle(path):
            raise ModelNotFound(f"{path}: a PyTorch checkpoint that lass did not write; lass loads its own "
                                f".safetensors model files (`lass models`), and has no loader for other systems' "
                                f"checkpoints (AudioSep, CLAPSep, LASS-Net)") from None
        raise ModelNotFound(f"{path}: not a readable safetensors model file ({first_line(err)})") from None
    if "lass_config" not in meta:
        raise ModelNotFound(f"{path}: not a lass model file (no lass_config metadata)")
    try:
        return ModelConfig.from_json(meta["lass_config"])
    except (ValueError, TypeError) as err:  # not JSON, or JSON that is not a mapping of settings
        raise ModelNotFound(f"{path}: a lass model file whose config is damaged ({first_line(err)})") from None


def is_safetensors(path: str | os.PathLike) -> bool:
    """Shaped like a safetensors file (an 8-byte header length, then its JSON header), readable or damaged."""
    try:
        with open(path, "rb") as f:
            return f.read(9)[8:9] == b"{"
    except OSError:
        return False


def _is_torch_pickle(path: str | os.PathLike) -> bool:
    """torch.save's zip, or the older bare pickle (which starts with pickle's protocol byte)."""
    if is_safetensors(path):
        return False
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x80" or zipfile.is_zipfile(f)
    except OSError:
        return False


def _is_lass_checkpoint(path: str | os.PathLike) -> bool:
    """A `lass train` checkpoint: its pickle names lass's own key. Looked for in the bytes, not unpickled."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = next((name for name in archive.namelist() if name.endswith("data.pkl")), None)
            return pickled is not None and b"lass_model_config" in archive.read(pickled)
    except (OSError, zipfile.BadZipFile):
        return False


def weights_mismatch(err: Exception, limit: int = 220) -> str:
    """load_state_dict's error in one line: its first complaint (a size mismatch, the missing keys), not its
    header, cut at `limit` characters (a list of missing keys runs to thousands)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else first_line(err)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_model_file(path: str | os.PathLike) -> MaskSeparator:
    from safetensors.torch import load_file

    config = read_config(path)
    try:
        model = MaskSeparator(config)
        state = load_file(str(path))
        vocabulary = state.pop(VOCABULARY_KEY, None)
        model.load_state_dict(state)
        if vocabulary is not None:
            if vocabulary.ndim != 2 or vocabulary.shape[1] != config.query_dim:
                raise ValueError(f"its {VOCABULARY_KEY} is {tuple(vocabulary.shape)}, not (N, {config.query_dim})")
            model.vocabulary = vocabulary.float()
    except Exception as err:
        raise ModelNotFound(f"{path}: the weights do not match the model it describes "
                            f"({weights_mismatch(err)})") from None
    return model.eval()


def installed_models() -> dict[str, Path]:
    """name -> file; user models shadow packaged ones of the same name, but only readable ones do: a damaged
    `default.safetensors` in the user folder must not take the bundled model's place (`damaged_models`)."""
    damaged = damaged_models()
    found: dict[str, Path] = {}
    for folder in (PACKAGE_DIR, user_model_dir()):
        if folder.is_dir():
            for file in sorted(folder.glob("*.safetensors")):
                if folder == PACKAGE_DIR or file.stem not in damaged:
                    found[file.stem] = file
    return found


def damaged_models() -> dict[str, str]:
    """name -> why, for the files in the user folder that are not readable lass models (each read once)."""
    folder = user_model_dir()
    damaged = {}
    if folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")):
            try:
                if not file.is_file():
                    raise ModelNotFound(f"{file}: not a file")
                read_config(file)
            except ModelNotFound as err:
                damaged[file.stem] = str(err)
    return damaged


def resolve(name_or_path: str | os.PathLike | None) -> Path:
    name_or_path = DEFAULT_MODEL if name_or_path is None else os.fsdecode(name_or_path)
    if not name_or_path.strip():  # `-m "$MODEL"` with MODEL unset: say so rather than load the default
        raise ModelNotFound("the model name is empty: give an installed model (`lass models`) or a .safetensors "
                            "file, or leave it out for the default")
    if name_or_path.endswith(".safetensors") or os.sep in name_or_path or (
            Path(name_or_path).is_file() and name_or_path not in installed_models()):  # model.ckpt: a file here
        path = Path(name_or_path)
        if path.is_dir() and (path / "model.safetensors").is_file():  # a `lass train` run folder
            raise ModelNotFound(f"{path} is a training run's folder: its model is {path / 'model.safetensors'}")
        if path.is_dir():
            raise ModelNotFound(f"{path} is a folder, not a model file (.safetensors)")
        if not path.is_file():
            raise ModelNotFound(f"model file not found: {path}")
        return path
    models = installed_models()
    if name_or_path not in models and name_or_path in (damaged := damaged_models()):
        raise ModelNotFound(damaged[name_or_path])
    if name_or_path not in models:
        known = ", ".join(sorted(models)) or "none installed"
        missing = missing_user_folder()
        raise ModelNotFound(f"unknown model '{name_or_path}' (installed: {known}; see `lass models`"
                            f"{'; ' + missing if missing else ''})")
    return models[name_or_path]


def load(name_or_path: str | os.PathLike | None = None) -> MaskSeparator:
    return load_model_file(resolve(name_or_path))


@dataclass
class ModelSummary:
    name: str  # what `-m` takes: the file's name without .safetensors
    stored_name: str  # what the file calls itself (`lass export --name`), shown in evaluation reports
    path: str
    sample_rate: int
    parameters: int
    size_mb: float
    licence: str
    source: str
    description: str


def describe(name: str, path: Path) -> ModelSummary:
    from safetensors import safe_open

    config = read_config(path)
    count = 0
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            if key != VOCABULARY_KEY and not key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                count += math.prod(f.get_slice(key).get_shape())
    return ModelSummary(name, config.name, str(path), config.sample_rate, count, path.stat().st_size / 1e6,
                        config.licence, config.source, config.description)
