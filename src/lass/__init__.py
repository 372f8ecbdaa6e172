"""lass: language-queried audio source separation."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["AudioError", "OutputOptions", "QueryError", "Separator", "__version__"]

_LAZY = {"Separator": "api", "OutputOptions": "api", "AudioError": "audio", "QueryError": "query"}


def __getattr__(name):  # keep `import lass` light: torch and transformers load on first use
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'lass' has no attribute {name!r}")


def __dir__():  # tab completion in notebooks offers the lazy names too
    return sorted({*globals(), *__all__})
