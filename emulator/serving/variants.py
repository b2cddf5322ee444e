"""Several production variants behind one endpoint name: one serving container per variant.

``with VariantEndpoint.from_config(models, variants) as ep: ep.invoke(b"1,2", content_type="text/csv")``

Each ProductionVariant of a CreateEndpointConfig request becomes its own :class:`~emulator.serving.Endpoint` (one
container), or :class:`~emulator.serving.instances.ModelInstances` for an inference pipeline or an
InitialInstanceCount above 1. InvokeEndpoint goes to the variant named by ``target_variant``
(TargetVariant), else to one drawn at random with the variants' weights (InitialVariantWeight, later
UpdateEndpointWeightsAndCapacities' DesiredWeight); a weight of 0 takes no traffic unless targeted. The answer's
InvokedProductionVariant names the variant that served it.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, Unpack

from emulator.errors import DockerUnavailable, InvalidSpec, ValidationError
from emulator.runtime import session as _session
from emulator.runtime.container import LogSink, StopResult
from emulator.serving.endpoint import Endpoint
from emulator.serving.instances import ModelInstances, first_cause, serving_endpoint, start_together
from emulator.serving.invocations import DEFAULT_VARIANT, Body, InvokeHeaders

logger = logging.getLogger(__name__)


class VariantEndpoint:
    """The production variants of one endpoint, each served by its own :class:`Endpoint`; a context manager.

    Args:
        name: the endpoint name.
        variants: (ProductionVariant dict, its Endpoint) in the order of the endpoint config; the dict's
            VariantName, InitialVariantWeight (default 1.0) and InitialInstanceCount (default 1) are used.
        rng: the random source of the weighted choice (tests pass a seeded one).
    """

    def __init__(
        self,
        name: str,
        variants: Sequence[tuple[Mapping[str, Any], Endpoint | ModelInstances]],
        *,
        rng: random.Random | None = None,
    ) -> None:
        if not variants:
            raise InvalidSpec("an endpoint needs at least one production variant")
        self.name = name
        self.endpoints: dict[str, Endpoint | ModelInstances] = {}
        self._weights: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        for variant, endpoint in variants:
            vname = str(variant.get("VariantName", DEFAULT_VARIANT))
            if vname in self.endpoints:
                raise InvalidSpec(f"production variant name {vname!r} is used twice; variant names must be unique")
            self.endpoints[vname] = endpoint
            self._weights[vname] = float(variant.get("InitialVariantWeight", 1.0))
            self._counts[vname] = int(variant.get("InitialInstanceCount", 1))
        _check_weights(self._weights)
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls,
        models: Mapping[str, Mapping[str, Any]],
        production_variants: Sequence[Mapping[str, Any]],
        *,
        name: str | None = None,
        log_sink_for: Callable[[str], LogSink] | None = None,
        rng: random.Random | None = None,
        **kwargs: Any,
    ) -> VariantEndpoint:
        """An endpoint for CreateEndpointConfig's ProductionVariants, each naming a CreateModel request in ``models``.

        Keyword arguments go to every variant's :meth:`Endpoint.from_model` (``session``, ``config`` ...).

        Raises:
            InvalidSpec: a variant names a model that is not in ``models``, or the variants do not fit the API.
        """
        name = name or _session.job_name("endpoint")
        pairs: list[tuple[Mapping[str, Any], Endpoint | ModelInstances]] = []
        for variant in production_variants:
            model = models.get(str(variant.get("ModelName")))
            if model is None:
                raise InvalidSpec(f"production variant {variant.get('VariantName')!r} names an unknown model")
            sink = log_sink_for(str(variant.get("VariantName", DEFAULT_VARIANT))) if log_sink_for else None
            extra: dict[str, Any] = {"log_sink": sink} if sink is not None else {}
            endpoint = serving_endpoint(model, production_variant=variant, name=name, **extra, **kwargs)
            pairs.append((variant, endpoint))
        return cls(name, pairs, rng=rng)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Start every variant's container side by side and wait until each answers /ping.

        Raises:
            EndpointNotReady, ContainerFailed, DockerUnavailable: the error of the variant that failed (a note names
                the variant); every variant's container is removed.
        """
        errors = start_together(list(self.endpoints.items()))
        if errors:
            self._close_quietly()
            vname, first = first_cause(errors, list(self.endpoints))
            if len(self.endpoints) > 1:
                first.add_note(f"production variant {vname} failed; every variant of endpoint {self.name} is removed")
            raise first
        return self

    def stop(self, grace_s: float | None = None) -> StopResult:
        """Stop every variant's container (any thread, any time); the last variant's StopResult."""
        result = StopResult(None, 0.0, False)
        for endpoint in self.endpoints.values():
            result = endpoint.stop(grace_s)
        return result

    def close(self) -> None:
        """Stop and remove every variant's container; idempotent. Every variant is closed before an error is raised.

        Raises:
            DockerUnavailable: the engine failed for some variant (what it could not remove is left to the sweep).
        """
        failure: BaseException | None = None
        for endpoint in self.endpoints.values():
            try:
                endpoint.close()
            except DockerUnavailable as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def _close_quietly(self) -> None:
        for endpoint in self.endpoints.values():
            try:
                endpoint.close()
            except DockerUnavailable as exc:
                logger.warning("endpoint %s: %s (left to the exit sweep)", self.name, exc)

    # -- traffic -------------------------------------------------------------------------------------------
    @property
    def weights(self) -> dict[str, float]:
        """The current weight of every variant, by name."""
        with self._lock:
            return dict(self._weights)

    def update_weights(self, desired: Mapping[str, float], counts: Mapping[str, int] | None = None) -> None:
        """UpdateEndpointWeightsAndCapacities: new weights (and the instance counts Describe reports) by variant.

        Raises:
            ValidationError: an unknown variant name, a negative weight, or no variant left with a weight above 0.
        """
        self._check_known(set(desired) | set(counts or {}))
        with self._lock:
            weights = {**self._weights, **{k: float(v) for k, v in desired.items()}}
            _check_weights(weights, error=ValidationError)
            self._weights = weights
            self._counts.update({k: int(v) for k, v in (counts or {}).items()})

    def _check_known(self, names: set[str]) -> None:
        unknown = sorted(names - set(self.endpoints))
        if unknown:
            raise ValidationError(
                f"The variant name(s) [{', '.join(unknown)}] are not present in endpoint {self.name}; its variants "
                f"are [{', '.join(self.endpoints)}]."
            )

    def scale(self, counts: Mapping[str, int]) -> None:
        """DesiredInstanceCount by variant: each :class:`ModelInstances` variant starts or removes instances (see
        :meth:`ModelInstances.scale`); a plain :class:`Endpoint` variant (one container) only reports the count.

        Raises:
            ValidationError: an unknown variant or a count below 1.
            EndpointNotReady, ContainerFailed, DockerUnavailable: a new instance did not start (the variant keeps
                the instances it had).
        """
        self._check_known(set(counts))
        for vname, count in counts.items():
            with self._lock:
                self._counts[vname] = int(count)  # DesiredInstanceCount while it scales
            endpoint = self.endpoints[vname]
            if isinstance(endpoint, ModelInstances):
                try:
                    endpoint.scale(int(count))
                finally:
                    with self._lock:
                        self._counts[vname] = len(endpoint.instances)

    def choose(self, target_variant: str | None = None) -> str:
        """The variant a request goes to: ``target_variant`` if given, else a weighted random pick.

        Raises:
            ValidationError: ``target_variant`` is not a variant of this endpoint.
        """
        if target_variant is not None:
            if target_variant not in self.endpoints:
                raise ValidationError(
                    f"The variant {target_variant} was not found for endpoint {self.name}. Specify a TargetVariant "
                    f"among [{', '.join(self.endpoints)}], or none for weighted routing."
                )
            return target_variant
        with self._lock:
            names = [n for n, w in self._weights.items() if w > 0]
            return self._rng.choices(names, weights=[self._weights[n] for n in names])[0]

    def invoke(
        self,
        body: Body,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        timeout_s: float | None = None,
        **headers: Unpack[InvokeHeaders],
    ) -> dict[str, Any]:
        """Like sagemaker-runtime InvokeEndpoint, routed to one variant (see :meth:`choose`); as Endpoint.invoke."""
        endpoint = self.endpoints[self.choose(headers.get("target_variant"))]
        return endpoint.invoke(
            body,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            timeout_s=timeout_s,
            **headers,
        )

    def describe(self) -> dict[str, Any]:
        """The endpoint as DescribeEndpoint returns it, with every variant."""
        first = next(iter(self.endpoints.values())).describe()
        statuses = {e.status for e in self.endpoints.values()}
        status = next((s for s in ("Failed", "Creating", "Deleting") if s in statuses), first["EndpointStatus"])
        return {**first, "EndpointStatus": status, "ProductionVariants": self.describe_variants(status == "InService")}

    def running_instances(self, vname: str) -> int:
        """How many instances of a variant serve (a plain Endpoint variant: the count it reports)."""
        endpoint = self.endpoints[vname]
        return len(endpoint.instances) if isinstance(endpoint, ModelInstances) else self._counts[vname]

    def describe_variants(self, in_service: bool = True) -> list[dict[str, Any]]:
        """DescribeEndpoint's ProductionVariants: every variant's weights and instance counts."""
        with self._lock:
            return [
                {
                    "VariantName": vname,
                    "CurrentWeight": self._weights[vname],
                    "DesiredWeight": self._weights[vname],
                    "CurrentInstanceCount": self.running_instances(vname) if in_service else 0,
                    "DesiredInstanceCount": self._counts[vname],
                }
                for vname in self.endpoints
            ]


def _check_weights(weights: Mapping[str, float], error: type[Exception] = InvalidSpec) -> None:
    negative = sorted(n for n, w in weights.items() if w < 0)
    if negative:
        raise error(f"variant weights must be 0 or more; {', '.join(negative)} has a negative weight")
    if not any(w > 0 for w in weights.values()):
        raise error(
            "at least one production variant needs a weight above 0 (InitialVariantWeight / DesiredWeight); "
            "all are 0, so no request could be routed"
        )
