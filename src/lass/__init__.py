"""lass: language-queried audio source separation."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Separator", "__version__"]


def __getattr__(name):  # keep `import lass` light: torch and transformers load on first use
    if name == "Separator":
        from .api import Separator

        return Separator
    raise AttributeError(name)
