"""sandbox.files against envd (/files and filesystem.Filesystem)."""
import hashlib
import io
import os

import pytest

from hutch import (EntryInfo, FileNotFoundException, FilesystemEventType, FileStreamReader, FileType,
                   SandboxException, WriteInfo)
from conftest import wait_until


def test_text_round_trip(sandbox):
    info = sandbox.files.write("notes/a.txt", "héllo\nwörld ✓\n")
    assert isinstance(info, WriteInfo)
    assert info.path == "/home/user/notes/a.txt" and info.name == "a.txt" and info.type == FileType.FILE
    assert sandbox.files.read("notes/a.txt") == "héllo\nwörld ✓\n"
    assert sandbox.files.read("/home/user/notes/a.txt") == "héllo\nwörld ✓\n"
    assert sandbox.commands.run("cat ~/notes/a.txt").stdout == "héllo\nwörld ✓\n"


def test_bytes_round_trip(sandbox):
    data = bytes(range(256)) * 100
    sandbox.files.write("/tmp/b.bin", data)
    assert sandbox.files.read("/tmp/b.bin", format="bytes") == data
    sandbox.files.write("/tmp/empty", b"")
    assert sandbox.files.read("/tmp/empty", format="bytes") == b""
    sandbox.files.write("/tmp/b.bin", b"shorter")
    assert sandbox.files.read("/tmp/b.bin", format="bytes") == b"shorter"


def test_large_file_streamed(sandbox, tmp_path):
    size = 48 << 20
    src = tmp_path / "big"
    with open(src, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(size >> 20):
            f.write(bytes([i]) + block[1:])
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    with open(src, "rb") as f:
        sandbox.files.write("/tmp/big", f)
    assert sandbox.commands.run("sha256sum /tmp/big").stdout.split()[0] == want
    h = hashlib.sha256()
    n = 0
    chunks = 0
    with sandbox.files.read("/tmp/big", format="stream") as stream:
        assert isinstance(stream, FileStreamReader)
        for chunk in stream:
            h.update(chunk)
            n += len(chunk)
            chunks += 1
    assert n == size and h.hexdigest() == want
    assert chunks > 10, "the download was not streamed"
    assert hashlib.sha256(sandbox.files.read("/tmp/big", format="bytes")).hexdigest() == want


def test_text_file_object(sandbox):
    sandbox.files.write("/tmp/t.txt", io.StringIO("from a text stream ✓"))
    assert sandbox.files.read("/tmp/t.txt") == "from a text stream ✓"


def test_write_files(sandbox):
    infos = sandbox.files.write_files([
        {"path": "/tmp/many/one.txt", "data": "1"},
        {"path": "many/two.bin", "data": b"\x00\x02"},
        {"path": "/tmp/many/three.txt", "data": io.BytesIO(b"three")},
    ])
    assert sorted(i.path for i in infos) == ["/home/user/many/two.bin", "/tmp/many/one.txt",
                                             "/tmp/many/three.txt"]
    assert sandbox.files.read("/tmp/many/one.txt") == "1"
    assert sandbox.files.read("many/two.bin", format="bytes") == b"\x00\x02"
    assert sandbox.files.read("/tmp/many/three.txt") == "three"


def test_list_exists_info(sandbox):
    sandbox.files.write("/tmp/tree/a.txt", "aaa")
    sandbox.files.write("/tmp/tree/sub/b.txt", "b")
    entries = sandbox.files.list("/tmp/tree")
    assert all(isinstance(e, EntryInfo) for e in entries)
    assert sorted((e.name, e.type) for e in entries) == [("a.txt", FileType.FILE), ("sub", FileType.DIR)]
    deep = sandbox.files.list("/tmp/tree", depth=2)
    assert sorted(e.path for e in deep) == ["/tmp/tree/a.txt", "/tmp/tree/sub", "/tmp/tree/sub/b.txt"]
    assert sandbox.files.exists("/tmp/tree/a.txt") is True
    assert sandbox.files.exists("/tmp/tree/none") is False
    info = sandbox.files.get_info("/tmp/tree/a.txt")
    assert info.size == 3 and info.type == FileType.FILE and info.owner == "user"
    assert info.permissions.startswith("-rw") and info.mode & 0o600 == 0o600
    assert info.modified_time is not None
    assert sandbox.files.get_info("/tmp/tree").type == FileType.DIR


def test_make_dir_rename_remove(sandbox):
    assert sandbox.files.make_dir("/tmp/d1/d2") is True
    assert sandbox.files.make_dir("/tmp/d1/d2") is False
    sandbox.files.write("/tmp/d1/d2/f", "x")
    moved = sandbox.files.rename("/tmp/d1/d2/f", "/tmp/d1/g")
    assert moved.path == "/tmp/d1/g"
    assert not sandbox.files.exists("/tmp/d1/d2/f") and sandbox.files.exists("/tmp/d1/g")
    sandbox.files.remove("/tmp/d1")
    assert not sandbox.files.exists("/tmp/d1")
    sandbox.files.remove("/tmp/d1")  # already gone: fine


def test_missing(sandbox):
    with pytest.raises(FileNotFoundException):
        sandbox.files.read("/tmp/nope")
    with pytest.raises(FileNotFoundException):
        sandbox.files.get_info("/tmp/nope")
    with pytest.raises(FileNotFoundException):
        sandbox.files.list("/tmp/nope")
    with pytest.raises(FileNotFoundException):
        sandbox.files.rename("/tmp/nope", "/tmp/nope2")


def test_users(sandbox):
    sandbox.files.write("/root/secret", "r", user="root")
    assert sandbox.files.read("/root/secret", user="root") == "r"
    assert sandbox.files.get_info("/root/secret", user="root").owner == "root"
    with pytest.raises(SandboxException):
        sandbox.files.read("/root/secret")
    with pytest.raises(SandboxException):
        sandbox.files.write("/etc/not-yours", "x")


def test_read_directory_is_an_error(sandbox):
    with pytest.raises(SandboxException):
        sandbox.files.read("/tmp")


def test_watch_dir(sandbox):
    sandbox.files.make_dir("/tmp/watched")
    with sandbox.files.watch_dir("/tmp/watched") as w:
        sandbox.files.write("/tmp/watched/new.txt", "x")
        events = []

        def got():
            events.extend(w.get_new_events())
            return any(e.name == "new.txt" and e.type in (FilesystemEventType.CREATE,
                                                           FilesystemEventType.WRITE) for e in events)

        wait_until(got, timeout=10, what="a create event for new.txt")
        sandbox.files.remove("/tmp/watched/new.txt")
        wait_until(lambda: events.extend(w.get_new_events()) or any(
            e.name == "new.txt" and e.type == FilesystemEventType.REMOVE for e in events),
            timeout=10, what="a remove event for new.txt")
    with pytest.raises(SandboxException):
        w.get_new_events()


def test_watch_recursive(sandbox):
    sandbox.files.make_dir("/tmp/rw/inner")
    w = sandbox.files.watch_dir("/tmp/rw", recursive=True)
    try:
        sandbox.files.write("/tmp/rw/inner/deep.txt", "x")
        events = []
        wait_until(lambda: events.extend(w.get_new_events()) or any(
            e.name.endswith("deep.txt") for e in events), timeout=10, what="an event from a subdirectory")
    finally:
        w.stop()
