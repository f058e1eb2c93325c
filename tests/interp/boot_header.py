"""Render src/interp/pyzygote-boot.py as the C header pyzygote.c includes.

    python3 tests/interp/boot_header.py       # rewrite the header
    python3 tests/interp/boot_header.py check # exit 1 if it is stale

The output is what clang-format (the repo's .clang-format) leaves as is.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "src", "interp", "pyzygote-boot.py")
HEADER = os.path.join(ROOT, "src", "interp", "pyzygote-boot.h")

PROLOGUE = """\
/* The Python half of pyzygote.c, run by the embedded interpreter.
   Generated from pyzygote-boot.py by tests/interp/boot_header.py; edit
   the Python file, then run that script.  */
#pragma once

static const char pyzygote_boot_py[]
"""


def render(source):
    lines = []
    for i, line in enumerate(source.splitlines()):
        literal = '"%s\\n"' % line.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(("    = " if i == 0 else "      ") + literal)
    return PROLOGUE + "\n".join(lines) + ";\n"


def main():
    with open(SOURCE) as f:
        text = render(f.read())
    if sys.argv[1:] == ["check"]:
        with open(HEADER) as f:
            sys.exit(0 if f.read() == text else 1)
    with open(HEADER, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
