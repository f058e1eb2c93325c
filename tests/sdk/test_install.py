"""The package installs offline with pip and Debian's setuptools, and runs
on the oldest Python it claims (3.9) when one is on the machine."""
import glob
import os
import shutil
import subprocess
import textwrap

import pytest

from hutchd import REPO

DEBIAN_PYTHON = "/usr/bin/python3"


def _python39():
    """A working Python 3.9 (pyenv's shims are not one unless selected)."""
    candidates = sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9"))
    candidates += [p for p in [shutil.which("python3.9")] if p]
    for p in candidates:
        try:
            r = subprocess.run([p, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if r.stdout.strip() == "True":
            return p
    return None


@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason="needs Debian's /usr/bin/python3")
def test_pip_install_offline(tmp_path):
    """`pip install --no-build-isolation ./python` with no index: the build
    backend is Debian's python3-setuptools, seen from a venv made with
    --system-site-packages (Debian's own python refuses system installs)."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "python", src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index",
                          "--disable-pip-version-check", str(src)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PIP_NO_INPUT": "1"})
    assert pip.returncode == 0, pip.stdout + pip.stderr
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import hutch, importlib.metadata as m; print(hutch.__file__); "
                          "print(m.version('hutch')); print(m.requires('hutch'))"],
                         capture_output=True, text=True, cwd=str(tmp_path), check=True).stdout.split("\n")
    assert out[0].startswith(str(venv)), out
    assert out[1] == hutch_version()
    assert out[2] in ("None", "[]"), f"the package must have no dependencies: {out[2]}"


def hutch_version():
    ns = {}
    exec((REPO / "python" / "hutch" / "_version.py").read_text(), ns)
    return ns["__version__"]


def test_versions_agree():
    text = (REPO / "python" / "pyproject.toml").read_text()
    assert f'version = "{hutch_version()}"' in text
    assert 'requires-python = ">=3.9"' in text
    assert "dependencies = []" in text


@pytest.mark.skipif(_python39() is None, reason="no python3.9 on this machine")
def test_python39(server):
    py = _python39()
    src = str(REPO / "python")
    subprocess.run([py, "-m", "compileall", "-q", "-f", "-d", "hutch", f"{src}/hutch"], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/tmp/hutch-py39-cache"})
    script = textwrap.dedent("""
        import asyncio, sys
        assert sys.version_info[:2] == (3, 9), sys.version
        from hutch import Sandbox, AsyncSandbox, CommandExitException
        with Sandbox.create() as sbx:
            assert sbx.is_running()
            assert sbx.get_info().sandbox_id == sbx.sandbox_id
            assert [s for s in Sandbox.list(metadata={}) if s.sandbox_id == sbx.sandbox_id]
            assert sbx.commands.run("echo py39").stdout == "py39\\n"
        async def main():
            async with await AsyncSandbox.create() as a:
                assert await a.is_running()
                r = await a.commands.run("echo async")
                assert r.stdout == "async\\n"
        asyncio.run(main())
        print("ok")
    """)
    r = subprocess.run([py, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": src, "PYTHONPYCACHEPREFIX": "/tmp/hutch-py39-cache"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
