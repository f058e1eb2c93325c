"""Render the Python that hutchd embeds as the C headers that include it:
src/interp/pyzygote-boot.py (pyzygote.c) and result-formatters.py
(result-formatters.c).

    python3 tests/interp/boot_header.py       # rewrite the headers
    python3 tests/interp/boot_header.py check # exit 1 if one is stale

The output is what clang-format (the repo's .clang-format) leaves as is.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (Python file, C header, what the header is, the array's name)
FILES = (
    ("pyzygote-boot", "The Python half of pyzygote.c, run by the embedded interpreter.",
     "pyzygote_boot_py"),
    ("result-formatters", "The result formatters every Python kernel installs (result-formatters.c).",
     "result_formatters_py"),
)

PROLOGUE = """\
/* %s
   Generated from %s.py by tests/interp/boot_header.py; edit
   the Python file, then run that script.  */
#pragma once

static const char %s[]
"""


def render(stem, what, name, source):
    lines = []
    for i, line in enumerate(source.splitlines()):
        literal = '"%s\\n"' % line.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(("    = " if i == 0 else "      ") + literal)
    return PROLOGUE % (what, stem, name) + "\n".join(lines) + ";\n"


def main():
    stale = False
    for stem, what, name in FILES:
        base = os.path.join(ROOT, "src", "interp", stem)
        with open(base + ".py") as f:
            text = render(stem, what, name, f.read())
        if sys.argv[1:] == ["check"]:
            with open(base + ".h") as f:
                stale = stale or f.read() != text
            continue
        with open(base + ".h", "w") as f:
            f.write(text)
    sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
