"""The client examples of docs/cli.md (```sh blocks: they need a server,
which tests/e2e/test_docs.py does not start) run here, each block with
`set -e` against the test server: `hutch` on PATH, $id a sandbox, the
files they name in place."""
import os
import re
import subprocess

import pytest

from conftest import HUTCH
from hutchd import REPO


def client_blocks():
    text = (REPO / "docs" / "cli.md").read_text()
    section = text[text.index("## Client commands"):]
    # The block setting HUTCH_API_URL / HUTCH_API_KEY is what the fixture does.
    return [b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "export " not in b]


BLOCKS = client_blocks()


def test_docs_have_client_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_example(cli, sandbox, tmp_path, block):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hutch").symlink_to(HUTCH)
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.csv").write_text("a,b\n1,2\n")
    (work / "analysis.py").write_text("print(sum([1, 2]))\n")
    cli.ok("files", "put", sandbox, "-", "/home/user/out.png", input="png")
    env = dict(cli.env, PATH=f"{bindir}:{os.environ['PATH']}", id=sandbox)
    r = subprocess.run(["sh", "-e", "-c", block], cwd=work, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, (block, r.stdout, r.stderr)
