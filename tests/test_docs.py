"""The documentation a reader clicks through: every relative link resolves, the README stays short.

Pure file reading, no imports of the package: these run in milliseconds.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 200

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
"""`[text](target)` and `![alt](target)`, with an optional title; group 1 is the target."""
HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
"""`<img src="target" ...>`, for figures given a width."""
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
EXTERNAL = ("http://", "https://", "mailto:", "#")


def doc_files() -> list[Path]:
    """README.md, docs/**/*.md, each paper's experiments/*/README.md and each victim's NOTES.md."""
    found = [README, *(ROOT / "docs").rglob("*.md")]
    found += (ROOT / "experiments").glob("*/README.md")
    found += (ROOT / "agents" / "zoo").glob("*/NOTES.md")
    return sorted(p for p in found if p.is_file())


def relative_links(text: str) -> list[str]:
    """Targets of the links and images outside code, that point into the repository."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = [m.group(1) for pattern in (LINK, HTML_IMAGE) for m in pattern.finditer(prose)]
    return [t for t in targets if not t.lower().startswith(EXTERNAL)]


def test_link_pattern_reads_links_and_images_but_not_code() -> None:
    text = (
        'See [the CLI](docs/cli.md#eval) and ![fig](a/b.png "title"), [web](https://x.org), '
        "[here](#top), `[no](inline.md)`.\n```python\nx = a[0](b)\n[no](fenced.md)\n```\n"
        '<img src="c.png" width="420">\n'
    )
    assert relative_links(text) == ["docs/cli.md#eval", "a/b.png", "c.png"]


def test_the_documentation_is_there() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in doc_files()}
    assert {"README.md", "docs/README.md", "docs/cli.md"} <= names


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in doc_files():
        for target in relative_links(doc.read_text(encoding="utf-8")):
            path = target.split("#", 1)[0]
            if path and not (doc.parent / path).exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_bundled_victim_has_notes() -> None:
    victims = [meta.parent for meta in (ROOT / "agents" / "zoo").glob("*/meta.json")]
    missing = [v.name for v in victims if not (v / "NOTES.md").is_file()]
    assert victims and not missing, f"victims without NOTES.md: {missing}"


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


def test_readme_starts_with_demo_and_test() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "README.md starts with its title"
    rest = [line for line in lines[1:] if line.strip()]
    assert rest[0].startswith("```"), "the first thing after the title is the make demo / make test block"
    block = rest[1 : rest.index("```", 1)]
    assert [line.split()[:2] for line in block] == [["make", "demo"], ["make", "test"]]
