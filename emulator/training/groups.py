"""Heterogeneous training clusters: ResourceConfig.InstanceGroups and the channels' InstanceGroupNames (pure).

A homogeneous cluster (InstanceType x InstanceCount) is the one group ``homogeneousCluster``, as the platform
writes it into resourceconfig.json. Hosts are numbered in group order: the first group's hosts are algo-1..k,
the next group's follow (the platform does not promise an order; images read resourceconfig.json). A channel
with InstanceGroupNames reaches only the hosts of those groups (sharded among them with ShardedByS3Key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulator import constants
from emulator.errors import InvalidSpec


@dataclass(frozen=True)
class InstanceGroup:
    """One instance group of a training cluster."""

    name: str
    instance_type: str
    count: int


def instance_groups(resource_config: Mapping[str, Any]) -> list[InstanceGroup]:
    """The cluster's groups in request order: ResourceConfig.InstanceGroups, or InstanceType x InstanceCount.

    >>> instance_groups({"InstanceType": "ml.m5.large", "InstanceCount": 2})
    [InstanceGroup(name='homogeneousCluster', instance_type='ml.m5.large', count=2)]
    """
    if resource_config.get("InstanceGroups"):
        return [
            InstanceGroup(g["InstanceGroupName"], g["InstanceType"], int(g["InstanceCount"]))
            for g in resource_config["InstanceGroups"]
        ]
    return [
        InstanceGroup(
            constants.HOMOGENEOUS_GROUP, resource_config["InstanceType"], int(resource_config["InstanceCount"])
        )
    ]


def host_groups(resource_config: Mapping[str, Any]) -> list[InstanceGroup]:
    """Each host's group, in host order: the hosts of the first group, then the second's, ... (algo-1..N).

    >>> [g.name for g in host_groups({"InstanceGroups": [
    ...     {"InstanceGroupName": "a", "InstanceType": "ml.m5.large", "InstanceCount": 2},
    ...     {"InstanceGroupName": "b", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1}]})]
    ['a', 'a', 'b']
    """
    return [g for g in instance_groups(resource_config) for _ in range(g.count)]


def channel_groups(channel: Mapping[str, Any]) -> list[str]:
    """A channel's S3DataSource.InstanceGroupNames (empty: the channel reaches every host)."""
    return list(channel.get("DataSource", {}).get("S3DataSource", {}).get("InstanceGroupNames") or [])


def channel_hosts(channel: Mapping[str, Any], groups: Sequence[InstanceGroup]) -> tuple[int, ...] | None:
    """The hosts (indexes) a channel reaches: those of its InstanceGroupNames, given each host's group
    (:func:`host_groups`); None: every host."""
    names = channel_groups(channel)
    return tuple(i for i, g in enumerate(groups) if g.name in names) if names else None


def check_instance_groups(req: Mapping[str, Any]) -> None:
    """ResourceConfig and the channels' InstanceGroupNames checked as the platform does (its messages where known:
    "InstanceType or InstanceCount cannot be specified with InstanceGroups", "Some channels have assigned instance
    groups: [...] while others not: [...]"). botocore's model checks the rest (at most 5 groups, names 1-64).

    Raises:
        InvalidSpec: InstanceType/InstanceCount beside InstanceGroups, a group name twice, a group of no instance,
            a channel naming a group there is not, InstanceGroupNames without groups, or some channels assigned to
            groups and others not.
    """
    res = req["ResourceConfig"]
    channels = req.get("InputDataConfig", [])
    assigned = [ch["ChannelName"] for ch in channels if channel_groups(ch)]
    if not res.get("InstanceGroups"):
        if res.get("InstanceCount", 1) < 1:
            raise InvalidSpec("ResourceConfig.InstanceCount: must be at least 1")
        if assigned:
            raise InvalidSpec(
                f"InputDataConfig[{assigned[0]}].DataSource.S3DataSource.InstanceGroupNames: the cluster has no "
                "instance groups; give ResourceConfig.InstanceGroups or remove InstanceGroupNames"
            )
        return
    if "InstanceType" in res or "InstanceCount" in res:
        raise InvalidSpec(
            "ResourceConfig: InstanceType or InstanceCount cannot be specified with InstanceGroups; give each "
            "group's type and count in InstanceGroups"
        )
    names = [g["InstanceGroupName"] for g in res["InstanceGroups"]]
    for g in res["InstanceGroups"]:
        where = f"ResourceConfig.InstanceGroups[{g['InstanceGroupName']}]"
        if names.count(g["InstanceGroupName"]) > 1:
            raise InvalidSpec(f"{where}: the group name is given twice; give each group a name of its own")
        if g["InstanceCount"] < 1:
            raise InvalidSpec(f"{where}.InstanceCount: must be at least 1 (a group of no instance is not emulated)")
    for ch in channels:
        for group in channel_groups(ch):
            if group not in names:
                raise InvalidSpec(
                    f"InputDataConfig[{ch['ChannelName']}].DataSource.S3DataSource.InstanceGroupNames: {group!r} "
                    f"is not a group of ResourceConfig.InstanceGroups ({', '.join(names)}); fix the name"
                )
    others = [ch["ChannelName"] for ch in channels if ch["ChannelName"] not in assigned]
    if assigned and others:
        raise InvalidSpec(
            f"InputDataConfig: some channels have assigned instance groups: [{', '.join(assigned)}] while others "
            f"not: [{', '.join(others)}]; give every channel InstanceGroupNames, or none"
        )
