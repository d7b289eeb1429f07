"""How reports show user text and norms in markdown."""

from __future__ import annotations

import re

NORM_NAMES = {"inf": "L-inf", "2": "L2", "1": "L1"}

MARKDOWN_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;"})


def md(text: object) -> str:
    """User text (agent names, attack options, a folder's name) as markdown shows it literally: a
    `|` cannot end a table cell, HTML is shown instead of passed through, and a line break stays
    inside its cell."""
    return re.sub(r"\r\n|\r|\n", "<br>", str(text).translate(MARKDOWN_ESCAPES))


def fenced(text: str, info: str = "") -> list[str]:
    """`text` as a fenced code block whose fence no line of it can close."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return [fence + info, text, fence]
