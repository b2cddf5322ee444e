"""Models, endpoint configs, endpoints and InvokeEndpoint over the library's ``Endpoint``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from emulator.api.protocol import ApiError, validation
from emulator.api.registry import Registry
from emulator.api.store import Record
from emulator.errors import EmulatorError, ModelError, ValidationError
from emulator.runtime import session as _session
from emulator.serving.variants import VariantEndpoint

logger = logging.getLogger(__name__)


class HostingOperations(Registry):
    """The hosting operations."""

    def create_model(self, p: dict[str, Any]) -> dict[str, Any]:
        from emulator.serving import ModelDefinition

        request = {k: v for k, v in p.items() if k != "Tags"}
        try:
            ModelDefinition.from_request(request)
        except EmulatorError as exc:
            raise validation(str(exc)) from None
        name = p["ModelName"]
        arn = self._arn("Model", name)
        data = {**request, "ModelArn": arn, "Request": request}
        record = self._new("Model", name, data, p.get("Tags"))
        record.data["CreationTime"] = record.created
        self.store.put(record)
        return {"ModelArn": record.arn}

    def describe_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("Model", p["ModelName"])

    def delete_model(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._delete("Model", p["ModelName"])

    def list_models(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("Model", p)

    def create_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointConfigName"]
        request = {k: v for k, v in p.items() if k != "Tags"}
        record = self._new("EndpointConfig", name, {}, p.get("Tags"))
        record.data = {**request, "EndpointConfigArn": record.arn, "CreationTime": record.created}
        self.store.put(record)
        return {"EndpointConfigArn": record.arn}

    def describe_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("EndpointConfig", p["EndpointConfigName"])

    def delete_endpoint_config(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._delete("EndpointConfig", p["EndpointConfigName"])

    def list_endpoint_configs(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("EndpointConfig", p)

    # -- endpoints -----------------------------------------------------------------------------------------
    def create_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name, config_name = p["EndpointName"], p["EndpointConfigName"]
        self._get("EndpointConfig", config_name)
        record = self._new("Endpoint", name, {}, p.get("Tags"))
        self._start_endpoint(record, config_name)
        return {"EndpointArn": record.arn}

    def _start_endpoint(self, record: Record, config_name: str, *, replacing: VariantEndpoint | None = None) -> None:
        """Bring the endpoint up in the background: Creating (or Updating) -> InService or Failed.

        Every ProductionVariant gets its own container (see emulator.serving.variants)."""
        try:
            config = self._get("EndpointConfig", config_name).data
            variants = [dict(v) for v in config["ProductionVariants"]]
            models = {v["ModelName"]: self._get("Model", v["ModelName"]).data["Request"] for v in variants}
        except ApiError as exc:
            record.data = self._endpoint_data(record, config_name, "Failed", failure=exc.message)
            self.store.put(record)
            raise
        status = "Updating" if replacing is not None else "Creating"
        record.data = self._endpoint_data(record, config_name, status, variants=variants)
        self.store.put(record)
        try:
            endpoint = VariantEndpoint.from_config(
                models,
                variants,
                name=record.name,
                session=self.session,
                log_sink_for=lambda variant: self.logs.endpoint_sink(record.name, variant),
                scalable=True,  # UpdateEndpointWeightsAndCapacities starts and removes instances
            )
        except EmulatorError as exc:
            record.data = self._endpoint_data(record, config_name, "Failed", variants=variants, failure=str(exc))
            self.store.put(record)
            return

        with self._lock:
            self._starting[record.name] = endpoint

        def bring_up() -> None:
            try:
                endpoint.start()
                failure = None
            except Exception as exc:
                failure = str(exc).split("\n", 1)[0]
            with self._lock:
                self._starting.pop(record.name, None)
                # Deleted meanwhile, or the server stops: nothing to record (a restart brings it back).
                gone = self._records["Endpoint"].get(record.name) is not record or self._closing.is_set()
                old = None
                if failure is None and not gone:
                    old = self._live.get(("Endpoint", record.name))
                    self._live[("Endpoint", record.name)] = endpoint
            if failure is not None or gone:
                endpoint.close()
            if old is not None and old is not endpoint:
                old.close()
            if gone:
                return
            if failure is None:
                record.data = self._endpoint_data(record, config_name, "InService", variants=variants)
            elif replacing is not None:  # a failed update leaves the old endpoint serving
                record.data = {**record.data, "EndpointStatus": "InService", "FailureReason": failure}
            else:
                record.data = self._endpoint_data(record, config_name, "Failed", variants=variants, failure=failure)
            self.store.put(record)

        t = threading.Thread(target=bring_up, name=f"endpoint-{record.name}"[:60], daemon=True)
        self._threads.append(t)
        t.start()

    def _endpoint_data(
        self,
        record: Record,
        config_name: str,
        status: str,
        *,
        variants: Sequence[Mapping[str, Any]] | None = None,
        failure: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "EndpointName": record.name,
            "EndpointArn": record.arn,
            "EndpointConfigName": config_name,
            "EndpointStatus": status,
            "CreationTime": record.created,
            "LastModifiedTime": _session.now(),
        }
        if variants is not None:
            data["ProductionVariants"] = [
                {
                    "VariantName": v.get("VariantName", "AllTraffic"),
                    "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
                    "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                    "CurrentInstanceCount": int(v.get("InitialInstanceCount", 1)) if status == "InService" else 0,
                    "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
                }
                for v in variants
            ]
        if failure:
            data["FailureReason"] = failure[:1024]
        return data

    def describe_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._describe("Endpoint", p["EndpointName"])

    def update_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        record = self._get("Endpoint", p["EndpointName"])
        self._get("EndpointConfig", p["EndpointConfigName"])
        if record.data.get("EndpointStatus") not in ("InService", "Failed"):
            raise validation(f"Cannot update endpoint {record.name} while it is {record.data.get('EndpointStatus')}.")
        self._start_endpoint(record, p["EndpointConfigName"], replacing=self._live.get(("Endpoint", record.name)))
        return {"EndpointArn": record.arn}

    def update_endpoint_weights_and_capacities(self, p: dict[str, Any]) -> dict[str, Any]:
        """New variant weights at once; new instance counts (DesiredInstanceCount) are started or removed in the
        background while the endpoint is Updating and serves on (back to InService when done; a failed start is
        the FailureReason and the variant keeps the instances it had)."""
        record = self._get("Endpoint", p["EndpointName"])
        endpoint = self._live.get(("Endpoint", record.name))
        if endpoint is None or record.data.get("EndpointStatus") != "InService":
            raise validation(f"Cannot update endpoint {record.name} while it is {record.data.get('EndpointStatus')}.")
        wanted = p["DesiredWeightsAndCapacities"]
        counts = {w["VariantName"]: int(w["DesiredInstanceCount"]) for w in wanted if "DesiredInstanceCount" in w}
        if any(n < 1 for n in counts.values()):
            raise validation(f"DesiredInstanceCount must be 1 or more for endpoint {record.name}.")
        try:
            changing = {
                v: n for v, n in counts.items() if v in endpoint.endpoints and endpoint.running_instances(v) != n
            }
            endpoint.update_weights(
                {w["VariantName"]: w["DesiredWeight"] for w in wanted if "DesiredWeight" in w}, counts
            )
        except ValidationError as exc:
            raise validation(str(exc)) from None
        status = "Updating" if changing else "InService"
        record.data = {
            **record.data,
            "EndpointStatus": status,
            "ProductionVariants": endpoint.describe_variants(),
            "LastModifiedTime": _session.now(),
        }
        record.data.pop("FailureReason", None)
        self.store.put(record)
        if changing:
            t = threading.Thread(
                target=self._scale, args=(record, endpoint, changing), name=f"scale-{record.name}"[:60], daemon=True
            )
            self._threads.append(t)
            t.start()
        return {"EndpointArn": record.arn}

    def _scale(self, record: Record, endpoint: VariantEndpoint, counts: Mapping[str, int]) -> None:
        failure = None
        try:
            endpoint.scale(counts)
        except Exception as exc:
            failure = str(exc).split("\n", 1)[0]
        with self._lock:
            if (
                self._records["Endpoint"].get(record.name) is not record
                or self._live.get(("Endpoint", record.name)) is not endpoint
            ):
                return  # deleted or replaced meanwhile
            record.data = {
                **record.data,
                "EndpointStatus": "InService",
                "ProductionVariants": endpoint.describe_variants(),
                "LastModifiedTime": _session.now(),
            }
            if failure:
                record.data["FailureReason"] = failure[:1024]
        self.store.put(record)

    def delete_endpoint(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["EndpointName"]
        self._get("Endpoint", name)
        with self._lock:
            endpoint = self._live.pop(("Endpoint", name), None)
            starting = self._starting.pop(name, None)
            self._records["Endpoint"].pop(name, None)
        if starting is not None:
            starting.stop(grace_s=0)  # its start fails and removes it
        self.store.delete("Endpoint", name)
        if endpoint is not None:
            threading.Thread(target=endpoint.close, name=f"delete-{name}"[:60], daemon=True).start()
        return {}

    def list_endpoints(self, p: dict[str, Any]) -> dict[str, Any]:
        return self._list("Endpoint", p)

    def invoke_endpoint(self, name: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """sagemaker-runtime InvokeEndpoint: the answer's members (Body as bytes), or the runtime's errors."""
        endpoint = self._live.get(("Endpoint", name))
        if endpoint is None:
            record = self._records["Endpoint"].get(name)
            if record is None:
                raise ApiError("ValidationError", f"Endpoint {name} of account {self.config.account_id} not found.")
            raise ApiError("ValidationError", f"Endpoint {name} is {record.data.get('EndpointStatus')}, not InService.")
        extra = {
            key: headers[header]
            for key, header in (
                ("target_model", "X-Amzn-SageMaker-Target-Model"),
                ("target_variant", "X-Amzn-SageMaker-Target-Variant"),
                ("target_container_hostname", "X-Amzn-SageMaker-Target-Container-Hostname"),
                ("inference_id", "X-Amzn-SageMaker-Inference-Id"),
                ("enable_explanations", "X-Amzn-SageMaker-Enable-Explanations"),
                ("inference_component_name", "X-Amzn-SageMaker-Inference-Component"),
                ("session_id", "X-Amzn-SageMaker-Session-Id"),
            )
            if headers.get(header)
        }
        try:
            result: dict[str, Any] = endpoint.invoke(
                body,
                content_type=headers.get("Content-Type"),
                accept=headers.get("Accept"),
                custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
                **extra,
            )
        except ModelError as exc:
            raise ModelApiError(exc, self.config.region, self.config.account_id, name) from None
        except ValidationError as exc:
            raise ApiError("ValidationError", str(exc)) from None
        except EmulatorError as exc:
            raise ApiError("ServiceUnavailable", str(exc), 503) from None
        return result


class ModelApiError(ApiError):
    """sagemaker-runtime's ModelError (424): the container answered 4xx/5xx, with its status and message."""

    def __init__(self, exc: ModelError, region: str, account: str, endpoint: str) -> None:
        super().__init__("ModelError", str(exc), 424)
        self.original_status_code = exc.original_status_code
        self.original_message = exc.original_message
        self.log_stream_arn = f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
