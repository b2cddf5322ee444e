"""Training jobs, like SageMaker's CreateTrainingJob / DescribeTrainingJob.

``TrainingJob(request).run()`` validates the request with botocore's model, stages the channels, writes
the /opt/ml tree into one container per host, runs ``train`` with the platform's semantics (entrypoint and
arguments, environment, network isolation, MaxRuntimeInSeconds), exports model.tar.gz and output.tar.gz
(also after a failure or a stop), and returns a DescribeTrainingJob-shaped dict.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import DEFAULT_ROLE_ARN, EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.instance_types import docker_limits
from emulator.runtime import session as _session
from emulator.runtime.cluster import Cluster, LogSink, Outcome
from emulator.runtime.docker import ContainerSpec, DockerSeam, Mount
from emulator.runtime.job import ContainerJob
from emulator.storage.artifacts import export, list_files, read_file, repack
from emulator.storage.s3 import S3, is_s3, join_uri
from emulator.storage.staging import StagedChannel, stage_channel

logger = logging.getLogger(__name__)

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_MAX_RUNTIME_S = 86400


def with_defaults(request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill what a local run can default (name, role, resources, stopping condition); the rest is the user's."""
    req: dict[str, Any] = json.loads(json.dumps(dict(request), default=str))
    req.setdefault("TrainingJobName", _session.job_name(_image_stem(req)))
    req.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    algo = req.setdefault("AlgorithmSpecification", {})
    algo.setdefault("TrainingInputMode", "File")
    res = req.setdefault("ResourceConfig", {})
    res.setdefault("InstanceType", DEFAULT_INSTANCE_TYPE)
    res.setdefault("InstanceCount", 1)
    res.setdefault("VolumeSizeInGB", 30)
    req.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_S)
    req.setdefault("OutputDataConfig", {}).setdefault("S3OutputPath", "output")
    return req


def _image_stem(req: Mapping[str, Any]) -> str:
    image = str(req.get("AlgorithmSpecification", {}).get("TrainingImage", "training"))
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0] or "training"


class TrainingJob(ContainerJob):
    """One training job. Like SageMaker CreateTrainingJob; :meth:`run` blocks and returns the Describe shape."""

    operation = "CreateTrainingJob"
    name_field = "TrainingJobName"
    arn_resource = "training-job"
    kind = "training"

    def __init__(
        self,
        request: Mapping[str, Any] | str | Path,
        *,
        config: EmulatorConfig | None = None,
        docker: DockerSeam | None = None,
        s3: S3 | None = None,
        log_sink: LogSink | None = None,
        host_names: Sequence[str] | None = None,
        extra_config: Mapping[str, Mapping[str, Any]] | None = None,
        container_hostnames: Sequence[str] | None = None,
        record_tree: bool = False,
    ) -> None:
        """``host_names`` replaces algo-1..N (the platform says host values can change); ``extra_config`` adds keys
        to the config files (``{"resourceconfig.json": {"topology": None}}``; for inputdataconfig.json, to each
        channel's entry), as newer platform versions do. ``container_hostnames`` sets each host's container
        hostname (what /etc/hostname and ``socket.gethostname()`` say; default: the host name), as on the platform
        where it is an unrelated ``ip-10-...`` name: the host names stay the network aliases peers resolve.
        ``record_tree`` lists, before the containers are removed, every file each host left under /opt/ml into
        :attr:`final_tree` (it reads the whole tree, input channels included). All exist for the contract suite."""
        super().__init__(request, config=config, docker=docker, s3=s3, log_sink=log_sink)
        count = int(self.request["ResourceConfig"]["InstanceCount"])
        self._hosts = list(host_names) if host_names else [constants.host_name(i) for i in range(count)]
        if len(self._hosts) != count or len(set(self._hosts)) != count:
            raise InvalidSpec(
                f"host_names: give {count} distinct names (ResourceConfig.InstanceCount), not {self._hosts}"
            )
        self._container_hostnames = list(container_hostnames) if container_hostnames else list(self._hosts)
        names = self._container_hostnames
        if len(names) != count or len(set(names)) != count or not all(names):
            raise InvalidSpec(
                f"container_hostnames: give {count} distinct names (ResourceConfig.InstanceCount), not {names}"
            )
        self._extra_config = {k: dict(v) for k, v in (extra_config or {}).items()}
        self._record_tree = record_tree
        #: With ``record_tree``: host name -> the absolute paths of the files (not directories) its container
        #: left under /opt/ml, sorted; filled when the job ends, before the containers are removed.
        self.final_tree: dict[str, list[str]] = {}

    def _with_defaults(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return with_defaults(request)

    def _image(self) -> str:
        return str(self.request["AlgorithmSpecification"]["TrainingImage"])

    def _host_names(self) -> list[str]:
        return list(self._hosts)

    def _isolated(self) -> bool:
        return bool(self.request.get("EnableNetworkIsolation"))

    def _starting(self) -> None:
        self._transition("Starting", "Preparing the instances for training")

    def _running(self) -> None:
        self._transition("Training", "Training image download completed. Training in progress.")

    def _artifacts_hint(self) -> str:
        return f"; artifacts exported to {self._describe['ModelArtifacts']['S3ModelArtifacts']}"

    def _container_specs(self, hosts: list[str], work: Path, s3: S3) -> list[ContainerSpec]:
        channels = [
            stage_channel(ch, work / "channels", s3, len(hosts)) for ch in self.request.get("InputDataConfig", [])
        ]
        return [self._container_spec(i, hosts, channels, s3) for i in range(len(hosts))]

    # -- checks -------------------------------------------------------------------------------------
    def _check_supported(self) -> None:
        req = self.request
        algo = req["AlgorithmSpecification"]
        if not algo.get("TrainingImage"):
            raise InvalidSpec("AlgorithmSpecification.TrainingImage: missing; name the image to train with (--image)")
        if algo.get("AlgorithmName"):
            raise InvalidSpec(
                "AlgorithmSpecification.AlgorithmName: marketplace algorithms cannot run locally; use TrainingImage"
            )
        if req["ResourceConfig"].get("InstanceGroups"):
            raise InvalidSpec(
                "ResourceConfig.InstanceGroups: heterogeneous clusters are not emulated; "
                "use InstanceType and InstanceCount"
            )
        if req["ResourceConfig"]["InstanceCount"] < 1:
            raise InvalidSpec("ResourceConfig.InstanceCount: must be at least 1")
        for ch in req.get("InputDataConfig", []):
            mode = ch.get("InputMode") or algo["TrainingInputMode"]
            if mode == "Pipe":
                raise InvalidSpec(
                    f"InputDataConfig[{ch['ChannelName']}].InputMode: Pipe mode is not emulated; use File (or FastFile)"
                )
            if "DataSource" in ch and "S3DataSource" not in ch["DataSource"]:
                raise InvalidSpec(
                    f"InputDataConfig[{ch['ChannelName']}].DataSource: only S3DataSource (an s3:// URI "
                    "or a local path) is emulated"
                )
        names = [ch["ChannelName"] for ch in req.get("InputDataConfig", [])]
        if len(set(names)) != len(names):
            raise InvalidSpec("InputDataConfig: channel names must be unique")
        # A bad regex must fail now, not after the whole job has run.
        _final_metrics(algo.get("MetricDefinitions") or [], Outcome([]))

    def _container_spec(self, index: int, hosts: list[str], channels: list[StagedChannel], s3: S3) -> ContainerSpec:
        req = self.request
        algo = req["AlgorithmSpecification"]
        host = hosts[index]
        isolated = bool(req.get("EnableNetworkIsolation"))
        env = {"TRAINING_JOB_NAME": self.name, "TRAINING_JOB_ARN": self.arn}
        if not isolated:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.config.region
        env.update(req.get("Environment") or {})
        entrypoint, command = _entrypoint_and_command(algo, "train")
        files = {
            f"{constants.INPUT_CONFIG_DIR}/{name}": _json_bytes(body)
            for name, body in self._config_files(host, hosts, channels).items()
        }
        checkpoint_dir = (req.get("CheckpointConfig") or {}).get("LocalPath") or constants.CHECKPOINT_DIR
        if req.get("CheckpointConfig"):
            files.update(_checkpoint_seed(req["CheckpointConfig"], checkpoint_dir, s3))
        mounts = [Mount(constants.OPT_ML)]
        if not checkpoint_dir.startswith(constants.OPT_ML + "/"):
            mounts.append(Mount(checkpoint_dir))
        for ch in channels:
            for source, target in ch.mounts_for(index):
                mounts.append(Mount(target, source, read_only=True))
        nano, mem = docker_limits(req["ResourceConfig"]["InstanceType"])
        no_network = isolated and len(hosts) == 1
        container_hostname = self._container_hostnames[index]
        # Docker writes no /etc/hosts entry for the host name without a network, nor for a name other than the
        # container's hostname on the default bridge (one host); the host must still resolve its own name
        # (current_host), as frameworks do when they rendezvous on hosts[0].
        self_resolve = no_network or (len(hosts) == 1 and container_hostname != host)
        return ContainerSpec(
            image=algo["TrainingImage"],
            command=command,
            entrypoint=entrypoint,
            environment=env,
            mounts=mounts,
            name=f"{self.name[:40]}-{host}-{_session.short_token()}",
            hostname=container_hostname,
            network_aliases=[host],
            network="none" if no_network else None,
            nano_cpus=nano,
            mem_limit=mem,
            extra_hosts={host: "127.0.0.1"} if self_resolve else {},
            files=files,
            # Channel dirs are mount points (read-only): Docker makes them; writing into them would fail.
            dirs=[
                constants.MODEL_DIR,
                constants.OUTPUT_DATA_DIR,
                constants.CHECKPOINT_DIR,
                checkpoint_dir,
                constants.INPUT_DATA_DIR,
            ],
        )

    def _config_files(self, host: str, hosts: list[str], channels: list[StagedChannel]) -> dict[str, Any]:
        req = self.request
        itype = req["ResourceConfig"]["InstanceType"]
        files: dict[str, Any] = {
            constants.HYPERPARAMETERS_FILE: dict(req.get("HyperParameters") or {}),
            constants.INPUT_DATA_CONFIG_FILE: {
                c.name: c.input_data_config(req["AlgorithmSpecification"]) for c in channels
            },
            constants.RESOURCE_CONFIG_FILE: {
                "current_host": host,
                "current_instance_type": itype,
                "current_group_name": constants.HOMOGENEOUS_GROUP,
                "hosts": sorted(hosts),
                "instance_groups": [
                    {"instance_group_name": constants.HOMOGENEOUS_GROUP, "instance_type": itype, "hosts": list(hosts)}
                ],
                "network_interface_name": constants.NETWORK_INTERFACE,
            },
        }
        for name, extra in self._extra_config.items():
            if name == constants.INPUT_DATA_CONFIG_FILE:
                for entry in files[name].values():
                    entry.update(extra)
            elif name in files:
                files[name].update(extra)
        if req.get("CheckpointConfig"):
            cc = req["CheckpointConfig"]
            files[constants.CHECKPOINT_CONFIG_FILE] = {
                "LocalPath": cc.get("LocalPath") or constants.CHECKPOINT_DIR,
                "S3Uri": cc["S3Uri"],
            }
        return files

    # -- results ------------------------------------------------------------------------------------
    def _finish(self, cluster: Cluster, outcome: Outcome, work: Path, s3: S3) -> None:
        self._transition("Uploading", "Uploading generated training model")
        req = self.request
        n = len(outcome.hosts)
        if self._record_tree:
            self.final_tree = {
                self._hosts[i]: list_files(cluster.archive(i, constants.OPT_ML), constants.OPT_ML) for i in range(n)
            }
        output_base = join_uri(_absolute(req["OutputDataConfig"]["S3OutputPath"]), self.name, "output")
        compress = req["OutputDataConfig"].get("CompressionType", "GZIP") != "NONE"
        model_tar = work / ("model.tar.gz" if compress else "model.tar")
        repack((cluster.archive(i, constants.MODEL_DIR) for i in range(n)), model_tar, compress=compress)
        model_uri = export(model_tar, join_uri(output_base, model_tar.name), s3)
        out_tar = work / "output.tar.gz"
        if repack((cluster.archive(i, constants.OUTPUT_DATA_DIR) for i in range(n)), out_tar):
            export(out_tar, join_uri(output_base, "output.tar.gz"), s3)
        if req.get("CheckpointConfig"):
            _export_checkpoints(cluster, req["CheckpointConfig"], work, s3, n)
        d = self._describe
        d["ModelArtifacts"] = {"S3ModelArtifacts": model_uri}
        d["TrainingStartTime"] = datetime.fromtimestamp(outcome.start_time, UTC)
        d["TrainingEndTime"] = datetime.fromtimestamp(outcome.end_time, UTC)
        seconds = max(1, round(outcome.end_time - outcome.start_time))
        # Both are wall-clock seconds; the API says to multiply BillableTimeInSeconds by InstanceCount for compute.
        d["TrainingTimeInSeconds"] = d["BillableTimeInSeconds"] = seconds
        metrics = _final_metrics(req["AlgorithmSpecification"].get("MetricDefinitions") or [], outcome)
        if metrics:
            d["FinalMetricDataList"] = metrics
        if outcome.stopped_reason == "MaxRuntimeExceeded":
            self._end("Stopped", "MaxRuntimeExceeded", "Training job runtime exceeded MaxRuntimeInSeconds provided")
        elif outcome.stopped_reason:
            self._end("Stopped", "Stopped", "Training job stopped by the user (interrupted)")
        elif outcome.succeeded:
            self._end("Completed", "Completed", "Training job completed")
        else:
            self._end("Failed", "Failed", "Training job failed", self._failure_reason(cluster, outcome))

    def _failure_reason(self, cluster: Cluster, outcome: Outcome) -> str:
        failed = outcome.first_failure
        index = outcome.hosts.index(failed) if failed else 0
        raw = read_file(cluster.archive(index, constants.FAILURE_FILE))
        text = raw.decode("utf-8", "replace") if raw else ""
        if text.strip():
            return text[: constants.MAX_FAILURE_REASON_CHARS]
        code = failed.exit_code if failed else None
        if failed and failed.oom_killed:
            return "AlgorithmError: the container ran out of memory (OOMKilled), exit code: 137"
        return f"AlgorithmError: , exit code: {code}"

    def _base_describe(self) -> dict[str, Any]:
        req = self.request
        d: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": "InProgress",
            "SecondaryStatus": "Starting",
            "HyperParameters": req.get("HyperParameters") or {},
            "AlgorithmSpecification": req["AlgorithmSpecification"],
            "RoleArn": req["RoleArn"],
            "OutputDataConfig": req["OutputDataConfig"],
            "ResourceConfig": req["ResourceConfig"],
            "StoppingCondition": req["StoppingCondition"],
            "CreationTime": self._created,
            "LastModifiedTime": self._created,
            "SecondaryStatusTransitions": [],
            "EnableNetworkIsolation": bool(req.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(req.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(req.get("EnableManagedSpotTraining", False)),
            "ModelArtifacts": {"S3ModelArtifacts": ""},
        }
        for key in ("InputDataConfig", "Environment", "CheckpointConfig", "VpcConfig", "RetryStrategy"):
            if req.get(key):
                d[key] = req[key]
        return d

    def _transition(self, status: str, message: str) -> None:
        now = _session.now()
        transitions = self._describe["SecondaryStatusTransitions"]
        if transitions:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        self._describe["SecondaryStatus"] = status
        self._describe["LastModifiedTime"] = now
        logger.info("%s: %s", self.name, message)

    def _end(self, status: str, secondary: str, message: str, reason: str | None = None) -> None:
        self._transition(secondary, message)
        self._describe["SecondaryStatusTransitions"][-1]["EndTime"] = self._describe["LastModifiedTime"]
        self._describe["TrainingJobStatus"] = status
        if reason is not None:
            self._describe["FailureReason"] = reason


def _entrypoint_and_command(algo: Mapping[str, Any], default_arg: str) -> tuple[list[str] | None, list[str]]:
    """The platform's override semantics: ContainerEntrypoint replaces ENTRYPOINT (and drops the default
    argument); ContainerArguments replace the default argument."""
    entry = algo.get("ContainerEntrypoint")
    args = algo.get("ContainerArguments")
    if entry:
        return list(entry), list(args or [])
    return None, list(args) if args else [default_arg]


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, indent=None).encode()


def _final_metrics(definitions: list[Mapping[str, str]], outcome: Outcome) -> list[dict[str, Any]]:
    """The last value each MetricDefinitions regex captured in the logs (first group, parsed as a float)."""
    found: dict[str, float] = {}
    compiled = []
    for d in definitions:
        try:
            compiled.append((d["Name"], re.compile(d["Regex"])))
        except re.error as exc:
            raise InvalidSpec(f"MetricDefinitions[{d['Name']}].Regex: {exc}; fix the regular expression") from None
    for _, line in outcome.log_lines:
        for name, rx in compiled:
            for m in rx.finditer(line):
                try:
                    found[name] = float(m.group(1) if rx.groups else m.group(0))
                except (ValueError, IndexError):
                    continue
    stamp = datetime.fromtimestamp(outcome.end_time or time.time(), UTC)
    return [{"MetricName": n, "Value": v, "Timestamp": stamp} for n, v in found.items()]


def _checkpoint_seed(cc: Mapping[str, Any], local_path: str, s3: S3) -> dict[str, bytes]:
    """Existing checkpoints are copied in at job start, like the platform does."""
    uri = cc["S3Uri"]
    files: dict[str, bytes] = {}
    if is_s3(uri):
        bucket = uri[len("s3://") :].split("/", 1)[0]
        for key, _ in s3.list_keys(uri):
            prefix = uri[len(f"s3://{bucket}/") :]
            rel = key[len(prefix) :].lstrip("/")
            if rel:
                files[f"{local_path.rstrip('/')}/{rel}"] = s3.read_bytes(f"s3://{bucket}/{key}")
    else:
        root = Path(uri)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                files[f"{local_path.rstrip('/')}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def _export_checkpoints(cluster: Cluster, cc: Mapping[str, Any], work: Path, s3: S3, hosts: int) -> None:
    """Checkpoints go back to CheckpointConfig.S3Uri when the job ends (the platform syncs continuously)."""
    import tarfile

    local_path = (cc.get("LocalPath") or constants.CHECKPOINT_DIR).rstrip("/")
    staging = work / "checkpoints"
    staging.mkdir(exist_ok=True)
    for i in range(hosts):
        tar = work / f"ckpt-{i}.tar"
        if repack([cluster.archive(i, local_path)], tar, compress=False):
            with tarfile.open(tar) as tf:
                tf.extractall(staging, filter="data")
    uri = cc["S3Uri"]
    if is_s3(uri):
        s3.upload_dir(staging, uri)
    else:
        shutil.copytree(staging, uri, dirs_exist_ok=True)


def _absolute(location: str) -> str:
    """Local output locations are reported as absolute paths, so results stay valid from any directory."""
    return location if is_s3(location) else str(Path(location.removeprefix("file://")).expanduser().resolve())
