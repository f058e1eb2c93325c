"""The client examples of docs/cli.md (```sh blocks: they need a server,
which tests/e2e/test_docs.py does not start) run here against the test
server, each block with `set -e` after the block that sets HUTCH_API_URL
and HUTCH_API_KEY (aimed at the test server and its data directory):
`hutch` on PATH, $id a sandbox, the files they name in place."""
import os
import subprocess

import pytest

import docs
from conftest import HUTCH, clean_env


def client_blocks():
    """The ```sh blocks below docs/cli.md's "## Client commands"."""
    text = docs.REPO.joinpath("docs", "cli.md").read_text()
    section = text.count("\n", 0, text.index("## Client commands")) + 1
    return [b for b in docs.blocks("sh") if b.doc == "docs/cli.md" and b.line > section and b.skip is None]


BLOCKS = client_blocks()
SETUP = [b for b in BLOCKS if "export HUTCH_API_KEY" in b.text]
EXAMPLES = [b for b in BLOCKS if b not in SETUP]


def test_docs_have_client_examples():
    assert len(SETUP) == 1 and len(EXAMPLES) >= 4


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.text.splitlines()[0][:40] for b in EXAMPLES])
def test_example(hutchd, cli, sandbox, tmp_path, block):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "hutch").symlink_to(HUTCH)
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.csv").write_text("a,b\n1,2\n")
    (work / "analysis.py").write_text("print(sum([1, 2]))\n")
    cli.ok("files", "put", sandbox, "-", "/home/user/out.png", input="png")
    env = clean_env(PATH=f"{bindir}:{os.environ['PATH']}", id=sandbox)
    script = docs.as_local(SETUP[0].text, hutchd.url, hutchd.data_dir) + block.text
    r = subprocess.run(["sh", "-e", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, (block.text, r.stdout, r.stderr)
