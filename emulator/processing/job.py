"""Processing jobs, like SageMaker's CreateProcessingJob / DescribeProcessingJob.

Inputs are mounted read-only at their ``LocalPath`` (or downloaded from S3 first), output ``LocalPath``s
are created before the container starts, /opt/ml/config holds processingjobconfig.json and
resourceconfig.json, the image runs with no extra argument (ContainerEntrypoint / ContainerArguments with
Docker's semantics), and /opt/ml/output/message becomes ExitMessage (first 1 KB, UTF-8 enforced).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import DEFAULT_ROLE_ARN
from emulator.errors import InvalidSpec
from emulator.instance_types import docker_limits
from emulator.runtime import session as _session
from emulator.runtime.cluster import Cluster, Outcome
from emulator.runtime.docker import ContainerSpec, Mount
from emulator.runtime.job import ContainerJob
from emulator.storage.artifacts import iter_members, read_file
from emulator.storage.s3 import S3, is_s3
from emulator.storage.staging import stage_data

logger = logging.getLogger(__name__)

DEFAULT_MAX_RUNTIME_S = 86400


def with_defaults(request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill what a local run can default (name, role, cluster, stopping condition)."""
    req: dict[str, Any] = copy.deepcopy(dict(request))
    image = str(req.get("AppSpecification", {}).get("ImageUri", "processing"))
    req.setdefault("ProcessingJobName", _session.job_name(image.rsplit("/", 1)[-1].split(":", 1)[0] or "processing"))
    req.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    cluster = req.setdefault("ProcessingResources", {}).setdefault("ClusterConfig", {})
    cluster.setdefault("InstanceCount", 1)
    cluster.setdefault("InstanceType", "ml.m5.large")
    cluster.setdefault("VolumeSizeInGB", 30)
    req.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_S)
    for item in req.get("ProcessingInputs", []):
        s3in = item.get("S3Input")
        if s3in:
            s3in.setdefault("S3DataType", "S3Prefix")
            s3in.setdefault("S3InputMode", "File")
            s3in.setdefault("S3DataDistributionType", "FullyReplicated")
            s3in.setdefault("S3CompressionType", "None")
    for item in req.get("ProcessingOutputConfig", {}).get("Outputs", []):
        if item.get("S3Output"):
            item["S3Output"].setdefault("S3UploadMode", "EndOfJob")
    return req


class ProcessingJob(ContainerJob):
    """One processing job. Like SageMaker CreateProcessingJob; :meth:`run` returns the Describe shape."""

    operation = "CreateProcessingJob"
    name_field = "ProcessingJobName"
    arn_resource = "processing-job"
    kind = "processing"

    def _with_defaults(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return with_defaults(request)

    def _base_describe(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in self.request.items() if k not in ("Tags", "ExperimentConfig")},
            "ProcessingJobArn": self.arn,
            "ProcessingJobStatus": "InProgress",
            "CreationTime": self._created,
            "LastModifiedTime": self._created,
        }

    def _image(self) -> str:
        return str(self.request["AppSpecification"]["ImageUri"])

    def _host_names(self) -> list[str]:
        count = int(self.request["ProcessingResources"]["ClusterConfig"]["InstanceCount"])
        return [constants.host_name(i) for i in range(count)]

    def _isolated(self) -> bool:
        return bool((self.request.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))

    def _container_specs(self, hosts: list[str], work: Path, s3: S3) -> list[ContainerSpec]:
        inputs = self._stage_inputs(work, s3, len(hosts))
        return [self._container_spec(i, hosts, inputs) for i in range(len(hosts))]

    def _check_supported(self) -> None:
        for i, item in enumerate(self.request.get("ProcessingInputs", [])):
            where = f"ProcessingInputs[{i}]"
            if item.get("DatasetDefinition"):
                raise InvalidSpec(f"{where}.DatasetDefinition: Athena/Redshift inputs are not emulated; use S3Input")
            s3in = item.get("S3Input")
            if s3in is None:
                continue
            if not item.get("AppManaged") and not s3in.get("LocalPath"):
                raise InvalidSpec(f"{where}.S3Input.LocalPath: required unless AppManaged is true")
            _check_local_path(s3in.get("LocalPath"), f"{where}.S3Input.LocalPath")
            if s3in["S3InputMode"] == "Pipe":
                raise InvalidSpec(f"{where}.S3Input.S3InputMode: Pipe mode is not emulated; use File")
        for i, item in enumerate(self.request.get("ProcessingOutputConfig", {}).get("Outputs", [])):
            where = f"ProcessingOutputConfig.Outputs[{i}]"
            if item.get("FeatureStoreOutput"):
                raise InvalidSpec(f"{where}.FeatureStoreOutput: not emulated; use S3Output")
            if item.get("S3Output"):
                _check_local_path(item["S3Output"].get("LocalPath"), f"{where}.S3Output.LocalPath")

    def _stage_inputs(self, work: Path, s3: S3, hosts: int) -> list[list[tuple[str, str]]]:
        per_host: list[list[tuple[str, str]]] = [[] for _ in range(hosts)]
        for i, item in enumerate(self.request.get("ProcessingInputs", [])):
            s3in = item.get("S3Input")
            if not s3in or not s3in.get("LocalPath"):
                continue
            mounts = stage_data(
                s3in["S3Uri"],
                s3in["LocalPath"].rstrip("/"),
                work / f"input-{i}",
                s3,
                hosts,
                what=f"processing input {item.get('InputName', i)!r}",
                data_type=s3in["S3DataType"],
                sharded=s3in["S3DataDistributionType"] == "ShardedByS3Key",
            )
            for h in range(hosts):
                per_host[h].extend(mounts[h])
        return per_host

    def _container_spec(self, index: int, hosts: list[str], inputs: list[list[tuple[str, str]]]) -> ContainerSpec:
        req = self.request
        app = req["AppSpecification"]
        host = hosts[index]
        isolated = bool((req.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))
        env: dict[str, str] = {}
        if not isolated:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.config.region
        env.update(req.get("Environment") or {})
        entry, args = app.get("ContainerEntrypoint"), app.get("ContainerArguments")
        itype = req["ProcessingResources"]["ClusterConfig"]["InstanceType"]
        job_config = {
            "ProcessingJobArn": self.arn,
            "ProcessingJobName": self.name,
            "AppSpecification": {"ImageUri": app["ImageUri"], "ContainerEntrypoint": entry, "ContainerArguments": args},
            "Environment": req.get("Environment") or {},
            "ProcessingInputs": req.get("ProcessingInputs", []),
            "ProcessingOutputConfig": {
                "Outputs": req.get("ProcessingOutputConfig", {}).get("Outputs", []),
                "KmsKeyId": req.get("ProcessingOutputConfig", {}).get("KmsKeyId"),
            },
            "ProcessingResources": {
                "ClusterConfig": {**req["ProcessingResources"]["ClusterConfig"], "VolumeKmsKeyId": None}
            },
            "RoleArn": req["RoleArn"],
            "StoppingCondition": req["StoppingCondition"],
        }
        resource_config = {
            "current_host": host,
            "current_instance_type": itype,
            "hosts": sorted(hosts),
            "network_interface_name": constants.NETWORK_INTERFACE,
        }
        files = {
            f"{constants.PROCESSING_CONFIG_DIR}/{constants.PROCESSING_JOB_CONFIG_FILE}": json.dumps(
                job_config
            ).encode(),
            f"{constants.PROCESSING_CONFIG_DIR}/{constants.RESOURCE_CONFIG_FILE}": json.dumps(resource_config).encode(),
        }
        outputs = [o["S3Output"]["LocalPath"].rstrip("/") for o in _outputs(req)]
        mounts = [Mount(constants.OPT_ML)]
        mounts += [Mount(path) for path in outputs if not path.startswith(constants.OPT_ML + "/")]
        mounts += [Mount(target, source, read_only=True) for source, target in inputs[index]]
        nano, mem = docker_limits(itype)
        return ContainerSpec(
            # Docker's semantics, as the platform documents: an entrypoint override drops the image's CMD.
            image=app["ImageUri"],
            entrypoint=list(entry) if entry else None,
            command=list(args) if args else ([] if entry else None),
            environment=env,
            mounts=mounts,
            name=f"{self.name[:40]}-{host}-{_session.short_token()}",
            hostname=host,
            network_aliases=[host],
            network="none" if isolated and len(hosts) == 1 else None,
            nano_cpus=nano,
            mem_limit=mem,
            files=files,
            dirs=[constants.OUTPUT_DIR, *outputs],
        )

    def _finish(self, cluster: Cluster, outcome: Outcome, work: Path, s3: S3) -> None:
        d = self._describe
        d["ProcessingStartTime"] = datetime.fromtimestamp(outcome.start_time, UTC)
        d["ProcessingEndTime"] = datetime.fromtimestamp(outcome.end_time, UTC)
        # Outputs are uploaded whatever the outcome (as local mode does; the platform's behaviour is unverified).
        for o in _outputs(self.request):
            self._export_output(cluster, len(outcome.hosts), o, work, s3)
        message, bad_utf8 = self._exit_message(cluster, len(outcome.hosts))
        if message:
            d["ExitMessage"] = message
        if bad_utf8:
            self._end(
                "Failed", "ClientError: /opt/ml/output/message is not valid UTF-8; write the message as UTF-8 text"
            )
        elif outcome.stopped_reason == "MaxRuntimeExceeded":
            self._end("Stopped", "Processing job exceeded MaxRuntimeInSeconds")
        elif outcome.stopped_reason:
            self._end("Stopped", "Processing job stopped by the user (interrupted)")
        elif outcome.succeeded:
            self._end("Completed")
        else:
            failed = outcome.first_failure
            self._end(
                "Failed",
                f"AlgorithmError: See job logs for more information, exit code: {failed.exit_code if failed else '?'}",
            )

    def _exit_message(self, cluster: Cluster, hosts: int) -> tuple[str, bool]:
        raw = b"".join(read_file(cluster.archive(i, constants.MESSAGE_FILE)) or b"" for i in range(hosts))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "", True
        return text.encode()[: constants.MAX_EXIT_MESSAGE_BYTES].decode("utf-8", "ignore"), False

    def _export_output(self, cluster: Cluster, hosts: int, output: Mapping[str, Any], work: Path, s3: S3) -> None:
        local_path = output["S3Output"]["LocalPath"].rstrip("/")
        destination = output["S3Output"]["S3Uri"]
        staging = work / "outputs" / output["OutputName"]
        staging.mkdir(parents=True, exist_ok=True)
        for i in range(hosts):
            for member, tf in iter_members(cluster.archive(i, local_path)):
                rel = member.name.split("/", 1)[1] if "/" in member.name else ""
                if rel and member.isfile():  # symlinks are not followed, as on the platform
                    target = staging / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as fh:
                        src = tf.extractfile(member)
                        if src is not None:
                            shutil.copyfileobj(src, fh)
        if is_s3(destination):
            s3.upload_dir(staging, destination)
        else:
            target_dir = Path(destination.removeprefix("file://")).expanduser()
            target_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(staging, target_dir, dirs_exist_ok=True)

    def _end(self, status: str, reason: str | None = None) -> None:
        self._describe["ProcessingJobStatus"] = status
        self._describe["LastModifiedTime"] = _session.now()
        if reason:
            self._describe["FailureReason"] = reason
        logger.info("%s: %s%s", self.name, status, f" ({reason})" if reason else "")


def _outputs(req: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [o for o in req.get("ProcessingOutputConfig", {}).get("Outputs", []) if o.get("S3Output")]


def _check_local_path(path: str | None, where: str) -> None:
    if path and not path.startswith(constants.PROCESSING_DIR + "/"):
        raise InvalidSpec(f"{where}: {path!r} must start with {constants.PROCESSING_DIR}/ (the platform's rule)")
