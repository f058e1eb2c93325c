"""hutch files: put, get (streamed both ways), ls."""
import hashlib
import json
import os

from conftest import short_time, table

SIZE = 20 << 20


def make_file(path, size):
    """SIZE random bytes at PATH; returns their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_20mb_round_trip(cli, sandbox, tmp_path):
    digest = make_file(tmp_path / "big.bin", SIZE)
    r = cli.ok("files", "put", sandbox, str(tmp_path / "big.bin"), "data/big.bin")
    assert r.stdout == "/home/user/data/big.bin\n"
    cli.ok("files", "get", sandbox, "/home/user/data/big.bin", str(tmp_path / "back.bin"))
    assert sha256_of(tmp_path / "back.bin") == digest
    r = cli.run("files", "get", sandbox, "data/big.bin", "-", binary=True)
    assert r.returncode == 0 and hashlib.sha256(r.stdout).hexdigest() == digest
    r = cli.ok("exec", sandbox, "--", "sha256sum data/big.bin")
    assert r.stdout.split()[0] == digest
    assert sorted(os.listdir(tmp_path)) == ["back.bin", "big.bin"]


def test_put_from_stdin_and_json(cli, sandbox):
    r = cli.run("files", "put", sandbox, "-", "/tmp/in/from-stdin.txt", "--json",
                input="piped\n")
    assert r.returncode == 0
    written = json.loads(r.stdout)
    assert written[0]["path"] == "/tmp/in/from-stdin.txt"
    assert cli.ok("files", "get", sandbox, "/tmp/in/from-stdin.txt", "-").stdout == "piped\n"


def test_get_names_the_local_file(cli, sandbox, tmp_path):
    cli.ok("files", "put", sandbox, "-", "notes.txt", input="n\n")
    cli.ok("files", "get", sandbox, "notes.txt", cwd=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "n\n"
    (tmp_path / "into").mkdir()
    cli.ok("files", "get", sandbox, "/home/user/notes.txt", str(tmp_path / "into"))
    assert (tmp_path / "into" / "notes.txt").read_text() == "n\n"
    d = cli.json("files", "get", sandbox, "notes.txt", str(tmp_path / "j.txt"))
    assert d == {"path": "notes.txt", "local": str(tmp_path / "j.txt"), "size": 2}


def test_failed_get_leaves_nothing_behind(cli, sandbox, tmp_path):
    target = tmp_path / "missing.txt"
    r = cli.run("files", "get", sandbox, "/no/such/file", str(target))
    assert r.returncode == 3 and "/no/such/file" in r.stderr
    assert os.listdir(tmp_path) == []
    target.write_text("keep")
    assert cli.run("files", "get", sandbox, "/no/such/file", str(target)).returncode == 3
    assert target.read_text() == "keep"
    assert cli.run("files", "get", sandbox, "/tmp", str(target)).returncode == 2
    assert os.listdir(tmp_path) == ["missing.txt"]


def test_ls_table_and_json(cli, sandbox, tag):
    base = f"/tmp/ls-{tag}"
    cli.ok("files", "put", sandbox, "-", f"{base}/b.txt", input="hello")
    cli.ok("files", "put", sandbox, "-", f"{base}/a/inner.txt", input="x")
    cli.ok("exec", sandbox, "--", "ln", "-s", f"{base}/b.txt", f"{base}/link")
    entries = cli.json("files", "ls", sandbox, base)
    assert sorted(e["name"] for e in entries) == ["a", "b.txt", "link"]

    def row(e, name):
        link = f" -> {e['symlinkTarget']}" if e.get("symlinkTarget") else ""
        return [e["permissions"], e["owner"], e["group"], e["size"],
                short_time(e["modifiedTime"]), name + link]

    header = ["PERMISSIONS", "OWNER", "GROUP", "SIZE", "MODIFIED", "NAME"]
    rows = sorted((row(e, e["name"]) for e in entries), key=lambda r: r[-1])
    assert cli.ok("files", "ls", sandbox, base).stdout == table([header] + rows)
    deep = cli.json("files", "ls", sandbox, base, "--depth", "2")
    rows = sorted((row(e, e["path"][len(base) + 1:]) for e in deep), key=lambda r: r[-1])
    assert [r[-1] for r in rows][:2] == ["a", "a/inner.txt"]
    assert cli.ok("files", "ls", sandbox, base, "--depth", "2").stdout == table([header] + rows)
    b = next(e for e in entries if e["name"] == "b.txt")
    assert (b["size"], b["owner"]) == ("5", "user")


def test_ls_defaults_to_the_home(cli, sandbox):
    cli.ok("files", "put", sandbox, "-", "home-marker", input="")
    assert "home-marker" in [e["name"] for e in cli.json("files", "ls", sandbox)]


def test_user_option(cli, sandbox):
    cli.ok("files", "put", sandbox, "-", "/root/r.txt", "--user", "root", input="r")
    assert cli.json("files", "ls", sandbox, "/root", "--user", "root")[0]["owner"] == "root"
    r = cli.run("files", "ls", sandbox, "--user", "nobody-here")
    assert r.returncode == 4


def test_errors(cli, sandbox, tmp_path):
    r = cli.run("files", "ls", sandbox, "/no/such/dir")
    assert r.returncode == 3 and "/no/such/dir" in r.stderr
    assert cli.run("files", "ls", sandbox, "/etc/passwd").returncode == 2
    r = cli.run("files", "put", sandbox, str(tmp_path / "absent"), "x")
    assert r.returncode == 2 and "absent" in r.stderr
    assert cli.run("files", "put", sandbox, str(tmp_path), "x").returncode == 2
    r = cli.run("files", "put", sandbox, "-", "/tmp", input="x")
    assert r.returncode == 2 and "directory" in r.stderr
    r = cli.run("files", "get", "nosuchsandbox", "x", "-")
    assert (r.returncode, r.stderr) == (3, "hutch: sandbox `nosuchsandbox` not found\n")
    for args in (["files"], ["files", "cp"], ["files", "put", sandbox, "a"],
                 ["files", "get", sandbox], ["files", "get", sandbox, "x", "-", "--json"],
                 ["files", "put", sandbox, "a", "b", "--depth", "2"],
                 ["files", "ls", sandbox, "--depth", "x"]):
        r = cli.run(*args)
        assert r.returncode == 2 and r.stdout == "", args
