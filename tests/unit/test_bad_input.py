"""Bad input, as a table (issue 12): every case ends with one line naming the problem and the fix, its documented
exit code (CLI) or one of the emulator's own error classes (Python API), no traceback, nothing of the user's
touched and nothing left in the work dir. No engine: every case is refused before a container could start (the
cases that need the engine are in tests/integration/test_bad_input_engine.py).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from emulator import errors
from emulator.cli.app import main
from emulator.config import EmulatorConfig
from emulator.errors import EmulatorError, InputNotFound, InvalidConfig, InvalidSpec, ValidationError
from emulator.processing import ProcessingJob
from emulator.runtime import names
from emulator.serving import Endpoint
from emulator.serving.invocations import invoke_endpoint
from emulator.spec import load_spec, validate
from emulator.storage.artifacts import extract_model
from emulator.storage.s3 import S3
from emulator.training import TrainingJob
from emulator.transform import TransformJob

IMAGE = "bad-input-test/never-pulled:latest"  # never reached: every case fails before the engine
URL = "http://127.0.0.1:9"  # the discard port: never reached either

# -- the user's workspace -------------------------------------------------------------------------------------


def _workspace(root: Path) -> None:
    """What every case may point at: data, a file where a directory belongs, broken specs."""
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("1,2\n")
    (root / "secret").mkdir()
    (root / "secret" / "b.csv").write_text("3,4\n")
    (root / "afile").write_text("not a directory\n")
    (root / "not-utf8.yaml").write_bytes(b"\xff\xfe TrainingJobName: x\n")
    (root / "broken.yaml").write_text("a: [1, 2\n")
    (root / "broken.json").write_text('{"a": ')
    (root / "list.yaml").write_text("- 1\n- 2\n")
    (root / "model.json").write_text("{not json")
    (root / "not-a-tar.tar.gz").write_bytes(b"plain bytes")
    (root / "big.bin").write_bytes(b"x" * (6 * 2**20 + 1))
    specs: dict[str, dict[str, Any]] = {
        "no-channel-name": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE},
            "InputDataConfig": [{"DataSource": {"S3DataSource": {"S3Uri": "data", "S3DataType": "S3Prefix"}}}],
        },
        "channels-not-a-list": {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "InputDataConfig": "data"},
        "unknown-field": {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "Epochs": 3},
        "bad-mode": {"AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "Files"}},
        "algo-string": {"AlgorithmSpecification": IMAGE},
        "hp-not-string": {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "HyperParameters": {"epochs": 3}},
        "augmented-file-mode": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3Uri": "m.jsonl",
                            "S3DataType": "AugmentedManifestFile",
                            "AttributeNames": ["source-ref"],
                        }
                    },
                }
            ],
        },
        "checkpoint-s3": {
            "AlgorithmSpecification": {"TrainingImage": IMAGE},
            "OutputDataConfig": {"S3OutputPath": "out"},
            "CheckpointConfig": {"S3Uri": "s3://bucket/checkpoints"},
        },
        "marketplace": {"AlgorithmSpecification": {"AlgorithmName": "xgb", "TrainingImage": IMAGE}},
        "processing-inputs-string": {"AppSpecification": {"ImageUri": IMAGE}, "ProcessingInputs": "data"},
    }
    for name, body in specs.items():
        (root / f"{name}.yaml").write_text(json.dumps(body))


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix"}}}


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry under ``root`` (but the work dir): its mode and, for files, its bytes."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == "work" or rel.startswith("work/"):
            continue
        st = p.lstat()
        out[rel] = (st.st_mode, p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The user's folder (the current directory), with the emulator's work dir inside it; nothing may change."""
    _workspace(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_S3", "SM_EMULATOR_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SM_EMULATOR_WORK_DIR", str(tmp_path / "work"))
    before = _snapshot(tmp_path)
    yield tmp_path
    assert _snapshot(tmp_path) == before, "the user's files changed"
    assert list((tmp_path / "work").iterdir()) == [], "the emulator left something in its work dir"


def _deny(monkeypatch: pytest.MonkeyPatch, denied: str) -> None:
    """This user may not read (or write) ``denied``: os.access says no, as for a non-root user (tests run as root)."""
    real = os.access

    def access(path: Any, mode: int, **kw: Any) -> bool:
        if os.path.abspath(os.fspath(path)).startswith(os.path.abspath(denied)):
            return False
        return real(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)


def _unreadable_file(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Reading ``name`` fails with EACCES (as root, chmod 000 would not stop the test)."""
    real = Path.read_text

    def read_text(self: Path, *a: Any, **kw: Any) -> str:
        if self.name == name:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", read_text)


# -- the table ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cli:
    """``python -m emulator ARGV``: exits ``code`` with one stderr line that contains ``says``."""

    argv: list[str]
    says: str
    code: int = errors.EXIT_BAD_INPUT
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[pytest.MonkeyPatch], None] | None = None


@dataclass(frozen=True)
class Api:
    """A Python API call that raises ``raises`` (an emulator error class) with ``says`` in its one-line message."""

    call: Callable[[Path], object]
    raises: type[EmulatorError]
    says: str
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[pytest.MonkeyPatch], None] | None = None


TRAIN = ["train", "--image", IMAGE, "-q"]
PROCESS = ["process", "--image", IMAGE, "-q"]
TRANSFORM = ["transform", "--image", IMAGE, "--input", "data", "--output", "preds", "-q"]

CLI_CASES: dict[str, Cli] = {
    # the command line itself
    "no-command": Cli([], "required: COMMAND"),
    "unknown-command": Cli(["trian"], "invalid choice"),
    "unknown-flag": Cli([*TRAIN, "--epochs", "3"], "unrecognized arguments"),
    "kv-without-equals": Cli([*TRAIN, "--channel", "data"], "is not KEY=VALUE"),
    "int-flag-not-int": Cli([*TRAIN, "--max-runtime", "abc"], "invalid int value"),
    "bad-choice": Cli([*TRANSFORM, "--split-type", "Lines"], "invalid choice"),
    # train: spec files
    "train-no-image": Cli(["train", "-q"], "no training image"),
    "spec-missing": Cli(["train", "--spec", "nope.yaml"], "does not exist"),
    "spec-is-a-directory": Cli(["train", "--spec", "data"], "is a directory"),
    "spec-not-utf8": Cli(["train", "--spec", "not-utf8.yaml"], "not UTF-8"),
    "spec-unreadable": Cli(
        ["train", "--spec", "unknown-field.yaml"],
        "cannot be read",
        setup=lambda m: _unreadable_file(m, "unknown-field.yaml"),
    ),
    "spec-broken-yaml": Cli(["train", "--spec", "broken.yaml"], "not valid YAML"),
    "spec-broken-json": Cli(["train", "--spec", "broken.json"], "not valid JSON"),
    "spec-not-a-mapping": Cli(["train", "--spec", "list.yaml"], "must hold a mapping"),
    "spec-channel-without-name": Cli(["train", "--spec", "no-channel-name.yaml"], "ChannelName: missing"),
    "spec-channels-not-a-list": Cli(["train", "--spec", "channels-not-a-list.yaml"], "must be a list"),
    "spec-unknown-field": Cli(["train", "--spec", "unknown-field.yaml"], "Epochs: unknown field"),
    "spec-bad-enum": Cli(["train", "--spec", "bad-mode.yaml"], "did you mean 'File'"),
    "spec-block-not-a-mapping": Cli(["train", "--spec", "algo-string.yaml"], "expected a mapping"),
    "spec-hyperparameter-not-string": Cli(["train", "--spec", "hp-not-string.yaml"], "expected a string"),
    "spec-augmented-file-mode": Cli(["train", "--spec", "augmented-file-mode.yaml"], "needs InputMode Pipe"),
    "spec-marketplace": Cli(["train", "--spec", "marketplace.yaml"], "marketplace algorithms"),
    # train: flags
    "channel-twice": Cli([*TRAIN, "--channel", "t=data", "--channel", "t=data"], "more than once"),
    "stop-grace-negative": Cli([*TRAIN, "--stop-grace", "-1"], "--stop-grace -1"),
    "stop-grace-nan": Cli([*TRAIN, "--stop-grace", "nan"], "--stop-grace nan"),
    "max-runtime-zero": Cli([*TRAIN, "--max-runtime", "0"], "MaxRuntimeInSeconds: 0"),
    "max-runtime-huge": Cli([*TRAIN, "--max-runtime", str(10**12)], "28 days"),
    "instance-count-zero": Cli([*TRAIN, "--instance-count", "0"], "InstanceCount: must be at least 1"),
    "instance-type-typo": Cli([*TRAIN, "--instance-type", "ml.m5.larg"], "did you mean 'ml.m5.large'"),
    "job-name-pattern": Cli([*TRAIN, "--job-name", "my job!"], "TrainingJobName"),
    "metric-bad-regex": Cli([*TRAIN, "--metric", "loss=(["], "fix the regular expression"),
    "hp-empty-key": Cli([*TRAIN, "--hp", "=3"], "is not KEY=VALUE"),
    # train: locations (the pre-flight step)
    "output-is-a-file": Cli([*TRAIN, "--output", "afile"], "which is a file"),
    "output-under-a-file": Cli([*TRAIN, "--output", "afile/models"], "which is a file"),
    "output-not-writable": Cli(
        [*TRAIN, "--output", "secret/models"], "not writable", setup=lambda m: _deny(m, "secret")
    ),
    "output-s3-without-endpoint": Cli([*TRAIN, "--output", "s3://bucket/models"], "--s3-endpoint"),
    "channel-missing": Cli([*TRAIN, "--channel", "t=nothing-here"], "does not exist"),
    "channel-unreadable": Cli(
        [*TRAIN, "--channel", "t=secret", "--output", "out"], "not readable", setup=lambda m: _deny(m, "secret")
    ),
    "checkpoint-s3-without-endpoint": Cli(["train", "--spec", "checkpoint-s3.yaml"], "output 'checkpoints'"),
    # the environment
    "aws-profile-missing": Cli([*TRAIN, "--output", "afile"], "which is a file", env={"AWS_PROFILE": "nope"}),
    "env-float-not-a-number": Cli(TRAIN, "is not a valid float", env={"SM_EMULATOR_TRAINING_STOP_GRACE_S": "soon"}),
    "env-bool-not-a-bool": Cli(TRAIN, "is not a valid bool", env={"SM_EMULATOR_KEEP_CONTAINERS": "maybe"}),
    "env-negative-grace": Cli(TRAIN, "0 or more", env={"SM_EMULATOR_SERVING_STOP_GRACE_S": "-5"}),
    # process
    "process-no-image": Cli(["process", "-q"], "no image"),
    "process-input-no-source": Cli([*PROCESS, "--input", "raw="], "no source"),
    "process-output-no-destination": Cli([*PROCESS, "--output", "o=/opt/ml/processing/output/o"], "no destination"),
    "process-output-is-a-file": Cli([*PROCESS, "--output", "o=afile"], "is a file"),
    "process-output-s3-without-endpoint": Cli([*PROCESS, "--output", "o=s3://bucket/o"], "--s3-endpoint"),
    "process-input-missing": Cli([*PROCESS, "--input", "raw=nothing-here"], "does not exist"),
    "process-input-unreadable": Cli(
        [*PROCESS, "--input", "raw=secret"], "not readable", setup=lambda m: _deny(m, "secret")
    ),
    "process-stop-grace-negative": Cli([*PROCESS, "--stop-grace", "-3"], "--stop-grace -3"),
    "process-max-runtime-over-api-max": Cli([*PROCESS, "--max-runtime", "999999999"], "above the maximum 777600"),
    "process-entrypoint-unclosed-quote": Cli([*PROCESS, "--entrypoint", 'python "run.py'], "No closing quotation"),
    "process-spec-not-utf8": Cli(["process", "--spec", "not-utf8.yaml"], "not UTF-8"),
    "process-inputs-not-a-list": Cli(["process", "--spec", "processing-inputs-string.yaml"], "expected a list"),
    # transform
    "transform-no-input": Cli(["transform", "--image", IMAGE, "--output", "preds"], "no input"),
    "transform-no-output": Cli(["transform", "--image", IMAGE, "--input", "data"], "no output"),
    "transform-no-model": Cli(["transform", "--input", "data", "--output", "preds"], "no model"),
    "transform-output-is-a-file": Cli([*TRANSFORM, "--output", "afile"], "is a file"),
    "transform-output-s3-without-endpoint": Cli([*TRANSFORM, "--output", "s3://bucket/preds"], "--s3-endpoint"),
    "transform-input-unreadable": Cli(
        [*TRANSFORM, "--input", "secret"], "not readable", setup=lambda m: _deny(m, "secret")
    ),
    "transform-max-concurrent-negative": Cli([*TRANSFORM, "--max-concurrent", "-1"], "MaxConcurrentTransforms"),
    "transform-max-payload-over-100": Cli([*TRANSFORM, "--max-payload", "200"], "MaxPayloadInMB 200"),
    "transform-env-name-with-space": Cli([*TRANSFORM, "--env", "A B=1"], "'A B' does not match the pattern"),
    "serve-env-name-with-space": Cli(["serve", "--image", IMAGE, "--env", "A B=1"], "'A B' is not a variable name"),
    "transform-model-json-broken": Cli([*TRANSFORM, "--model-data", "model.json"], "not valid JSON"),
    # serve and invoke
    "serve-no-image": Cli(["serve", "-q"], "no serving image"),
    "serve-startup-timeout-negative": Cli(["serve", "--image", IMAGE, "--startup-timeout", "-1"], "0 or more"),
    "serve-model-spec-missing": Cli(["serve", "--model-spec", "nope.yaml"], "does not exist"),
    "invoke-no-body": Cli(["invoke", URL], "one of the arguments --body --body-file is required"),
    "invoke-no-endpoint": Cli(["invoke", "--body", "x"], "name an endpoint"),
    "invoke-crlf-content-type": Cli(["invoke", URL, "--body", "x", "--content-type", "a\r\nb"], "control character"),
    "invoke-non-ascii-accept": Cli(["invoke", URL, "--body", "x", "--accept", "tëxt/csv"], "not ASCII"),
    "invoke-body-file-missing": Cli(["invoke", URL, "--body-file", "nope.csv"], "cannot read the body"),
    "invoke-body-over-6mib": Cli(["invoke", URL, "--body-file", "big.bin"], "over InvokeEndpoint's limit"),
    "invoke-timeout-zero": Cli(["invoke", URL, "--body", "x", "--timeout", "0"], "--timeout 0"),
}

API_CASES: dict[str, Api] = {
    "training-request-not-a-mapping": Api(lambda t: TrainingJob(123), InvalidSpec, "must be a mapping"),  # type: ignore[arg-type]
    "training-block-not-a-mapping": Api(
        lambda t: TrainingJob({"AlgorithmSpecification": IMAGE}), InvalidSpec, "expected a mapping"
    ),
    "training-spec-path-missing": Api(lambda t: TrainingJob(t / "nope.yaml"), InvalidSpec, "does not exist"),
    "training-spec-not-utf8": Api(lambda t: TrainingJob(t / "not-utf8.yaml"), InvalidSpec, "not UTF-8"),
    "training-channel-twice": Api(
        lambda t: TrainingJob(
            {
                "AlgorithmSpecification": {"TrainingImage": IMAGE},
                "InputDataConfig": [_channel("t", "data"), _channel("t", "data")],
            }
        ),
        InvalidSpec,
        "channel names must be unique",
    ),
    "training-max-runtime-huge": Api(
        lambda t: TrainingJob(
            {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "StoppingCondition": {"MaxRuntimeInSeconds": 10**12}}
        ),
        InvalidSpec,
        "28 days",
    ),
    "training-output-is-a-file": Api(
        lambda t: TrainingJob(
            {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "OutputDataConfig": {"S3OutputPath": str(t / "afile")}}
        ),
        InvalidSpec,
        "which is a file",
    ),
    "training-output-s3-temporary": Api(
        lambda t: TrainingJob(
            {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "OutputDataConfig": {"S3OutputPath": "s3://b/m"}}
        ),
        InvalidSpec,
        "no S3 endpoint is configured",
    ),
    "training-channel-missing": Api(
        lambda t: TrainingJob(
            {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "InputDataConfig": [_channel("t", "nothing")]}
        ),
        InputNotFound,
        "does not exist",
    ),
    "training-channel-unreadable": Api(
        lambda t: TrainingJob(
            {"AlgorithmSpecification": {"TrainingImage": IMAGE}, "InputDataConfig": [_channel("t", "secret")]}
        ),
        InvalidSpec,
        "not readable",
        setup=lambda m: _deny(m, "secret"),
    ),
    "processing-inputs-not-a-list": Api(
        lambda t: ProcessingJob({"AppSpecification": {"ImageUri": IMAGE}, "ProcessingInputs": "data"}),
        InvalidSpec,
        "expected a list",
    ),
    "processing-output-is-a-file": Api(
        lambda t: ProcessingJob(
            {
                "AppSpecification": {"ImageUri": IMAGE},
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "o",
                            "S3Output": {
                                "S3Uri": str(t / "afile"),
                                "LocalPath": "/opt/ml/processing/output/o",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ]
                },
            }
        ),
        InvalidSpec,
        "is a file",
    ),
    "transform-output-is-a-file": Api(
        lambda t: TransformJob(
            {
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "data"}}},
                "TransformOutput": {"S3OutputPath": "afile"},
            },
            image=IMAGE,
        ),
        InvalidSpec,
        "is a file",
    ),
    "transform-output-s3-temporary": Api(
        lambda t: TransformJob(
            {
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "data"}}},
                "TransformOutput": {"S3OutputPath": "s3://b/p"},
            },
            image=IMAGE,
        ),
        InvalidSpec,
        "no S3 endpoint is configured",
    ),
    "config-negative-grace": Api(lambda t: EmulatorConfig(training_stop_grace_s=-1), InvalidConfig, "0 or more"),
    "config-nan-timeout": Api(lambda t: EmulatorConfig(startup_timeout_s=float("nan")), InvalidConfig, "0 or more"),
    "endpoint-zero-startup-timeout": Api(lambda t: Endpoint(IMAGE, startup_timeout_s=0), InvalidSpec, "positive"),
    "invoke-body-not-bytes": Api(lambda t: invoke_endpoint(URL, 123), ValidationError, "pass bytes"),  # type: ignore[arg-type]
    "invoke-crlf-header": Api(
        lambda t: invoke_endpoint(URL, b"x", content_type="a\r\nb"), ValidationError, "control character"
    ),
    "invoke-non-ascii-header": Api(
        lambda t: invoke_endpoint(URL, b"x", custom_attributes="é"), ValidationError, "not ASCII"
    ),
    "invoke-body-over-6mib": Api(lambda t: invoke_endpoint(URL, b"x" * (6 * 2**20 + 1)), ValidationError, "6 MiB"),
    "load-spec-not-a-path": Api(lambda t: load_spec(3.5), InvalidSpec, "not float"),  # type: ignore[arg-type]
    "model-not-a-tarball": Api(
        lambda t: extract_model(str(t / "not-a-tar.tar.gz"), t / "work" / "m"), InvalidSpec, "not a readable .tar.gz"
    ),
    "aws-profile-missing-real-endpoint": Api(
        lambda t: S3(EmulatorConfig(s3_endpoint_url=URL)).client,
        InvalidConfig,
        "unset AWS_PROFILE",
        env={"AWS_PROFILE": "nope"},
    ),
}


def _one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("case", list(CLI_CASES.values()), ids=list(CLI_CASES))
def test_cli_bad_input(
    case: Cli, ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.setup:
        case.setup(monkeypatch)
    try:
        code = main(case.argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    line = _one_line(err)
    assert code == case.code, err
    assert line.startswith("error: "), line
    assert case.says in line, line


@pytest.mark.parametrize("case", list(API_CASES.values()), ids=list(API_CASES))
def test_api_bad_input(case: Api, ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    if case.setup:
        case.setup(monkeypatch)
    with pytest.raises(EmulatorError) as info:
        case.call(ws)
    assert isinstance(info.value, case.raises), repr(info.value)
    message = str(info.value)
    assert "\n" not in message
    assert case.says in message, message
    # Also a ValueError/FileNotFoundError where that is what it is, but never one of those alone.
    assert type(info.value).__module__ == "emulator.errors"


def test_the_table_has_at_least_60_cases() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 60
    assert len(API_CASES) >= 11


def test_a_missing_aws_profile_breaks_no_local_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point 4: the request model and the local moto S3 do not read AWS_PROFILE."""
    monkeypatch.setenv("AWS_PROFILE", "nope")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(InvalidSpec, match="RoleArn: missing"):
        validate(
            "CreateTrainingJob",
            {
                "TrainingJobName": "x",
                "AlgorithmSpecification": {},
                "OutputDataConfig": {},
                "ResourceConfig": {},
                "StoppingCondition": {},
            },
        )
    with S3(EmulatorConfig()) as s3:
        s3.put_bytes("s3://bucket/key", b"data")
        assert s3.read_bytes("s3://bucket/key") == b"data"


# -- names unique per kind while a job lives (point 5) ---------------------------------------------------------


def test_two_training_jobs_with_one_name_cannot_run_at_once(tmp_path: Path) -> None:
    from test_training_unit import FakeDocker, Script

    config = EmulatorConfig(work_dir=str(tmp_path), training_stop_grace_s=0.1)
    request = {
        "TrainingJobName": "same-name",
        "AlgorithmSpecification": {"TrainingImage": IMAGE},
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
    }
    first = TrainingJob(request, config=config, docker=FakeDocker(Script(runs_until_signalled=True))).start()
    try:
        second = TrainingJob(request, config=config, docker=FakeDocker())
        with pytest.raises(InvalidSpec, match="training job 'same-name' already exists"):
            second.start()
        # A processing job may have the name: names are unique per kind.
        assert not names.is_live("processing", "same-name")
    finally:
        first.stop(grace_s=0)
        first.wait(30)
    assert not names.is_live("training", "same-name")
    third = TrainingJob(request, config=config, docker=FakeDocker()).run()
    assert third["TrainingJobStatus"] == "Completed"


def test_a_job_that_never_started_holds_no_name(tmp_path: Path) -> None:
    request = {
        "TrainingJobName": "never-started",
        "AlgorithmSpecification": {"TrainingImage": IMAGE},
        "OutputDataConfig": {"S3OutputPath": str(tmp_path / "out")},
    }
    TrainingJob(request, config=EmulatorConfig(work_dir=str(tmp_path)))
    assert not names.is_live("training", "never-started")


# -- model.tar.gz and output modes (point 12) ------------------------------------------------------------------


def _container_tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return buf.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    return info


def test_model_tarball_drops_dangerous_modes_and_escaping_symlinks(tmp_path: Path) -> None:
    from emulator.storage.artifacts import repack

    stream = _container_tar(
        [
            _entry("model", tarfile.DIRTYPE, 0o777),
            _entry("model/setuid", mode=0o4755),
            _entry("model/setgid", mode=0o2755),
            _entry("model/world", mode=0o666),
            _entry("model/ok", mode=0o640),
            _entry("model/shadow", tarfile.SYMTYPE, 0o777, "/etc/shadow"),
            _entry("model/up", tarfile.SYMTYPE, 0o777, "../../etc/passwd"),
            _entry("model/inside", tarfile.SYMTYPE, 0o777, "ok"),
        ],
        {"model/setuid": b"a", "model/setgid": b"b", "model/world": b"c", "model/ok": b"d"},
    )
    target = tmp_path / "model.tar.gz"
    assert repack([[stream]], target) == 4
    with tarfile.open(target) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert set(members) == {"setuid", "setgid", "world", "ok", "inside"}
    for m in members.values():
        assert not m.mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH), (m.name, oct(m.mode))
    assert members["setuid"].mode == 0o755
    assert members["ok"].mode == 0o640
    assert members["inside"].linkname == "ok"


def test_transform_outputs_get_the_mode_of_other_outputs(tmp_path: Path) -> None:
    from emulator.storage.locations import OUTPUT_FILE_MODE
    from emulator.transform.objects import StagedOutput

    out = StagedOutput(str(tmp_path / "preds" / "a.csv.out"), tmp_path)
    out.file.write(b"1\n")
    out.publish(lambda: S3())
    assert stat.S_IMODE((tmp_path / "preds" / "a.csv.out").stat().st_mode) == OUTPUT_FILE_MODE
    assert 0o666 & ~_umask() == OUTPUT_FILE_MODE


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- an endpoint's failure tail (point 10) -------------------------------------------------------------------------


def test_failure_tail_leaves_out_ping_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = Endpoint(IMAGE, config=EmulatorConfig())
    log = ["Traceback (most recent call last):", "ModuleNotFoundError: No module named 'xgboost'"] + [
        f'172.17.0.1 - - [07/Dec/2026] "GET /ping HTTP/1.1" 503 {i}' for i in range(300)
    ]
    monkeypatch.setattr(ep, "logs_tail", lambda lines=50: "\n".join(log[-lines:]))
    tail = ep.failure_tail(20)
    assert "No module named 'xgboost'" in tail
    assert "GET /ping" not in tail
    assert tail.endswith("(300 access-log lines of /ping requests left out)")
