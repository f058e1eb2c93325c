"""hutchd answers only once a create is as fast as it will be: its zygote
has preloaded Python before it listens, and the spares follow."""
from hutchd import Hutchd

from conftest import HUTCHD


def test_listens_after_python_is_preloaded():
    h = Hutchd(HUTCHD, "hutchd-sdk-start", ["--log", "info"]).start()
    try:
        log = h.log_tail(65536)
    finally:
        problem = h.stop()
    assert problem is None, problem
    preloaded = log.find("pyzygote: Python kernels preloaded")
    listening = log.find("listening on 127.0.0.1:")
    assert preloaded != -1, log
    assert -1 < preloaded < listening, log
