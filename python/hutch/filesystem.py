"""sandbox.files: the sandbox's filesystem, through envd's /files (upload,
download; streamed both ways) and its filesystem.Filesystem Connect service."""
import urllib.parse
import uuid
from typing import IO, Any, Dict, Iterator, List, Optional, Union

from ._rpc import EnvdClient, envd_error
from ._http import StreamResponse
from .exceptions import FileNotFoundException, InvalidArgumentException, SandboxException
from .models import EntryInfo, FilesystemEvent, WriteInfo

CHUNK = 64 * 1024
Data = Union[str, bytes, bytearray, IO]


def _query(path: Optional[str], user: Optional[str]) -> str:
    q = {}
    if path is not None:
        q["path"] = path
    if user:
        q["username"] = user
    return "/files" + ("?" + urllib.parse.urlencode(q) if q else "")


def _chunks(data: Data) -> Union[bytes, Iterator[bytes]]:
    """bytes for str/bytes; an iterator of chunks (sent chunked) for files."""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        def gen():
            while True:
                chunk = data.read(CHUNK)
                if not chunk:
                    return
                yield chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)
        return gen()
    raise InvalidArgumentException(f"cannot write data of type {type(data).__name__}")


def _filename(path: str) -> str:
    return path.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _multipart(files: List[Dict[str, Any]], boundary: str) -> Iterator[bytes]:
    for f in files:
        if "path" not in f or "data" not in f:
            raise InvalidArgumentException("each file is a dict with 'path' and 'data'")
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"{_filename(f['path'])}\"\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode("utf-8")
        body = _chunks(f["data"])
        if isinstance(body, bytes):
            yield body
        else:
            yield from body
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


class FileStreamReader:
    """The chunks of a downloaded file, as they arrive.  Close it (or use it
    in a with block, or read it to the end) to release the connection."""

    def __init__(self, resp: StreamResponse):
        self._resp = resp
        self._closed = False

    def __iter__(self) -> "FileStreamReader":
        return self

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            chunk = self._resp.read1(CHUNK)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def read(self) -> bytes:
        """Everything that is left."""
        return b"".join(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._resp.close()

    def __enter__(self) -> "FileStreamReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WatchHandle:
    """A directory watch (sync: polled).  get_new_events() returns the
    events since the last call; stop() ends the watch."""

    def __init__(self, fs: "Filesystem", watcher_id: str, user: Optional[str]):
        self._fs = fs
        self._id = watcher_id
        self._user = user
        self._closed = False

    def get_new_events(self, request_timeout: Optional[float] = None) -> List[FilesystemEvent]:
        if self._closed:
            raise SandboxException("the watcher is stopped")
        res = self._fs._envd.unary("/filesystem.Filesystem/GetWatcherEvents", {"watcherId": self._id},
                                   user=self._user, request_timeout=request_timeout, files=True)
        return [FilesystemEvent.from_json(e) for e in res.get("events") or []]

    def stop(self, request_timeout: Optional[float] = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._fs._envd.unary("/filesystem.Filesystem/RemoveWatcher", {"watcherId": self._id},
                             user=self._user, request_timeout=request_timeout, files=True)

    def __enter__(self) -> "WatchHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Filesystem:
    """Read, write and manage files in the sandbox.  Relative paths are
    under the user's home (/home/user); user='root' acts as root."""

    def __init__(self, envd: EnvdClient):
        self._envd = envd

    def _rpc(self, method: str, msg: Dict[str, Any], user: Optional[str], request_timeout) -> Dict[str, Any]:
        return self._envd.unary(f"/filesystem.Filesystem/{method}", msg, user=user,
                                request_timeout=request_timeout, files=True)

    # ---- content ----
    def read(self, path: str, format: str = "text", user: Optional[str] = None,
             request_timeout: Optional[float] = None):
        """The file's content: format='text' (str), 'bytes', or 'stream' (a
        FileStreamReader of byte chunks, for large files)."""
        if format not in ("text", "bytes", "stream"):
            raise InvalidArgumentException("format must be 'text', 'bytes' or 'stream'")
        resp = self._envd.endpoint.open("GET", _query(path, user), None, self._envd.headers(),
                                        self._envd.timeout(request_timeout))
        if resp.status != 200:
            try:
                raise envd_error(resp, self._envd.sandbox_id, files=True)
            finally:
                resp.close()
        resp.set_deadline(None, idle=self._envd.timeout(request_timeout))
        if format == "stream":
            return FileStreamReader(resp)
        try:
            data = resp.read_all()
        finally:
            resp.close()
        return data.decode("utf-8") if format == "text" else data

    def write(self, path: str, data: Data, user: Optional[str] = None,
              request_timeout: Optional[float] = None) -> WriteInfo:
        """Write DATA (str, bytes, or a file object, which is streamed) to
        PATH, creating missing parent directories; an existing file is
        replaced."""
        if not isinstance(path, str) or not path:
            raise InvalidArgumentException("path must be a non-empty string")
        body = _chunks(data)
        h = self._envd.headers()
        h["Content-Type"] = "application/octet-stream"
        resp = self._envd.endpoint.request("POST", _query(path, user), body, h,
                                           self._envd.timeout(request_timeout))
        return self._written(resp, path)[0]

    def write_files(self, files: List[Dict[str, Any]], user: Optional[str] = None,
                    request_timeout: Optional[float] = None) -> List[WriteInfo]:
        """Write several files in one request: a list of {'path', 'data'}."""
        if not files:
            return []
        files = list(files)
        for f in files:
            if not isinstance(f, dict) or not isinstance(f.get("path"), str) or not f["path"] or "data" not in f:
                raise InvalidArgumentException("each file is a dict with a non-empty 'path' and 'data'")
        boundary = "hutch" + uuid.uuid4().hex
        h = self._envd.headers()
        h["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        resp = self._envd.endpoint.request("POST", _query(None, user), _multipart(files, boundary), h,
                                           self._envd.timeout(request_timeout))
        return self._written(resp, ", ".join(f.get("path", "?") for f in files))

    def _written(self, resp, what: str) -> List[WriteInfo]:
        if resp.status != 200:
            raise envd_error(resp, self._envd.sandbox_id, files=True)
        try:
            data = resp.json()
        except ValueError:
            raise SandboxException(f"write {what}: the answer is not JSON: {resp.text[:200]!r}") from None
        if not isinstance(data, list) or not data:
            raise SandboxException(f"write {what}: expected information about the written file, got {data!r}")
        return [WriteInfo.from_json(d) for d in data]

    # ---- metadata ----
    def list(self, path: str, depth: Optional[int] = 1, user: Optional[str] = None,
             request_timeout: Optional[float] = None) -> List[EntryInfo]:
        """The entries of directory PATH, DEPTH levels down (1: its children)."""
        if depth is not None and depth < 1:
            raise InvalidArgumentException("depth must be at least 1")
        res = self._rpc("ListDir", {"path": path, "depth": depth or 1}, user, request_timeout)
        return [EntryInfo.from_json(e) for e in res.get("entries") or []
                if e.get("type") not in (None, "FILE_TYPE_UNSPECIFIED", 0)]

    def exists(self, path: str, user: Optional[str] = None,
               request_timeout: Optional[float] = None) -> bool:
        try:
            self._rpc("Stat", {"path": path}, user, request_timeout)
        except FileNotFoundException:
            return False
        return True

    def get_info(self, path: str, user: Optional[str] = None,
                 request_timeout: Optional[float] = None) -> EntryInfo:
        return EntryInfo.from_json(self._rpc("Stat", {"path": path}, user, request_timeout).get("entry") or {})

    def remove(self, path: str, user: Optional[str] = None,
               request_timeout: Optional[float] = None) -> None:
        """Remove a file or a directory (recursively); a missing path is fine."""
        self._rpc("Remove", {"path": path}, user, request_timeout)

    def rename(self, old_path: str, new_path: str, user: Optional[str] = None,
               request_timeout: Optional[float] = None) -> EntryInfo:
        res = self._rpc("Move", {"source": old_path, "destination": new_path}, user, request_timeout)
        return EntryInfo.from_json(res.get("entry") or {})

    def make_dir(self, path: str, user: Optional[str] = None,
                 request_timeout: Optional[float] = None) -> bool:
        """Create a directory and its parents.  False if it already exists."""
        try:
            self._rpc("MakeDir", {"path": path}, user, request_timeout)
        except SandboxException as e:
            if getattr(e, "code", None) == "already_exists":
                return False
            raise
        return True

    def watch_dir(self, path: str, user: Optional[str] = None, request_timeout: Optional[float] = None,
                  recursive: bool = False, include_entry: bool = False) -> WatchHandle:
        """Watch directory PATH for changes; poll with get_new_events()."""
        msg: Dict[str, Any] = {"path": path, "recursive": bool(recursive)}
        if include_entry:
            msg["includeEntry"] = True
        res = self._rpc("CreateWatcher", msg, user, request_timeout)
        wid = res.get("watcherId") or res.get("watcher_id")
        if not wid:
            raise SandboxException(f"watch_dir {path}: no watcher id in {res!r}")
        return WatchHandle(self, wid, user)
