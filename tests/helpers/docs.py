"""The fenced examples of README.md and docs/*.md, for the tests that run them.

A block is skipped by every runner when the line just above its fence is
`<!-- docs-test: skip: REASON -->`.
"""
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SKIP = re.compile(r"<!-- docs-test: skip: (.+?) -->\n\Z")


class Block:
    def __init__(self, doc, line, lang, text, skip):
        self.doc = doc  # the path relative to the repository: docs/cli.md
        self.line = line  # of the opening fence
        self.lang = lang
        self.text = text
        self.skip = skip  # the reason, or None

    @property
    def id(self):
        return f"{self.doc}:{self.line}"


def blocks(*langs):
    """Every block of these languages (all blocks when none are given)."""
    out = []
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if langs and m.group(1) not in langs:
                continue
            skip = SKIP.search(text, 0, m.start())
            out.append(Block(str(path.relative_to(REPO)), text.count("\n", 0, m.start()) + 1, m.group(1),
                             m.group(2), skip.group(1) if skip else None))
    return out


def as_local(script, server_url, data_dir):
    """A documented shell snippet aimed at a test server: the default
    address and data directory replaced by the test's."""
    return script.replace("http://127.0.0.1:3000", server_url).replace("/var/lib/hutch", str(data_dir))
