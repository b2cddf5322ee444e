"""The contract config: what the suite needs to know about an image (its data, requests and capabilities).

A YAML file, validated into frozen dataclasses; paths are relative to the file. Every error is one line
naming the field: ``contract config field 'serving.requests[0].content_type': expected a string, got 3``.
Unknown keys are rejected with a did-you-mean. ``load_config(None)`` gives the packaged defaults, which fit
the sample algorithm (``sagemaker-emulator-sample:latest``).

>>> cfg = load_config(None)
>>> cfg.capabilities.training, cfg.serving.requests[0].content_type
(True, 'text/csv')
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml

from emulator.constants import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_INVOCATIONS_TIMEOUT_S,
    MAX_INVOCATIONS_TIMEOUT_S,
    MAX_PAYLOAD_IN_MB,
    PROCESSING_DIR,
)

DEFAULT_CONFIG = Path(__file__).with_name("default_config.yaml")

#: Marks a ``str`` field that accepts a YAML number too (SageMaker passes hyperparameters as strings).
_NUMBER_OK = "number-ok"
Str = Annotated[str, _NUMBER_OK]


class ContractConfigError(ValueError):
    """Raised when a contract config file is missing, not YAML, or does not fit the schema."""


def media_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


# -- the schema -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Capabilities:
    """What the image claims; checks for what it does not claim are skipped with the reason."""

    training: bool = True
    serving: bool = True
    batch_transform: bool = True
    processing: bool = False
    #: Training runs on several hosts: t15 runs 2 (both exit 0, no artifact name clashes), t07 too.
    multi_host: bool = False
    #: Training (and processing) work with EnableNetworkIsolation: no network, no AWS credentials (t16).
    network_isolation: bool = False
    #: Training writes checkpoints to /opt/ml/checkpoints and a restart resumes from the seeded ones (t18).
    checkpointing: bool = False
    #: Training works with every channel in FastFile mode: the channel dirs mounted read-only (t13).
    fastfile: bool = False
    #: Training works with every channel in Pipe mode: <channel>_0 (a FIFO) read to EOF, <channel>_1 waited for (t14).
    pipe_mode: bool = False


@dataclass(frozen=True)
class Channel:
    """A training channel's data: a file or directory (``train: data/train.csv`` is short for ``{path: ...}``)."""

    __shorthand__: typing.ClassVar[str] = "path"

    path: str
    content_type: str | None = None
    #: Write the file's lines this many times into a temp file (a slower job for the SIGTERM checks).
    repeat: int = 1


@dataclass(frozen=True)
class FailingTraining:
    """A training job that must fail (t09/t10); fields left out are those of ``training``."""

    channels: dict[str, Channel] | None = None
    hyperparameters: dict[str, Str] | None = None
    environment: dict[str, Str] | None = None


@dataclass(frozen=True)
class SigtermTraining:
    """The job the SIGTERM checks (t11/t12) stop while it runs; fields left out are those of ``training``."""

    channels: dict[str, Channel] | None = None
    hyperparameters: dict[str, Str] | None = None
    #: Send SIGTERM when a log line matches this regex (a point where the model can be saved) ...
    after_log: str | None = None
    #: ... else this many seconds after the job was submitted.
    after_seconds: float = 0.0


@dataclass(frozen=True)
class CheckpointTraining:
    """The checkpoint check (t18): the main job with a CheckpointConfig, then again on the same location."""

    #: A regex that a log line of the restarted job matches when it picked up the seeded checkpoints.
    resume_log: str | None = None


@dataclass(frozen=True)
class MetricDefinition:
    """One AlgorithmSpecification.MetricDefinitions entry: a Name and a Regex whose group 1 is the value (t17)."""

    name: str
    regex: str


@dataclass(frozen=True)
class Training:
    """How to train the image: channels, hyperparameters and the special jobs of the training checks."""

    channels: dict[str, Channel] = field(default_factory=dict)
    hyperparameters: dict[str, Str] = field(default_factory=dict)
    environment: dict[str, Str] = field(default_factory=dict)
    instance_type: str = DEFAULT_INSTANCE_TYPE
    #: The bound on every training job of the suite: one still running then is stopped and fails t01 (`train`
    #: never exits). The job's MaxRuntimeInSeconds too.
    max_runtime_s: int = 300
    failing: FailingTraining = field(default_factory=FailingTraining)
    sigterm: SigtermTraining = field(default_factory=SigtermTraining)
    checkpointing: CheckpointTraining = field(default_factory=CheckpointTraining)
    #: The MetricDefinitions users give the image's jobs; t17 checks each against the main job's log.
    metric_definitions: list[MetricDefinition] = field(default_factory=list)


@dataclass(frozen=True)
class Expect:
    """The expected shape of a 2xx answer."""

    #: The answer's Content-Type (parameters such as ``; charset=utf-8`` are ignored); None: not checked.
    content_type: str | None = None
    #: "rows": one non-empty output line per non-empty input line; a number: exactly that many; None: not checked.
    lines: int | Literal["rows"] | None = "rows"
    #: Comma-separated fields per output line; None: not checked.
    columns: int | None = None


@dataclass(frozen=True)
class Request:
    """One ``POST /invocations`` request: inline ``body`` or ``body_file`` (relative to the config file)."""

    content_type: str
    body: str | None = None
    body_file: str | None = None
    accept: str | None = None
    expect: Expect = field(default_factory=Expect)


@dataclass(frozen=True)
class Serving:
    """How to serve the image: sample requests, a malformed one, and the model when the image does not train."""

    requests: list[Request] = field(default_factory=list)
    malformed_request: Request | None = None
    environment: dict[str, Str] = field(default_factory=dict)
    #: A model.tar.gz or model directory to serve; default: the model the training checks produced.
    model: str | None = None
    #: The Content-Types the image accepts (``text/*`` and ``*/*`` match many); default: those of ``requests``.
    #: s41 sends only types outside this list and expects a 4xx (415).
    accepted_content_types: list[str] | None = None

    def accepted_media_types(self) -> list[str]:
        """The media types the image accepts: ``accepted_content_types``, else those of the sample requests."""
        types_ = self.accepted_content_types
        if types_ is None:
            types_ = [r.content_type for r in self.requests]
        return list(dict.fromkeys(media_type(t) for t in types_))

    def accepts(self, content_type: str) -> bool:
        """Whether the image accepts ``content_type`` (parameters ignored; ``text/*`` and ``*/*`` are wildcards)."""
        kind, _, sub = media_type(content_type).partition("/")
        for accepted in self.accepted_media_types():
            a_kind, _, a_sub = accepted.partition("/")
            if a_kind in ("*", kind) and a_sub in ("*", sub):
                return True
        return False


@dataclass(frozen=True)
class Batch:
    """Records for the batch checks: one record per line of ``records_file`` (or ``records``)."""

    content_type: str = "text/csv"
    accept: str | None = "text/csv"
    records: str | None = None
    records_file: str | None = None
    #: The model gives the same answer for a record alone or in a mini-batch (the order check compares them).
    deterministic: bool = True
    #: CreateTransformJob's MaxPayloadInMB for b34 (None: the container's /execution-parameters, else 6).
    max_payload_mb: int | None = None
    #: ModelClientConfig.InvocationsTimeoutInSeconds: b34's bound for one invocation at max_payload_mb.
    invocations_timeout_s: int = DEFAULT_INVOCATIONS_TIMEOUT_S


@dataclass(frozen=True)
class ProcessingInput:
    """A processing input: local ``source`` (file or dir) mounted at ``local_path`` (under /opt/ml/processing/)."""

    name: str
    source: str
    local_path: str


@dataclass(frozen=True)
class ProcessingOutput:
    """A processing output dir (under /opt/ml/processing/) and the files it must hold afterwards."""

    name: str
    local_path: str
    expect_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FailingProcessing:
    """A processing job that must fail (p35); fields left out are those of ``processing``."""

    entrypoint: list[str] | None = None
    arguments: list[str] | None = None
    environment: dict[str, Str] | None = None
    inputs: list[ProcessingInput] | None = None


@dataclass(frozen=True)
class Processing:
    """How to run the image as a processing job (ContainerEntrypoint/ContainerArguments, inputs, outputs)."""

    entrypoint: list[str] | None = None
    arguments: list[str] | None = None
    environment: dict[str, Str] = field(default_factory=dict)
    inputs: list[ProcessingInput] = field(default_factory=list)
    outputs: list[ProcessingOutput] = field(default_factory=list)
    max_runtime_s: int = 900
    failing: FailingProcessing = field(default_factory=FailingProcessing)


@dataclass(frozen=True)
class ContractConfig:
    """The whole contract config. ``source`` is the file it came from (paths are relative to its directory)."""

    capabilities: Capabilities = field(default_factory=Capabilities)
    training: Training = field(default_factory=Training)
    serving: Serving = field(default_factory=Serving)
    batch: Batch = field(default_factory=Batch)
    processing: Processing = field(default_factory=Processing)
    source: Path = field(default=DEFAULT_CONFIG, metadata={"internal": True})

    def path(self, relative: str) -> Path:
        """A path of the config resolved against the config file's directory."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.source.parent / p).resolve()

    def request_body(self, request: Request) -> bytes:
        """The body of a sample request (inline or from its file)."""
        if request.body_file is not None:
            return self.path(request.body_file).read_bytes()
        return (request.body or "").encode("utf-8")

    def batch_records(self) -> list[str]:
        """The batch records, one per non-empty line."""
        text = self.path(self.batch.records_file).read_text("utf-8") if self.batch.records_file else self.batch.records
        return [line for line in (text or "").splitlines() if line.strip()]


# -- loading ----------------------------------------------------------------------------------------------
def load_config(path: str | Path | None) -> ContractConfig:
    """Load and validate a contract config (None: the packaged defaults for the sample algorithm).

    Raises:
        ContractConfigError: the file is missing or invalid; the message names the field.
    """
    source = Path(path).expanduser().resolve() if path is not None else DEFAULT_CONFIG
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContractConfigError(f"contract config {str(source)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContractConfigError(f"contract config {str(source)!r}{where}: not valid YAML ({problem})") from None
    config = from_mapping(raw if raw is not None else {}, source=source)
    _check_semantics(config)
    return config


def from_mapping(raw: Any, *, source: Path = DEFAULT_CONFIG) -> ContractConfig:
    """Validate an already-parsed mapping (paths are not checked; :func:`load_config` does that)."""
    _reject_placeholders(raw)
    config: ContractConfig = _convert(raw, ContractConfig, "")
    return dataclasses.replace(config, source=source)


#: What the init-contract starter holds where only the user knows the value: ``<FILL IN: what goes here>``.
PLACEHOLDER = re.compile(r"<FILL IN: ([^<>]*)>")
#: The capability each section of the config serves (a placeholder in an unclaimed section may be deleted).
_SECTION_CAPABILITY = {
    "training": "training",
    "serving": "serving",
    "batch": "batch_transform",
    "processing": "processing",
}


def _find_placeholder(value: Any, where: str) -> tuple[str, str, bool] | None:
    """The first placeholder in ``value``: (field, what goes there, whether it is a mapping's key)."""
    if isinstance(value, str):
        match = PLACEHOLDER.search(value)
        return (where, match.group(1).strip(), False) if match else None
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            match = PLACEHOLDER.search(k) if isinstance(k, str) else None
            if match:
                return (where, match.group(1).strip(), True)
            items.append((_join(where, str(k)), v))
    elif isinstance(value, list):
        items = [(f"{where}[{i}]", v) for i, v in enumerate(value)]
    for item_where, item in items:
        found = _find_placeholder(item, item_where)
        if found is not None:
            return found
    return None


def _reject_placeholders(raw: Any) -> None:
    """Fail on the first ``<FILL IN: ...>`` the starter left: it is no value the suite could run with."""
    found = _find_placeholder(raw, "")
    if found is None:
        return
    where, what, is_key = found
    message = f"{'a key is' if is_key else 'still'} the init-contract starter's placeholder: replace it with {what}"
    section = where.split(".", 1)[0].split("[", 1)[0]
    capability = _SECTION_CAPABILITY.get(section)
    claims = raw.get("capabilities") if isinstance(raw, Mapping) else None
    if capability is not None:
        claimed = claims.get(capability) if isinstance(claims, Mapping) else None
        if claimed is False or (claimed is None and not getattr(Capabilities(), capability)):
            message += f" (or delete the {section!r} section: capabilities.{capability} is false)"
    _fail(where, message)


def _fail(where: str, message: str) -> typing.NoReturn:
    raise ContractConfigError(f"contract config field {where or '(top level)'!r}: {message}")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}


def _describe_type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Annotated:
        return _describe_type(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return " or ".join(_describe_type(a) for a in get_args(tp))
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return _KIND_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extras = get_args(tp)
        if _NUMBER_OK in extras and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if _NUMBER_OK in extras and not isinstance(value, str):
            _fail(where, f"expected a string, got {_show(value)} (SageMaker passes these as strings; quote it)")
        return _convert(value, base, where)
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors: list[ContractConfigError] = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(value, option, where)
            except ContractConfigError as exc:
                errors.append(exc)
        # A nested error (inside a mapping or list) says more than "expected X or Y".
        nested = [e for e in errors if f"{where!r}" not in str(e)]
        if nested:
            raise nested[0]
        _fail(where, f"expected {_describe_type(tp)}, got {_show(value)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        _fail(where, f"expected {_describe_type(tp)}, got {_show(value)}")
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            _fail(where, f"expected a list, got {_show(value)}")
        return [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item_tp = get_args(tp)
        if not isinstance(value, Mapping):
            _fail(where, f"expected a mapping, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                _fail(_join(where, str(k)), "keys must be strings")
            out[k] = _convert(v, item_tp, _join(where, k))
        return out
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _convert_dataclass(value, tp, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a schema bug
        raise TypeError(f"unsupported type {tp!r} in the contract config schema")
    _fail(where, f"expected {_describe_type(tp)}, got {_show(value)}")


def _convert_dataclass(value: Any, cls: type[Any], where: str) -> Any:
    shorthand = getattr(cls, "__shorthand__", None)
    if shorthand is not None and not isinstance(value, Mapping):
        value = {shorthand: value}
    if not isinstance(value, Mapping):
        _fail(where, f"expected a mapping, got {_show(value)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    known = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")]
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            _fail(_join(where, str(key)), f"unknown key; {hint}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in value:
            kwargs[f.name] = _convert(value[f.name], hints[f.name], _join(where, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            _fail(_join(where, f.name), "missing (required)")
    return cls(**kwargs)


_MEDIA_TYPE = re.compile(r"[a-z0-9*][\w.+*-]*/[a-z0-9*][\w.+*-]*")


def _check_semantics(config: ContractConfig) -> None:
    """What the types cannot say: files exist, paths are where SageMaker allows them, regexes compile."""

    def exists(rel: str, where: str) -> None:
        if not config.path(rel).exists():
            _fail(where, f"{rel!r} does not exist (paths are relative to {str(config.source.parent)!r})")

    def channels(chs: Mapping[str, Channel] | None, where: str) -> None:
        for name, ch in (chs or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9.\-_]{1,64}", name):
                _fail(f"{where}.{name}", "channel names are 1-64 characters of A-Z a-z 0-9 . - _")
            exists(ch.path, f"{where}.{name}.path")
            if ch.repeat < 1:
                _fail(f"{where}.{name}.repeat", f"expected an integer >= 1, got {ch.repeat}")

    caps, tr = config.capabilities, config.training
    channels(tr.channels, "training.channels")
    channels(tr.failing.channels, "training.failing.channels")
    channels(tr.sigterm.channels, "training.sigterm.channels")
    if tr.sigterm.after_log is not None:
        try:
            re.compile(tr.sigterm.after_log)
        except re.error as exc:
            _fail("training.sigterm.after_log", f"not a regular expression ({exc})")
    if tr.sigterm.after_seconds < 0:
        _fail("training.sigterm.after_seconds", "expected a number >= 0")
    if tr.max_runtime_s < 1:
        _fail("training.max_runtime_s", "expected an integer >= 1")
    for i, md in enumerate(tr.metric_definitions):
        where = f"training.metric_definitions[{i}]"
        if not md.name.strip():
            _fail(f"{where}.name", "expected a non-empty metric name")
        try:
            re.compile(md.regex)
        except re.error as exc:
            _fail(f"{where}.regex", f"not a regular expression ({exc})")
    if caps.multi_host and not caps.training:
        _fail("capabilities.multi_host", "multi-host is a training capability: claim training too, or set it false")
    if caps.checkpointing:
        if not caps.training:
            _fail("capabilities.checkpointing", "a training capability: claim training too, or set it false")
        if tr.checkpointing.resume_log is None:
            _fail(
                "training.checkpointing.resume_log",
                "give a regex for the line a restarted job prints when it resumes from a checkpoint (t18)",
            )
        try:
            re.compile(tr.checkpointing.resume_log)
        except re.error as exc:
            _fail("training.checkpointing.resume_log", f"not a regular expression ({exc})")
    for name in ("fastfile", "pipe_mode"):
        if getattr(caps, name) and not caps.training:
            _fail(f"capabilities.{name}", "an input mode is a training capability: claim training too, or set it false")
    sv = config.serving
    requests = [(f"serving.requests[{i}]", r) for i, r in enumerate(sv.requests)]
    if sv.malformed_request is not None:
        requests.append(("serving.malformed_request", sv.malformed_request))
    for where, r in requests:
        if (r.body is None) == (r.body_file is None):
            _fail(where, "give exactly one of 'body' and 'body_file'")
        if r.body_file is not None:
            exists(r.body_file, f"{where}.body_file")
    if caps.serving and not sv.requests:
        _fail("serving.requests", "the image claims serving: give at least one sample request")
    if caps.serving and sv.malformed_request is None:
        _fail("serving.malformed_request", "the image claims serving: give a request that must get a 4xx")
    if sv.model is not None:
        exists(sv.model, "serving.model")
    for i, accepted in enumerate(sv.accepted_content_types or []):
        if not _MEDIA_TYPE.fullmatch(media_type(accepted)):
            _fail(f"serving.accepted_content_types[{i}]", f"expected a media type like 'text/csv', got {accepted!r}")
    if sv.accepted_content_types is not None:
        for where, r in requests[: len(sv.requests)]:
            if not sv.accepts(r.content_type):
                _fail(
                    f"{where}.content_type",
                    f"{r.content_type!r} is not in serving.accepted_content_types {sv.accepted_content_types}: "
                    "add it there (s41 sends only types the image does not accept)",
                )
    if config.batch.records_file is not None:
        exists(config.batch.records_file, "batch.records_file")
    bt = config.batch
    if bt.max_payload_mb is not None and not 0 <= bt.max_payload_mb <= MAX_PAYLOAD_IN_MB:
        _fail("batch.max_payload_mb", f"expected an integer from 0 to {MAX_PAYLOAD_IN_MB} (CreateTransformJob's range)")
    if not 1 <= bt.invocations_timeout_s <= MAX_INVOCATIONS_TIMEOUT_S:
        _fail(
            "batch.invocations_timeout_s",
            f"expected an integer from 1 to {MAX_INVOCATIONS_TIMEOUT_S} (ModelClientConfig's range)",
        )
    if caps.batch_transform and not config.batch_records():
        _fail("batch.records", "the image claims batch_transform: give records (or records_file)")
    pr = config.processing
    for i, inp in enumerate([*pr.inputs, *(pr.failing.inputs or [])]):
        where = f"processing.inputs[{i}]" if i < len(pr.inputs) else f"processing.failing.inputs[{i - len(pr.inputs)}]"
        exists(inp.source, f"{where}.source")
        if not inp.local_path.startswith(PROCESSING_DIR + "/"):
            _fail(f"{where}.local_path", f"{inp.local_path!r} must start with {PROCESSING_DIR}/ (SageMaker's rule)")
    for i, out in enumerate(pr.outputs):
        if not out.local_path.startswith(PROCESSING_DIR + "/"):
            _fail(
                f"processing.outputs[{i}].local_path",
                f"{out.local_path!r} must start with {PROCESSING_DIR}/ (SageMaker's rule)",
            )
    if caps.processing and not pr.outputs:
        _fail("processing.outputs", "the image claims processing: declare at least one output")
    if caps.training and not tr.channels:
        _fail("training.channels", "the image claims training: give at least one channel with sample data")


# -- the starter file -------------------------------------------------------------------------------------
_STARTER = """\
# SageMaker contract suite config (run: pytest --image IMAGE --contract-config THIS_FILE).
# Paths are relative to this file. Docs: docs/contract-suite.md in the sagemaker-emulator project.
# Replace every "<FILL IN: ...>" with your image's value: the suite refuses to start while one is left.

# What the image claims. Checks for capabilities set to false are skipped, with the reason.
capabilities:
  training: true           # `docker run IMAGE train` (t01-t12)
  serving: true            # `docker run IMAGE serve`, /ping and /invocations on 8080 (s19-s28, s30)
  batch_transform: true    # /execution-parameters and multi-record requests (b31-b33)
  processing: false        # processing jobs (p35-p38)
  multi_host: false        # true: training works on 2 hosts, no artifact name clashes (t15; t07 uses 2 hosts)
  network_isolation: false # true: training/processing work with no network and no AWS credentials (t16)
  checkpointing: false     # true: checkpoints in /opt/ml/checkpoints, resumed on a restart (t18; see below)
  fastfile: false          # true: training works with its channels in FastFile mode, mounted read-only (t13)
  pipe_mode: false         # true: training reads Pipe-mode FIFOs <channel>_0, _1, ... (t14)

training:
  channels:                # a file F arrives as /opt/ml/input/data/<name>/F; a directory's files in that dir
    train: "<FILL IN: a small file or directory of training data, relative to this file, e.g. data/train.csv>"
    # validation: {path: data/validation.csv, content_type: text/csv}
  hyperparameters:         # passed as strings, as SageMaker does
    "<FILL IN: a hyperparameter your image reads, or write hyperparameters: {}>": "<FILL IN: its value, quoted>"
  environment: {}
  instance_type: ml.m5.large
  max_runtime_s: 900       # StoppingCondition.MaxRuntimeInSeconds of every training job
  failing:                 # a job that must fail (t09, t10); left-out fields are those above
    channels: {}           # e.g. no 'train' channel
  sigterm:                 # the job that is stopped with SIGTERM while it runs (t11, t12)
    # channels: {train: {path: data/train.csv, repeat: 1000}}   # more data: a slower job
    # SIGTERM when a log line matches this regex (the model can be saved by then):
    after_log: "<FILL IN: a regex for a line train logs once a model could be saved, e.g. epoch 1>"
    # after_seconds: 5     # ... or this long after the job was submitted
  # metric_definitions:    # t17: each regex matches a line `train` prints; its group 1 is the value
  #   - {name: "train:loss", regex: "loss=([0-9.]+);"}
  # checkpointing:         # t18, with capabilities.checkpointing: true
  #   resume_log: "resumed from checkpoint"   # a regex for the line a restart prints when it found checkpoints

serving:
  environment: {}
  # model: model.tar.gz    # serve this when the image does not train (default: the model t01 trained)
  requests:                # each must get a 2xx answer of the expected shape (s21)
    - content_type: text/csv
      accept: text/csv
      body: "<FILL IN: a body your image answers with 2xx, e.g. two CSV rows of its features>"  # or body_file
      expect:
        content_type: text/csv
        lines: rows        # one output line per input row (or a number, or null)
        columns: null      # fields per output line (or null)
  malformed_request:       # must get a 4xx, and the server must keep serving (s23)
    content_type: text/csv
    body: "<FILL IN: a body of that Content-Type your image must refuse with 4xx, e.g. a row missing a feature>"
  # accepted_content_types: [text/csv]   # every type the image accepts (default: those of requests); s41
  #                                      # sends another one and expects 415

batch:                     # records for the batch checks (b33, b34): one record per line
  content_type: text/csv
  accept: text/csv
  records_file: "<FILL IN: a file of records, one per line, relative to this file, e.g. data/batch.csv>"
  deterministic: true      # a record alone and in a mini-batch gets the same answer
  # max_payload_mb: 6      # b34: your jobs' MaxPayloadInMB (default: the image's /execution-parameters, else 6)
  invocations_timeout_s: 600   # b34: InvocationsTimeoutInSeconds, the bound for one such request

# processing:              # uncomment with capabilities.processing: true (p35-p38)
#   entrypoint: ["<FILL IN: the ContainerEntrypoint, e.g. python3>", "<FILL IN: e.g. /opt/program/process.py>"]
#   arguments: []
#   inputs:                # a file F arrives as <local_path>/F
#     - {name: raw, source: "<FILL IN: an input file or dir>", local_path: /opt/ml/processing/input/raw}
#   outputs:
#     - {name: out, local_path: /opt/ml/processing/output/out, expect_files: []}
#   failing:               # a job that must exit non-zero (p35)
#     inputs: []
"""


def starter_yaml() -> str:
    """A commented starter config (``python -m emulator init-contract [PATH]`` writes it)."""
    return _STARTER
