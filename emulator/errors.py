"""The emulator's error tree: one root, each error carries its evidence and a hint.

Every message is one line that names the problem and the fix; the CLI prints ``str(error)`` and
exits with ``error.exit_code``, so user errors never show a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3
EXIT_INTERRUPTED = 130


class EmulatorError(Exception):
    """Raised for every error the emulator reports to its user."""

    exit_code = EXIT_BAD_INPUT


class InvalidSpec(EmulatorError, ValueError):
    """Raised when a job spec, a flag or a config file does not fit the SageMaker API shape."""

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


InvalidConfig = InvalidSpec


class InputNotFound(EmulatorError, FileNotFoundError):
    """Raised when a local path or S3 location named in a spec does not exist."""


class DockerUnavailable(EmulatorError):
    """Raised when no Docker engine answers."""

    exit_code = EXIT_ENVIRONMENT


class GpuUnavailable(EmulatorError):
    """Raised when an instance type with GPUs would run on an engine without GPUs (and no CPU run was allowed)."""

    exit_code = EXIT_ENVIRONMENT


class PortUnreachable(EmulatorError):
    """Raised when a port a remote engine published (on its host's 127.0.0.1) cannot be reached from here."""

    exit_code = EXIT_ENVIRONMENT


class ImageNotFound(EmulatorError):
    """Raised when the image a job names is not present locally and cannot be pulled."""


class ContainerFailed(EmulatorError):
    """Raised when a container exits in a way that stops the emulator from going on."""

    exit_code = EXIT_JOB_FAILED

    def __init__(
        self,
        message: str,
        *,
        image: str = "",
        command: list[str] | None = None,
        exit_code: int | None = None,
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.image = image
        self.command = command or []
        self.container_exit_code = exit_code
        self.log_tail = log_tail


class EndpointNotReady(ContainerFailed):
    """Raised when a serving container does not pass the /ping health check in time."""

    #: With ``Endpoint(fail_fast=True)``: the sure sign that ended the start early (``loopback-only``,
    #: ``other-port``, ``ping-status``, ``ping-slow``; see emulator.serving.readiness), else "".
    cause: str = ""
    #: ... and its fix, one sentence.
    fix: str = ""


class ValidationError(EmulatorError):
    """Raised like sagemaker-runtime's ValidationError (HTTP 400): a request the platform refuses itself."""

    status_code = 400


class ModelError(EmulatorError):
    """Raised like sagemaker-runtime's ModelError (HTTP 424): the container answered 4xx/5xx or not in time."""

    exit_code = EXIT_JOB_FAILED
    status_code = 424

    def __init__(self, message: str, *, original_status_code: int, original_message: str, log_stream: str = "") -> None:
        super().__init__(message)
        self.original_status_code = original_status_code
        self.original_message = original_message
        self.log_stream = log_stream

    def to_dict(self) -> dict[str, object]:
        """The error in the shape botocore gives ``ClientError.response`` for a ModelError."""
        return {
            "Error": {"Code": "ModelError", "Message": str(self)},
            "OriginalStatusCode": self.original_status_code,
            "OriginalMessage": self.original_message,
            "LogStreamArn": self.log_stream,
            "ResponseMetadata": {"HTTPStatusCode": self.status_code},
        }


class S3Error(EmulatorError):
    """Raised when an S3 transfer fails (no such bucket or key, endpoint unreachable)."""


class Interrupted(EmulatorError):
    """Raised when the user pressed Ctrl-C; everything the emulator started has been removed."""

    exit_code = EXIT_INTERRUPTED
