"""CreateProcessingJob -> a :class:`~emulator.runtime.plan.JobPlan`: a pure function, no engine, no S3.

Inputs are mounted read-only at their ``LocalPath`` (or downloaded from S3 first), output ``LocalPath``s are
created before the container starts, /opt/ml/config holds processingjobconfig.json and resourceconfig.json,
the image runs with no extra argument (ContainerEntrypoint / ContainerArguments with Docker's semantics).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import DEFAULT_ROLE_ARN, EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, Mount
from emulator.runtime.plan import DataInput, Export, HostPlan, JobPlan
from emulator.runtime.resources import docker_limits, gpu_request
from emulator.spec import load_spec, validate

KIND = "processing"


def with_defaults(request: Mapping[str, Any]) -> dict[str, Any]:
    """Fill what a local run can default (name, role, cluster, stopping condition)."""
    req: dict[str, Any] = copy.deepcopy(dict(request))
    image = str(req.get("AppSpecification", {}).get("ImageUri", "processing"))
    req.setdefault("ProcessingJobName", _session.job_name(image.rsplit("/", 1)[-1].split(":", 1)[0] or "processing"))
    req.setdefault("RoleArn", DEFAULT_ROLE_ARN)
    cluster = req.setdefault("ProcessingResources", {}).setdefault("ClusterConfig", {})
    cluster.setdefault("InstanceCount", 1)
    cluster.setdefault("InstanceType", constants.DEFAULT_INSTANCE_TYPE)
    cluster.setdefault("VolumeSizeInGB", constants.DEFAULT_VOLUME_SIZE_GB)
    req.setdefault("StoppingCondition", {}).setdefault("MaxRuntimeInSeconds", constants.DEFAULT_MAX_RUNTIME_S)
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


def plan(request: Mapping[str, Any] | str | Path, config: EmulatorConfig) -> JobPlan:
    """The plan of a CreateProcessingJob request.

    Raises:
        InvalidSpec: the request does not fit CreateProcessingJob, or asks for what cannot run locally.
    """
    raw = load_spec(request)
    try:
        req = with_defaults(raw)
    except (AttributeError, TypeError):  # a block that is not a mapping: let the model name it
        validate("CreateProcessingJob", raw)
        raise InvalidSpec("invalid CreateProcessingJob request: a block is not a mapping; fix the spec") from None
    validate("CreateProcessingJob", req)
    check_supported(req)
    name: str = req["ProcessingJobName"]
    arn = _session.arn(config, "processing-job", name)
    count = int(req["ProcessingResources"]["ClusterConfig"]["InstanceCount"])
    hosts = [constants.host_name(i) for i in range(count)]
    app = req["AppSpecification"]
    inputs = [
        DataInput(
            s3in["S3Uri"],
            s3in["LocalPath"].rstrip("/"),
            what=f"processing input {item.get('InputName', i)!r}",
            data_type=s3in["S3DataType"],
            sharded=s3in["S3DataDistributionType"] == "ShardedByS3Key",
        )
        for i, item in enumerate(req.get("ProcessingInputs", []))
        if (s3in := item.get("S3Input")) and s3in.get("LocalPath")
    ]
    # Outputs are uploaded whatever the outcome (as local mode does; the platform's behaviour is unverified).
    exports = [
        Export(o["OutputName"], o["S3Output"]["LocalPath"].rstrip("/"), o["S3Output"]["S3Uri"], "tree", always=True)
        for o in outputs(req)
    ]
    return JobPlan(
        kind=KIND,
        name=name,
        arn=arn,
        image=app["ImageUri"],
        request=req,
        hosts=tuple(HostPlan(host, _container(req, name, arn, config, i, hosts)) for i, host in enumerate(hosts)),
        max_runtime_s=float(req["StoppingCondition"]["MaxRuntimeInSeconds"]),
        stop_grace_s=config.training_stop_grace_s,
        inputs=tuple(inputs),
        exports=tuple(exports),
        reads=(constants.MESSAGE_FILE,),
        private_network=len(hosts) > 1,
        internal_network=isolated(req),
        command=tuple(app.get("ContainerEntrypoint") or app.get("ContainerArguments") or []),
    )


def isolated(req: Mapping[str, Any]) -> bool:
    """NetworkConfig.EnableNetworkIsolation."""
    return bool((req.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))


def outputs(req: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The outputs that go to S3 (or a local path)."""
    return [o for o in req.get("ProcessingOutputConfig", {}).get("Outputs", []) if o.get("S3Output")]


def check_supported(req: Mapping[str, Any]) -> None:
    """Refuse, with a clear error, what the emulator does not do."""
    for i, item in enumerate(req.get("ProcessingInputs", [])):
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
    for i, item in enumerate(req.get("ProcessingOutputConfig", {}).get("Outputs", [])):
        where = f"ProcessingOutputConfig.Outputs[{i}]"
        if item.get("FeatureStoreOutput"):
            raise InvalidSpec(f"{where}.FeatureStoreOutput: not emulated; use S3Output")
        if item.get("S3Output"):
            _check_local_path(item["S3Output"].get("LocalPath"), f"{where}.S3Output.LocalPath")


def _check_local_path(path: str | None, where: str) -> None:
    if path and not path.startswith(constants.PROCESSING_DIR + "/"):
        raise InvalidSpec(f"{where}: {path!r} must start with {constants.PROCESSING_DIR}/ (the platform's rule)")


def _container(
    req: Mapping[str, Any], name: str, arn: str, config: EmulatorConfig, index: int, hosts: list[str]
) -> ContainerSpec:
    app = req["AppSpecification"]
    host = hosts[index]
    env: dict[str, str] = {}
    if not isolated(req):
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = config.region
    gpus, gpu_env = gpu_request(req["ProcessingResources"]["ClusterConfig"]["InstanceType"])
    env.update(gpu_env)
    env.update(req.get("Environment") or {})
    entry, args = app.get("ContainerEntrypoint"), app.get("ContainerArguments")
    itype = req["ProcessingResources"]["ClusterConfig"]["InstanceType"]
    job_config = {
        "ProcessingJobArn": arn,
        "ProcessingJobName": name,
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
    config_dir = constants.PROCESSING_CONFIG_DIR
    files = {
        f"{config_dir}/{constants.PROCESSING_JOB_CONFIG_FILE}": json.dumps(job_config).encode(),
        f"{config_dir}/{constants.RESOURCE_CONFIG_FILE}": json.dumps(resource_config).encode(),
    }
    output_dirs = [o["S3Output"]["LocalPath"].rstrip("/") for o in outputs(req)]
    mounts = [Mount(constants.OPT_ML)]
    mounts += [Mount(path) for path in output_dirs if not path.startswith(constants.OPT_ML + "/")]
    nano, mem = docker_limits(itype)
    return ContainerSpec(
        # Docker's semantics, as the platform documents: an entrypoint override drops the image's CMD.
        image=app["ImageUri"],
        entrypoint=list(entry) if entry else None,
        command=list(args) if args else ([] if entry else None),
        environment=env,
        mounts=mounts,
        name=f"{name[:40]}-{host}-{_session.short_token()}",
        hostname=host,
        network_aliases=[host],
        network="none" if isolated(req) and len(hosts) == 1 else None,
        nano_cpus=nano,
        mem_limit=mem,
        gpus=gpus,
        files=files,
        dirs=[constants.OUTPUT_DIR, *output_dirs],
    )
