"""Every console example in README.md and docs/ is run and its output checked,
and every other example is run by some suite (or marked to be skipped).

An example is a ```console block: lines starting with "$ " are commands
(run with sh from the repository root, `build/hutch` standing for the binary
under test), the lines after each are its expected stdout and stderr, merged
in the order the example shows them.
"""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

import docs  # noqa: E402

# Which test runs which other kind of block (the first rule that matches).
RUNNERS = [
    ("tests/compat/docs.test.mjs", lambda b: b.lang == "js"),
    ("tests/compat/docs.test.mjs (the SDK setup)", lambda b: b.lang == "sh" and "export E2B_" in b.text),
    ("tests/sdk/test_readme.py", lambda b: b.lang == "python"),
    ("tests/sdk/test_readme.py (the install)",
     lambda b: b.lang == "sh" and b.doc == "README.md" and "pip install" in b.text),
    ("tests/cli/test_docs.py", lambda b: b.lang == "sh" and b.doc == "docs/cli.md"),
    ("tests/api/test_config_file.py", lambda b: b.lang == "json" and b.doc == "docs/configuration.md"),
]


def examples():
    for block in docs.blocks("console"):
        if block.skip:
            continue
        current = None
        for line in block.text.splitlines():
            if line.startswith("$ "):
                if current:
                    yield block.doc, current[0], "\n".join(current[1])
                current = (line[2:], [])
            elif current is not None:
                current[1].append(line)
        if current:
            yield block.doc, current[0], "\n".join(current[1])


EXAMPLES = list(examples())


def test_docs_have_examples():
    assert len(EXAMPLES) >= 8


def test_every_example_is_run():
    """A block with a language (an unlabelled one is a synopsis or the shape
    of an answer) is a console example, has a runner, or says why not."""
    orphans = [f"{b.id} ```{b.lang}" for b in docs.blocks() if b.lang and b.lang != "console" and not b.skip
               and not any(claims(b) for _, claims in RUNNERS)]
    assert not orphans, "examples that no test runs (mark them `<!-- docs-test: skip: WHY -->`): " + \
        ", ".join(orphans)


@pytest.mark.parametrize("doc,command,expected", EXAMPLES,
                         ids=[f"{pathlib.Path(d).name}:{c[:40]}" for d, c, _ in EXAMPLES])
def test_example(doc, command, expected, hutch_bin, data_dir):
    command = command.replace("build/hutch", str(hutch_bin))
    env = dict(os.environ, HUTCH_DATA_DIR=str(data_dir))
    out = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120, text=True)
    assert out.stdout.rstrip("\n") == expected, f"{doc}: {command}"
