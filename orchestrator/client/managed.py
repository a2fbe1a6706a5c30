"""What ``ChatClient`` asks of a managed vLLM server: ``ManagedServer`` (its hooks) and ``ServerChecks`` (verdicts).

``ManagedServer`` is the typed seam between a client and the server it asks: ``alive`` (its process lives),
``responsive`` (a 1-token probe answers; ``None``: never probed) and ``progress`` (its engine's token counters on
``/metrics``; ``None``: not watched, the read timeout applies). ``ManagedServer.of(server)`` takes all three from a
server object (``serving.server.VllmServer``, the job's stand-ins). A ``ServerDiedError`` or ``ServerHungError``
raised by the checks is the job's cue to restart the server and resume the series.

``ServerChecks`` gives the verdicts, shared by every worker thread of one client:

* ``check_alive(cause)``: the server's process is gone (``alive()`` false): ``ServerDiedError`` at once.
* ``check_responsive(cause)``: after a request timeout, a 1-token probe (``responsive()``) that fails too means a
  server that lives but answers nothing: ``ServerHungError``. Threads timing out together probe once; a hung verdict
  sticks for the client's life (every later check raises it).
* ``confirm_stall()``: after the stall limit (``request_timeout``) without progress on the server's counters, one
  verdict for all threads that stalled together (``liveness.probe_watching``): ``Verdict.BUSY`` (the counters moved
  while the probe ran), ``Verdict.ANSWERS`` (the probe answered) or hung (``ServerHungError``). A verdict given after
  a thread's stall began is reused, not asked again.

An API model (no ``ManagedServer``) passes every check: ``confirm_stall`` says ``Verdict.STALLED``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..errors import ServerDiedError, ServerHungError
from .liveness import ProgressWatch, Verdict, probe_watching


class ServerProbes(Protocol):
    """A server object that can be asked how it is (``serving.server.VllmServer``)."""

    def alive(self) -> bool: ...
    def responsive(self) -> bool: ...
    def progress(self) -> float | None: ...


@dataclass(frozen=True)
class ManagedServer:
    """A managed vLLM server as its client sees it (see the module docstring)."""

    alive: Callable[[], bool]
    responsive: Callable[[], bool] | None = None
    progress: Callable[[], float | None] | None = None

    @classmethod
    def of(cls, server: ServerProbes) -> ManagedServer:
        """Every hook of ``server``: checked when dead, probed when stalled, watched through its counters."""
        return cls(alive=server.alive, responsive=server.responsive, progress=server.progress)


class ServerChecks:
    """Dead and hung verdicts on one managed server, shared by every worker thread of one client."""

    def __init__(
        self,
        model_name: str,
        api_base: str,
        stall_limit: float,
        *,
        clock: Callable[[], float],
        server: ManagedServer | None = None,
        watch: ProgressWatch | None = None,
    ) -> None:
        self.model_name, self.api_base, self.stall_limit = model_name, api_base, stall_limit
        self._clock, self._watch = clock, watch
        self._alive = server.alive if server is not None else None
        self._responsive = server.responsive if server is not None else None
        self._hung: str | None = None
        self._probe_ok_at = -float("inf")
        self._verdict = Verdict.ANSWERS
        self._confirm_lock, self._probe_lock = threading.Lock(), threading.Lock()

    def check_alive(self, cause: str) -> None:
        if self._alive is not None and not self._alive():
            raise ServerDiedError(
                f"managed server of {self.model_name!r} at {self.api_base} died "
                f"(last request: {cause}); see its log, the series resumes on restart"
            )

    def check_responsive(self, cause: str) -> None:
        """After a request timeout: a managed server that also fails a 1-token probe is hung (restart it)."""
        if self._responsive is None:
            return
        with self._probe_lock:  # threads timing out together probe once; a hung verdict sticks
            if self._hung is None and not self._responsive():
                self._hung = self._hung_text(cause)
        if self._hung is not None:
            raise ServerHungError(self._hung)

    def confirm_stall(self) -> Verdict:
        """A stall of a managed server: dead or hung raises; else the verdict of ``liveness.probe_watching`` (the
        counters moved meanwhile: ``BUSY``; the 1-token probe answered: ``ANSWERS``), shared by the threads that
        stalled together (one /health and one probe for all)."""
        watch, probe = self._watch, self._responsive
        if probe is None or watch is None:
            return Verdict.STALLED
        asked = self._clock()
        cause = f"no progress on the server for {self.stall_limit:g} s"
        with self._confirm_lock:
            if self._hung is None and self._probe_ok_at < asked:
                self.check_alive(cause)
                self._verdict = probe_watching(probe, watch)
                if self._verdict is Verdict.STALLED:
                    self._hung = self._hung_text(cause)
                self._probe_ok_at = self._clock()
            if self._hung is not None:
                raise ServerHungError(self._hung)
        watch.mark()
        return self._verdict

    def _hung_text(self, cause: str) -> str:
        return (
            f"managed server of {self.model_name!r} at {self.api_base} is hung: {cause} and a 1-token probe "
            "timed out too; the series resumes on restart"
        )
