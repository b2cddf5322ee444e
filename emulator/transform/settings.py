"""Batch settings: the request's values, else the container's /execution-parameters, else the defaults."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from emulator.constants import (
    BATCH_STRATEGIES,
    DEFAULT_BATCH_STRATEGY,
    DEFAULT_MAX_CONCURRENT_TRANSFORMS,
    DEFAULT_MAX_PAYLOAD_IN_MB,
    EXECUTION_PARAMETERS_PATH,
    MAX_CONCURRENT_PAYLOAD_MB,
    MAX_PAYLOAD_IN_MB,
)
from emulator.errors import EmulatorError
from emulator.serving.invocations import Invoker

logger = logging.getLogger(__name__)


# -- settings: request > GET /execution-parameters > defaults -------------------------------------------------
_EXECUTION_PARAMETERS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BatchSettings:
    """The effective MaxConcurrentTransforms, MaxPayloadInMB and BatchStrategy, and where each came from."""

    max_concurrent: int
    max_payload_mb: int
    strategy: str
    sources: Mapping[str, str] = field(default_factory=dict)


class BatchSettingsError(EmulatorError):
    """Raised when /execution-parameters answers something the job cannot use, or the settings are over 100."""


def fetch_execution_parameters(invoker: Invoker) -> dict[str, Any] | None:
    """``GET /execution-parameters``: the JSON object on a 200, None for any other answer (then defaults apply).

    Raises:
        BatchSettingsError: a 200 whose body is not a JSON object.
    """
    try:
        status, body = invoker.get(EXECUTION_PARAMETERS_PATH, timeout_s=_EXECUTION_PARAMETERS_TIMEOUT_S)
    except requests.RequestException as exc:
        logger.info("GET /execution-parameters failed (%s); using defaults", exc)
        return None
    if status != 200:
        logger.info("GET /execution-parameters answered %s; using the request's values and defaults", status)
        return None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BatchSettingsError(
            f"GET /execution-parameters answered 200 with {body[:200]!r}, not a JSON object; return "
            '{"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6} '
            "or 404"
        )
    return data


def resolve_settings(request: Mapping[str, Any], params: Mapping[str, Any] | None) -> BatchSettings:
    """Each setting from the request if set (MaxConcurrentTransforms 0 counts as unset), else from
    ``/execution-parameters``, else the defaults (1, 6, MultiRecord). Both strategy spellings are accepted.

    Raises:
        BatchSettingsError: a value from ``/execution-parameters`` is invalid, or the product is over 100.
    """
    params = params or {}
    sources: dict[str, str] = {}

    def pick(key: str, default: Any, check: Callable[[Any], Any]) -> Any:
        if request.get(key):  # 0 / None / "" are unset
            sources[key] = "request"
            return request[key]
        if key == "MaxPayloadInMB" and request.get(key) == 0:
            sources[key] = "request"
            return 0
        if key in params:
            sources[key] = "execution-parameters"
            return check(params[key])
        sources[key] = "default"
        return default

    mct = pick("MaxConcurrentTransforms", DEFAULT_MAX_CONCURRENT_TRANSFORMS, _int_check("MaxConcurrentTransforms", 1))
    mpm = pick("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_IN_MB, _int_check("MaxPayloadInMB", 0, MAX_PAYLOAD_IN_MB))
    strategy = pick("BatchStrategy", DEFAULT_BATCH_STRATEGY, _strategy_check)
    strategy = BATCH_STRATEGIES[strategy]
    if mpm and mct * mpm > MAX_CONCURRENT_PAYLOAD_MB:
        raise BatchSettingsError(
            f"MaxConcurrentTransforms x MaxPayloadInMB = {mct} x {mpm} (from {sources}) is over "
            f"{MAX_CONCURRENT_PAYLOAD_MB}; lower one in the request or in /execution-parameters"
        )
    return BatchSettings(int(mct), int(mpm), str(strategy), sources)


def _int_check(key: str, low: int, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            limits = f"{low}..{high}" if high is not None else f">= {low}"
            raise BatchSettingsError(
                f"GET /execution-parameters returned {key}={value!r}, not an integer {limits}; "
                "fix the container's answer"
            )
        return value

    return check


def _strategy_check(value: Any) -> str:
    if value not in BATCH_STRATEGIES:
        raise BatchSettingsError(
            f"GET /execution-parameters returned BatchStrategy={value!r}; use MULTI_RECORD or "
            "SINGLE_RECORD (MultiRecord/SingleRecord are accepted too)"
        )
    return str(value)
