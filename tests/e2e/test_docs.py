"""Every console example in README.md and docs/ is run and its output checked.

An example is a ```console block: lines starting with "$ " are commands
(run with sh from the repository root, `build/hutch` standing for the binary
under test), the lines after each are its expected stdout and stderr, merged
in the order the example shows them.
"""
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples():
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```console\n(.*?)```", text, re.S):
            current = None
            for line in block.splitlines():
                if line.startswith("$ "):
                    if current:
                        yield doc.name, current[0], "\n".join(current[1])
                    current = (line[2:], [])
                elif current is not None:
                    current[1].append(line)
            if current:
                yield doc.name, current[0], "\n".join(current[1])


EXAMPLES = list(examples())


def test_docs_have_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("doc,command,expected", EXAMPLES,
                         ids=[f"{d}:{c[:40]}" for d, c, _ in EXAMPLES])
def test_example(doc, command, expected, hutch_bin, data_dir):
    command = command.replace("build/hutch", str(hutch_bin))
    env = dict(os.environ, HUTCH_DATA_DIR=str(data_dir))
    out = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120, text=True)
    assert out.stdout.rstrip("\n") == expected, f"{doc}: {command}"
