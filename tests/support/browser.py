"""A real headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no dependency.

Chromium reads commands on its fd 3 and writes replies and events on fd 4, each a JSON object ended by a NUL byte.
``Browser`` opens a page (``open``), evaluates JavaScript in it (``js``), types and picks like a user (``type_into``,
``select``: real input events through ``Input.insertText`` / DOM ``change``), and writes PNG screenshots
(``screenshot``). ``close`` ends Chromium and every process of its group (it runs in its own session).

The browser is Debian's ``chromium`` (``CHROMIUM`` or /usr/bin/chromium), installed by ``make test``
(scripts/ensure-chromium.sh); a missing browser is a test failure, never a skip.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

TIMEOUT = 90.0
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
]


def chromium_path() -> str:
    """The browser to drive; an AssertionError naming the fix when there is none (tests never skip on it)."""
    found = (
        os.environ.get("CHROMIUM")
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )
    assert found, "no chromium: run `make test` (it installs Debian's chromium) or `apt-get install -y chromium`"
    return found


def _pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 or above, so that redirecting them to fds 3 and 4 never clobbers one
    (bash, not dash, takes two-digit fds in a redirection)."""
    ends = os.pipe()
    high = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in ends)
    for fd in ends:
        os.close(fd)
    return high[0], high[1]


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        to_chrome_r, self._out = _pipe()  # we write commands, Chromium reads them on its fd 3
        self._in, from_chrome_w = _pipe()  # Chromium writes on its fd 4, we read
        argv = [chromium_path(), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        script = f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w}'
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, *argv],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer, self._next = b"", 0
        self._events: list[dict[str, Any]] = []
        self.session = ""
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol --------------------------------------------------------------------------------------------
    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result; an error reply fails the test."""
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next, f"the reply to {method}")
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply.get("result", {})

    def _wait(self, match, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        for i, event in enumerate(self._events):
            if match(event):
                return self._events.pop(i)
        while time.monotonic() < deadline:
            message = self._read(deadline)
            if match(message):
                return message
            self._events.append(message)
        raise AssertionError(f"chromium: no {what} within {TIMEOUT:.0f} s")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise AssertionError(f"chromium: no message within {TIMEOUT:.0f} s")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise AssertionError(f"chromium exited (code {self.proc.poll()}) while the test talked to it")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    # -- what tests use ------------------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event (inline scripts have run by then); always a new document, even
        when only the ``#fragment`` differs from the page shown."""
        if url != "about:blank":
            self.open("about:blank")
        self._events = [e for e in self._events if e.get("method") != "Page.loadEventFired"]
        self.call("Page.navigate", url=url)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired", f"load event of {url}")

    def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (an exception in it fails the test)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    def type_into(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` as keyboard input (fires the page's ``input`` handlers)."""
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def select(self, selector: str, value: str) -> None:
        """Pick ``value`` in a ``<select>`` the way a user's pick reaches the page: value set, ``change`` fired."""
        self.js(
            f"(function(e){{e.value={json.dumps(value)};"
            "e.dispatchEvent(new Event('change',{bubbles:true}));})"
            f"(document.querySelector({json.dumps(selector)}))"
        )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page unless ``full_page`` is False) written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1},
            )
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        """End Chromium: ``Browser.close``, then SIGKILL to whatever of its process group is left."""
        if self.proc.poll() is None:
            try:
                os.write(self._out, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=15)
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
