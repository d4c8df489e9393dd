"""Generated blocks in documentation: the text between two marker comments, rewritten by the
script or benchmark that computes it (so no figure in the docs is typed by hand)."""

from __future__ import annotations

import re
from pathlib import Path


def replace_block(path: Path, start: str, end: str, text: str) -> None:
    """Replace what lies between the markers ``start`` and ``end`` in ``path`` with ``text``
    (the markers stay, each on its own line); exits naming the file if a marker is missing."""
    doc = path.read_text()
    if start not in doc or end not in doc:
        raise SystemExit(f"{path}: markers {start} / {end} not found")
    path.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end),
                           lambda _: f"{start}\n{text}\n{end}", doc, flags=re.S))
