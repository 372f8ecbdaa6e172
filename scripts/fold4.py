"""What the scripts that measure on the fold-4 protocol's mixtures share: their options, the model, the mixtures."""
from __future__ import annotations

import argparse

from lass.api import Separator
from lass.datasets import ClipBank, read_esc50
from lass.evaluation.protocols import Case, label_mixtures


def protocol_mixtures(doc: str, limit: int) -> tuple[Separator, list[Case]]:
    """Parses --data, --limit and -m; returns the model and the protocol's first `limit` one-interferer mixtures
    (rows of the full protocol, as `lass evaluate --limit` takes them)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", required=True, help="the ESC-50 folder (meta.csv)")
    parser.add_argument("--limit", type=int, default=limit, help=f"the protocol's first N mixtures (default {limit})")
    parser.add_argument("-m", "--model", default=None, help="model file (default: the bundled one)")
    opts = parser.parse_args()
    separator = Separator(opts.model)
    bank = ClipBank(read_esc50(opts.data, [4]), separator.samplerate)
    return separator, label_mixtures(bank, limit=opts.limit, rows_of_full=True)
