"""The HTTP checks of a started vLLM server: ``/health``, ``/v1/models``, a 1-token completion, ``/metrics``.

``ServerProbe`` asks them of a base URL over a session that never goes through a proxy (every check targets the
server's own address) and sends the server's key when it has one; it decides nothing about the process (that is
``server.VllmServer``, which asks it). A check that fails to connect, times out or gets another status than 200 is
``None`` or ``False``, never an exception.
"""

from __future__ import annotations

import requests

from ..client.liveness import progress_from_metrics

SESSION_POOL = 64  # connections the server's own checks keep (alive, responsive, progress from many threads)


def local_session() -> requests.Session:
    """A session that never goes through a proxy, with a pool for every worker checking ``/health`` at once."""
    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=SESSION_POOL)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ServerProbe:
    """HTTP checks of one server (``api_key``: sent as a bearer token when set)."""

    def __init__(self, session: requests.Session | None = None, api_key: str | None = None) -> None:
        self.session = session if session is not None else local_session()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def get(self, base_url: str, path: str, timeout: float) -> requests.Response | None:
        """``GET base_url + path``: the response when it is 200, else None."""
        try:
            resp = self.session.get(base_url + path, headers=self._headers, timeout=timeout)
        except requests.RequestException:
            return None
        return resp if resp.status_code == 200 else None

    def models(self, base_url: str, timeout: float) -> list[dict]:
        """The entries of ``/v1/models`` (empty when unreadable)."""
        resp = self.get(base_url, "/v1/models", timeout)
        try:
            data = resp.json().get("data", []) if resp is not None else []
        except (ValueError, AttributeError):
            return []
        return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []

    def completes_one_token(self, base_url: str, served_name: str, timeout: tuple[float, float]) -> bool:
        """A 1-token completion answered 200 within ``timeout`` (connect, read)."""
        body = {"model": served_name, "prompt": "1", "max_tokens": 1, "temperature": 0}
        try:
            resp = self.session.post(base_url + "/v1/completions", json=body, headers=self._headers, timeout=timeout)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def progress(self, base_url: str, timeout: float) -> float | None:
        """Tokens the engine has processed, from ``/metrics`` (None when unreadable)."""
        resp = self.get(base_url, "/metrics", timeout)
        return progress_from_metrics(resp.text) if resp is not None else None
