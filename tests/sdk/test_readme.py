"""Every ```python block of python/README.md, README.md and docs/*.md runs,
as written, against the test hutchd, with HUTCH_API_URL and HUTCH_API_KEY
set.  In README.md and docs/, `print(...)  # VALUE` says what a line prints,
and the output must be exactly those values."""
import os
import re
import shutil
import subprocess
import sys

import pytest

import docs
from conftest import HUTCHD
from hutchd import REPO, Hutchd

README = REPO / "python" / "README.md"


def blocks(path=README):
    text = path.read_text()
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        out.append(pytest.param(m.group(1), id=f"{path.name}:line{line}"))
    return out


def doc_blocks():
    return [pytest.param(b.text, id=b.id) for b in docs.blocks("python") if not b.skip]


def test_readme_has_examples():
    assert len(blocks()) >= 8
    assert doc_blocks(), "README.md has a Python example"


def run_example(server, code, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUTCH_", "E2B_"))}
    env.update({"HUTCH_API_URL": server.url, "HUTCH_API_KEY": server.api_key,
                "PYTHONPATH": str(REPO / "python")})
    r = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


@pytest.mark.parametrize("code", doc_blocks())
def test_doc_example(server, code, tmp_path):
    expected = re.findall(r"^\s*print\(.*\)\s*#\s*(.*)$", code, re.M)
    assert run_example(server, code, tmp_path).splitlines() == [e.strip() for e in expected]


@pytest.mark.parametrize("code", blocks())
def test_example(server, code, tmp_path):
    out = run_example(server, code, tmp_path)
    # The examples' comments say what they print; spot-check the quick start's.
    if "x += 1; x" in code and "asyncio" not in code:
        assert out.strip().endswith("2"), out


def test_readme_install_and_quick_start(tmp_path):
    """README.md's "Use it from Python": its ```sh block (a venv, pip
    install ./python, the key from the data directory) run as written in a
    copy of python/, against a hutchd on its first start, then its ```python
    example with the venv's python; only the server's address (HUTCH_API_URL,
    the README's server being on the default one) and the data directory
    differ."""
    (sh,) = [b for b in docs.blocks("sh") if b.doc == "README.md" and "pip install" in b.text]
    (example,) = [b for b in docs.blocks("python") if b.doc == "README.md"]
    work = tmp_path / "clone"
    shutil.copytree(REPO / "python", work / "python",
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    (work / "example.py").write_text(example.text)
    server = Hutchd(HUTCHD, "hutchd-sdk", own_key=True).start()
    try:
        with open(server.log_path) as f:
            assert f"generated API key (saved in {server.data_dir}/api-key):\n{server.api_key}\n" in f.read()
        script = docs.as_local(sh.text, server.url, server.data_dir)
        script += '.venv/bin/python -c "import hutch; print(hutch.__file__)"\n.venv/bin/python example.py\n'
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HUTCH_", "E2B_", "PYTHON", "PIP_"))}
        # The README's machine is a fresh Debian 12: its python3 is Debian's.
        env.update(HUTCH_API_URL=server.url, PATH=f"/usr/bin:{env.get('PATH', '')}")
        r = subprocess.run(["sh", "-e", "-c", script], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stdout.splitlines()
    expected = re.findall(r"^\s*print\(.*\)\s*#\s*(.*)$", example.text, re.M)
    assert lines[-len(expected) - 1].startswith(str(work / ".venv")), lines
    assert lines[-len(expected):] == [e.strip() for e in expected]
