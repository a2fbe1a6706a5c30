"""The one error hierarchy of deathmath-orchestrate.

Library code raises these; only the CLI turns them into messages and exit codes.

    OrchestratorError            base; exit code 1 unless a subclass says otherwise
    ├── InputError               bad input from the user (config, dataset, flags); exit code 2
    │   ├── ConfigError          configs/run.yaml and friends
    │   ├── DatasetError         a dataset that cannot be loaded or is malformed
    │   └── PlanError            a plan that cannot be made (model needs more GPUs than the pool)
    ├── ServerError              a managed vLLM server failed
    │   ├── ServerStartError     it exited or timed out before it was ready (carries cause and log tail)
    │   └── ServerDiedError      it died (or its engine died) while in use
    │       └── ServerHungError  it stopped answering (a request and a 1-token probe both timed out)
    ├── PortError                no free port could be reserved
    ├── EndpointError            an endpoint kept failing after all retries
    │   └── AuthError            GigaChat's OAuth gave no token (``retryable``: a network or server fault)
    ├── ResultsError             results could not be written (disk full, read-only directory)
    ├── WeightsError             a hub model's weights could not be fetched (gated, 404, offline, no disk space);
    │                            that model fails alone
    └── GradingError             the grader could not run at all (not a wrong answer)

Every message is one line that names the field, file or value and says how to fix it.
"""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(OrchestratorError):
    """Bad input from the user: exit code 2, nothing on disk touched."""

    exit_code = 2


class ConfigError(InputError):
    """A configuration file or value is wrong."""


class DatasetError(InputError):
    """A dataset cannot be loaded or is malformed."""


class PlanError(InputError):
    """The requested models cannot be placed on the available GPUs."""


class ServerError(OrchestratorError):
    """A managed vLLM server failed."""


class ServerStartError(ServerError):
    """The server exited or timed out before it was ready."""

    def __init__(self, message: str, cause: str = "unknown", log_tail: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.log_tail = log_tail


class ServerDiedError(ServerError):
    """The server (or its engine) died while in use."""


class ServerHungError(ServerDiedError):
    """The server's processes live but it answers nothing: a request and a 1-token probe both timed out."""


class PortError(OrchestratorError):
    """No free port could be reserved."""


class EndpointError(OrchestratorError):
    """An endpoint kept failing after all retries."""


class AuthError(EndpointError):
    """No access token: refused credentials or scope (final), or an OAuth endpoint that is down (``retryable``)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ResultsError(OrchestratorError):
    """Results could not be written."""


class WeightsError(OrchestratorError):
    """A hub model's weights could not be listed or downloaded; the model fails, the others run."""


class GradingError(OrchestratorError):
    """The grader itself could not run."""
