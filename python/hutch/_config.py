"""Where the server is and which key to use.

Each setting comes from, first match wins: the argument, the HUTCH_*
environment variable, the E2B_* one, the default.
"""
import os
from typing import Optional

from .exceptions import AuthenticationException, InvalidArgumentException

DEFAULT_API_URL = "http://127.0.0.1:3000"
REQUEST_TIMEOUT = 60.0  # seconds, per request to the control plane or envd
ENVD_PORT = 49983
JUPYTER_PORT = 49999
KEY_VARIABLES = "HUTCH_API_KEY (or E2B_API_KEY)"


def _env(*names: str) -> Optional[str]:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _clean_url(url: str, what: str) -> str:
    url = url.strip().rstrip("/")
    if not (url.startswith("http://") or url.startswith("https://")):
        raise InvalidArgumentException(
            f"{what} must start with http:// or https://, got {url!r}")
    return url


class ConnectionConfig:
    """The resolved connection settings of one sandbox or one API call.

    api_url: argument, HUTCH_API_URL, E2B_API_URL, else http://127.0.0.1:3000.
    sandbox_url: argument, HUTCH_SANDBOX_URL, E2B_SANDBOX_URL, else api_url
    (hutchd serves envd and the code interpreter on its API port, routed by
    the E2b-Sandbox-Id / E2b-Sandbox-Port headers).
    api_key: argument, HUTCH_API_KEY, E2B_API_KEY; required for the control
    plane (checked when a call needs it, not here).
    domain: argument, HUTCH_DOMAIN, E2B_DOMAIN; only used by get_host().
    """

    def __init__(self, api_key: Optional[str] = None, api_url: Optional[str] = None,
                 sandbox_url: Optional[str] = None, domain: Optional[str] = None,
                 request_timeout: Optional[float] = None, headers: Optional[dict] = None):
        self.api_key = api_key or _env("HUTCH_API_KEY", "E2B_API_KEY")
        self.api_url = _clean_url(api_url or _env("HUTCH_API_URL", "E2B_API_URL") or DEFAULT_API_URL,
                                  "the API URL")
        sandbox_url = sandbox_url or _env("HUTCH_SANDBOX_URL", "E2B_SANDBOX_URL")
        self.sandbox_url = _clean_url(sandbox_url, "the sandbox URL") if sandbox_url else self.api_url
        self.domain = domain or _env("HUTCH_DOMAIN", "E2B_DOMAIN")
        self.request_timeout = REQUEST_TIMEOUT if request_timeout is None else request_timeout
        self.headers = dict(headers or {})

    def require_key(self) -> str:
        if not self.api_key:
            raise AuthenticationException(
                "no API key: pass api_key=... or set HUTCH_API_KEY (or E2B_API_KEY) to the key "
                "hutchd printed at its first start (it keeps it in DATA_DIR/api-key)")
        return self.api_key

    def timeout(self, request_timeout: Optional[float]) -> Optional[float]:
        """A per-call request timeout; 0 means none."""
        t = self.request_timeout if request_timeout is None else request_timeout
        return None if t == 0 else t

    def params(self) -> dict:
        """The arguments that rebuild this config (for paginators and class methods)."""
        return {"api_key": self.api_key, "api_url": self.api_url, "sandbox_url": self.sandbox_url,
                "domain": self.domain, "request_timeout": self.request_timeout,
                "headers": self.headers}

    def __repr__(self) -> str:
        key = (self.api_key[:8] + "...") if self.api_key else None
        return (f"ConnectionConfig(api_url={self.api_url!r}, sandbox_url={self.sandbox_url!r}, "
                f"api_key={key!r})")
