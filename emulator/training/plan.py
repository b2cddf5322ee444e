"""CreateTrainingJob -> a :class:`~emulator.runtime.plan.JobPlan`: a pure function, no engine, no S3.

Defaults are applied once (:func:`with_defaults`), the request is validated with botocore's model, what the
emulator cannot run is refused with a clear error, and every host's container is decided here: the platform's
entrypoint semantics, environment, network isolation, the /opt/ml/input/config files, the channels to stage,
the checkpoints to seed and export, and the artifacts to export when the job ends.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import constants
from emulator.config import EmulatorConfig
from emulator.errors import InvalidSpec
from emulator.runtime import session as _session
from emulator.runtime.docker import ContainerSpec, Mount
from emulator.runtime.plan import DataInput, Export, HostPlan, JobPlan, Seed, Sync
from emulator.runtime.resources import docker_limits, gpu_request
from emulator.spec import load_spec
from emulator.storage.locations import absolute, join_uri
from emulator.training.defaults import validated
from emulator.training.groups import (
    InstanceGroup,
    channel_hosts,
    check_instance_groups,
    host_groups,
    instance_groups,
)

KIND = "training"


@dataclass(frozen=True)
class TrainingOptions:
    """The local extensions (all exist for the contract suite).

    ``host_names`` replaces algo-1..N (the platform says host values can change); ``extra_config`` adds keys to the
    config files (``{"resourceconfig.json": {"topology": None}}``; for inputdataconfig.json, to each channel's
    entry), as newer platform versions do. ``container_hostnames`` sets each host's container hostname (what
    /etc/hostname says; default: the host name), as on the platform where it is an unrelated ``ip-10-...`` name:
    the host names stay the network aliases peers resolve.
    """

    host_names: Sequence[str] | None = None
    container_hostnames: Sequence[str] | None = None
    extra_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def plan(
    request: Mapping[str, Any] | str | Path, config: EmulatorConfig, options: TrainingOptions | None = None
) -> JobPlan:
    """The plan of a CreateTrainingJob request.

    Raises:
        InvalidSpec: the request does not fit CreateTrainingJob, or asks for what cannot run locally.
    """
    options = options or TrainingOptions()
    req = validated(load_spec(request))
    check_supported(req)
    name: str = req["TrainingJobName"]
    groups = host_groups(req["ResourceConfig"])
    count = len(groups)
    hosts = list(options.host_names) if options.host_names else [constants.host_name(i) for i in range(count)]
    if len(hosts) != count or len(set(hosts)) != count:
        raise InvalidSpec(f"host_names: give {count} distinct names (ResourceConfig.InstanceCount), not {hosts}")
    hostnames = list(options.container_hostnames) if options.container_hostnames else list(hosts)
    if len(hostnames) != count or len(set(hostnames)) != count or not all(hostnames):
        raise InvalidSpec(
            f"container_hostnames: give {count} distinct names (ResourceConfig.InstanceCount), not {hostnames}"
        )
    algo = req["AlgorithmSpecification"]
    entrypoint, command = entrypoint_and_command(algo, "train")
    arn = _session.arn(config, "training-job", name)
    cc = req.get("CheckpointConfig")
    checkpoint_dir = checkpoint_local_path(cc)
    output_base = join_uri(absolute(req["OutputDataConfig"]["S3OutputPath"]), name, "output")
    compress = req["OutputDataConfig"].get("CompressionType", "GZIP") != "NONE"
    exports = [
        Export("model", constants.MODEL_DIR, join_uri(output_base, "model.tar.gz" if compress else "model.tar"),
               "tar.gz" if compress else "tar", always=True),
        Export("output", constants.OUTPUT_DATA_DIR, join_uri(output_base, "output.tar.gz"), "tar.gz"),
    ]  # fmt: skip
    return JobPlan(
        kind=KIND,
        name=name,
        arn=arn,
        image=algo["TrainingImage"],
        request=req,
        hosts=tuple(
            HostPlan(
                host,
                _container(req, name, arn, config, i, hosts, hostnames[i], options, checkpoint_dir, groups[i]),
            )
            for i, host in enumerate(hosts)
        ),
        max_runtime_s=float(req["StoppingCondition"]["MaxRuntimeInSeconds"]),
        stop_grace_s=config.training_stop_grace_s,
        inputs=tuple(_data_input(ch, algo["TrainingInputMode"], groups) for ch in req.get("InputDataConfig", [])),
        # Existing checkpoints are copied in at job start, like the platform does.
        seeds=(Seed(cc["S3Uri"], checkpoint_dir),) if cc else (),
        exports=tuple(exports),
        # Synced to CheckpointConfig.S3Uri while the job runs and when it ends, as the platform does.
        syncs=(Sync("checkpoints", checkpoint_dir, cc["S3Uri"]),) if cc else (),
        failure_reads=(constants.FAILURE_FILE,),
        # No archive call before the start: the config files are bound read-only, the empty dirs are volumes.
        bound_dirs=(constants.INPUT_CONFIG_DIR,),
        dirs_as_volumes=True,
        # ... and, where the engine writes binds in place, the model and output dirs are read without one either.
        bound_outputs=(constants.MODEL_DIR, constants.OUTPUT_DIR),
        private_network=len(hosts) > 1,
        internal_network=bool(req.get("EnableNetworkIsolation")),
        command=tuple(entrypoint or command),
    )


def checkpoint_local_path(cc: Mapping[str, Any] | None) -> str:
    """CheckpointConfig.LocalPath as a container path (``/opt/ml/checkpoints/`` -> ``/opt/ml/checkpoints``), the
    platform's default without one.

    >>> checkpoint_local_path({"S3Uri": "s3://b/c", "LocalPath": "/opt/ml/checkpoints/"})
    '/opt/ml/checkpoints'

    Raises:
        InvalidSpec: not an absolute path, or /opt/ml itself or a dir below input/, model/ or output/ (the
            platform's own).
    """
    given = (cc or {}).get("LocalPath") or constants.CHECKPOINT_DIR
    path = posixpath.normpath(given)
    owned = (constants.INPUT_DIR, constants.MODEL_DIR, constants.OUTPUT_DIR)
    if (
        not path.startswith("/")
        or path in ("/", constants.OPT_ML)
        or any(path == d or path.startswith(d + "/") for d in owned)
    ):
        raise InvalidSpec(
            f"CheckpointConfig.LocalPath: {given!r} is not a directory the job can own; give an absolute path "
            f"outside {constants.INPUT_DIR}, {constants.MODEL_DIR} and {constants.OUTPUT_DIR} (default "
            f"{constants.CHECKPOINT_DIR})"
        )
    return path


def check_supported(req: Mapping[str, Any]) -> None:
    """Refuse, with a clear error, what the emulator does not do."""
    algo = req["AlgorithmSpecification"]
    if not algo.get("TrainingImage"):
        raise InvalidSpec("AlgorithmSpecification.TrainingImage: missing; name the image to train with (--image)")
    if algo.get("AlgorithmName"):
        raise InvalidSpec(
            "AlgorithmSpecification.AlgorithmName: marketplace algorithms cannot run locally; use TrainingImage"
        )
    check_instance_groups(req)
    runtime = req["StoppingCondition"]["MaxRuntimeInSeconds"]
    if runtime > constants.MAX_TRAINING_RUNTIME_S:
        raise InvalidSpec(
            f"StoppingCondition.MaxRuntimeInSeconds: {runtime} is over the platform's maximum of "
            f"{constants.MAX_TRAINING_RUNTIME_S} (28 days); give at most that"
        )
    for ch in req.get("InputDataConfig", []):
        if "DataSource" in ch and "S3DataSource" not in ch["DataSource"]:
            raise InvalidSpec(
                f"InputDataConfig[{ch['ChannelName']}].DataSource: only S3DataSource (an s3:// URI "
                "or a local path) is emulated"
            )
        src = ch.get("DataSource", {}).get("S3DataSource")
        if not src:
            raise InvalidSpec(
                f"InputDataConfig[{ch['ChannelName']}].DataSource.S3DataSource: missing; give the channel a location"
            )
        check_channel_mode(ch, algo["TrainingInputMode"])
    names = [ch["ChannelName"] for ch in req.get("InputDataConfig", [])]
    if len(set(names)) != len(names):
        raise InvalidSpec("InputDataConfig: channel names must be unique")
    # A bad regex must fail now, not after the whole job has run.
    metric_patterns(algo.get("MetricDefinitions") or [])


def check_channel_mode(ch: Mapping[str, Any], job_mode: str) -> None:
    """Refuse the input-mode combinations the platform does not offer (contract section 1.11)."""
    where = f"InputDataConfig[{ch['ChannelName']}]"
    mode = ch.get("InputMode") or job_mode
    src = ch["DataSource"]["S3DataSource"]
    data_type = src.get("S3DataType", "S3Prefix")
    gzip = ch.get("CompressionType", "None") == "Gzip"
    if mode == "FastFile" and (data_type != "S3Prefix" or gzip):
        raise InvalidSpec(
            f"{where}: FastFile reads S3Prefix data as it is (no manifests, no CompressionType Gzip); use File or Pipe"
        )
    if data_type == "AugmentedManifestFile":
        if mode != "Pipe" or ch.get("RecordWrapperType") != "RecordIO":
            raise InvalidSpec(f"{where}: AugmentedManifestFile needs InputMode Pipe and RecordWrapperType RecordIO")
        if not src.get("AttributeNames"):
            raise InvalidSpec(f"{where}.DataSource.S3DataSource.AttributeNames: give the attributes to stream")
        if gzip:
            raise InvalidSpec(f"{where}: CompressionType Gzip with AugmentedManifestFile is not emulated; use None")
    if ch.get("RecordWrapperType") == "RecordIO" and mode != "Pipe":
        raise InvalidSpec(f"{where}: RecordWrapperType RecordIO is for InputMode Pipe only; use None or Pipe")


def metric_patterns(definitions: Sequence[Mapping[str, str]]) -> list[tuple[str, re.Pattern[str]]]:
    """MetricDefinitions compiled: (name, regex) pairs.

    Raises:
        InvalidSpec: a regex does not compile.
    """
    compiled = []
    for d in definitions:
        try:
            compiled.append((d["Name"], re.compile(d["Regex"])))
        except re.error as exc:
            raise InvalidSpec(f"MetricDefinitions[{d['Name']}].Regex: {exc}; fix the regular expression") from None
    return compiled


def entrypoint_and_command(algo: Mapping[str, Any], default_arg: str) -> tuple[list[str] | None, list[str]]:
    """The platform's override semantics: ContainerEntrypoint replaces ENTRYPOINT (and drops the default
    argument); ContainerArguments replace the default argument.

    >>> entrypoint_and_command({}, "train")
    (None, ['train'])
    >>> entrypoint_and_command({"ContainerEntrypoint": ["python", "t.py"]}, "train")
    (['python', 't.py'], [])
    """
    entry = algo.get("ContainerEntrypoint")
    args = algo.get("ContainerArguments")
    if entry:
        return list(entry), list(args or [])
    return None, list(args) if args else [default_arg]


def _data_input(channel: Mapping[str, Any], job_mode: str, groups: Sequence[InstanceGroup]) -> DataInput:
    name = channel["ChannelName"]
    src = channel["DataSource"]["S3DataSource"]
    return DataInput(
        src["S3Uri"],
        f"{constants.INPUT_DATA_DIR}/{name}",
        what=f"channel {name!r}",
        data_type=src.get("S3DataType", "S3Prefix"),
        sharded=src.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key",
        mode=channel.get("InputMode") or job_mode,
        gunzip=channel.get("CompressionType", "None") == "Gzip",
        record_io=channel.get("RecordWrapperType") == "RecordIO",
        attributes=tuple(src.get("AttributeNames") or ()),
        hosts=channel_hosts(channel, groups),
        shuffle_seed=(channel.get("ShuffleConfig") or {}).get("Seed"),
    )


def _container(
    req: Mapping[str, Any],
    name: str,
    arn: str,
    config: EmulatorConfig,
    index: int,
    hosts: list[str],
    container_hostname: str,
    options: TrainingOptions,
    checkpoint_dir: str,
    group: InstanceGroup,
) -> ContainerSpec:
    algo = req["AlgorithmSpecification"]
    host = hosts[index]
    isolated = bool(req.get("EnableNetworkIsolation"))
    env = {"TRAINING_JOB_NAME": name, "TRAINING_JOB_ARN": arn}
    if not isolated:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = config.region
    gpus, gpu_env = gpu_request(group.instance_type)
    env.update(gpu_env)
    env.update(req.get("Environment") or {})
    entrypoint, command = entrypoint_and_command(algo, "train")
    files = {
        f"{constants.INPUT_CONFIG_DIR}/{file}": json.dumps(body).encode()
        for file, body in config_files(req, host, hosts, options.extra_config).items()
    }
    mounts = [Mount(constants.OPT_ML)]
    if not checkpoint_dir.startswith(constants.OPT_ML + "/"):
        mounts.append(Mount(checkpoint_dir))
    nano, mem = docker_limits(group.instance_type)
    no_network = isolated and len(hosts) == 1
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
        name=f"{name[:40]}-{host}-{_session.short_token()}",
        hostname=container_hostname,
        network_aliases=[host],
        network="none" if no_network else None,
        nano_cpus=nano,
        mem_limit=mem,
        gpus=gpus,
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


def config_files(
    req: Mapping[str, Any], host: str, hosts: list[str], extra_config: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The files of /opt/ml/input/config for ``host``: hyperparameters, inputdataconfig, resourceconfig (and
    checkpointconfig), with the platform's key names.

    ``hosts`` are in host order (each group's hosts in turn, see :func:`host_groups`); inputdataconfig.json lists
    only the channels that reach ``host``'s group (InstanceGroupNames).
    """
    algo = req["AlgorithmSpecification"]
    groups = host_groups(req["ResourceConfig"])
    index = hosts.index(host)
    mine = groups[index]
    channels = {
        ch["ChannelName"]: _channel_entry(ch, algo)
        for ch in req.get("InputDataConfig", [])
        if (reach := channel_hosts(ch, groups)) is None or index in reach
    }
    files: dict[str, Any] = {
        constants.HYPERPARAMETERS_FILE: dict(req.get("HyperParameters") or {}),
        constants.INPUT_DATA_CONFIG_FILE: channels,
        constants.RESOURCE_CONFIG_FILE: {
            "current_host": host,
            "current_instance_type": mine.instance_type,
            "current_group_name": mine.name,
            "hosts": sorted(hosts),
            "instance_groups": [
                {
                    "instance_group_name": g.name,
                    "instance_type": g.instance_type,
                    "hosts": [h for h, hg in zip(hosts, groups, strict=True) if hg.name == g.name],
                }
                for g in instance_groups(req["ResourceConfig"])
            ],
            "network_interface_name": constants.NETWORK_INTERFACE,
        },
    }
    for file, extra in extra_config.items():
        if file == constants.INPUT_DATA_CONFIG_FILE:
            for entry in files[file].values():
                entry.update(extra)
        elif file in files:
            files[file].update(extra)
    if req.get("CheckpointConfig"):
        cc = req["CheckpointConfig"]
        files[constants.CHECKPOINT_CONFIG_FILE] = {
            "LocalPath": cc.get("LocalPath") or constants.CHECKPOINT_DIR,
            "S3Uri": cc["S3Uri"],
        }
    return files


def _channel_entry(channel: Mapping[str, Any], algo: Mapping[str, Any]) -> dict[str, str]:
    """A channel's entry in inputdataconfig.json, with the platform's key names."""
    src = channel.get("DataSource", {}).get("S3DataSource", {})
    entry: dict[str, str] = {}
    if channel.get("ContentType"):
        entry["ContentType"] = channel["ContentType"]
    entry["TrainingInputMode"] = channel.get("InputMode") or algo.get("TrainingInputMode", "File")
    entry["S3DistributionType"] = src.get("S3DataDistributionType", "FullyReplicated")
    entry["RecordWrapperType"] = channel.get("RecordWrapperType", "None")
    return entry
