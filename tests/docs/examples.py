"""The code examples of the docs site: every fenced block of ``docs/**/*.md``, and what the docs test does with it.

A block is told apart by its language and by a marker comment on the line before its fence,
``<!-- docs-test: KIND key=value ... -->``:

- ``python`` without a marker runs (``exec``) in a fresh namespace, in a temporary working folder;
- ``plugin file=NAME.py``: the block is a plugin file, written as NAME.py and loaded through the plugin manager,
  which must register what it declares;
- ``conformance plugin=NAME.py``: a conformance-suite class; the test runs its declaration check with
  ``load_plugins`` finding the plugin example NAME.py;
- ``skip REASON``: not run (a shell command that needs a long search, say), reported as skipped with the reason;
- ``toml`` and ``yaml`` blocks must parse; ``text`` blocks are output, not examples.

A shell block (``bash``) has no default: it must carry a marker, so that nothing is left out silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<kind>[a-z-]+)\s*(?P<rest>.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<language>[a-z]*)\s*$")
KINDS = {"run", "plugin", "conformance", "skip", "toml", "yaml"}
DEFAULT_KIND = {"python": "run", "toml": "toml", "yaml": "yaml"}
DISPLAY_LANGUAGES = {"text", ""}


@dataclass(frozen=True)
class Example:
    """One fenced block: where it is, its language and code, and what the docs test does with it."""

    page: str  # relative to docs/
    line: int  # the fence's line, from 1
    language: str
    code: str
    kind: str | None  # None: a shell block without a marker (an error) or a display block
    reason: str = ""  # for ``skip``
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def _marker(line: str) -> tuple[str, str, dict[str, str]] | None:
    found = MARKER.match(line.strip())
    if not found:
        return None
    rest = found.group("rest")
    options = dict(part.split("=", 1) for part in rest.split() if "=" in part)
    return found.group("kind"), rest, options


def page_examples(page: Path, docs: Path) -> list[Example]:
    """The fenced blocks of one page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        language = fence.group("language")
        marker = _marker(lines[index - 1]) if index else None
        kind, rest, options = marker if marker else (DEFAULT_KIND.get(language), "", {})
        found.append(Example(page.relative_to(docs).as_posix(), index + 1, language, "\n".join(lines[index + 1:end]) + "\n",
                             kind, rest if kind == "skip" else "", options))
        index = end + 1
    return found


def all_examples(docs: Path) -> list[Example]:
    """Every fenced block of every page under ``docs``."""
    return [example for page in sorted(docs.rglob("*.md")) for example in page_examples(page, docs)]


def runnable(examples: list[Example]) -> list[Example]:
    """The blocks the test runs or skips explicitly: every one but output shown as text."""
    return [example for example in examples if example.kind is not None]


def unmarked(examples: list[Example]) -> list[str]:
    """Blocks that are neither run nor explicitly skipped, nor output; and markers of an unknown kind or a skip
    without its reason."""
    wrong = [e.name for e in examples if e.kind is None and e.language not in DISPLAY_LANGUAGES]
    wrong += [f"{e.name} (unknown kind {e.kind!r})" for e in examples if e.kind is not None and e.kind not in KINDS]
    wrong += [f"{e.name} (skip without a reason)" for e in examples if e.kind == "skip" and not e.reason.strip()]
    return wrong


def plugin_files(examples: list[Example]) -> dict[str, str]:
    """The plugin examples, by the file name they are written as."""
    return {example.options["file"]: example.code for example in examples if example.kind == "plugin"}
