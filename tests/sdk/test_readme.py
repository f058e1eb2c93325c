"""Every ```python block of python/README.md, README.md and docs/*.md runs,
as written, against the test hutchd, with HUTCH_API_URL and HUTCH_API_KEY
set.  In README.md and docs/, `print(...)  # VALUE` says what a line prints,
and the output must be exactly those values."""
import os
import re
import subprocess
import sys

import pytest

from hutchd import REPO

README = REPO / "python" / "README.md"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def blocks(path=README):
    text = path.read_text()
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        out.append(pytest.param(m.group(1), id=f"{path.name}:line{line}"))
    return out


def doc_blocks():
    return [b for doc in DOCS for b in blocks(doc)]


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUTCH_", "E2B_"))}
    env.update({"HUTCH_API_URL": server.url, "HUTCH_API_KEY": server.api_key,
                "PYTHONPATH": str(REPO / "python")})
    r = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    # The examples' comments say what they print; spot-check the quick start's.
    if "x += 1; x" in code and "asyncio" not in code:
        assert r.stdout.strip().endswith("2"), r.stdout
