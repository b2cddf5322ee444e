"""Hosting: models (CreateModel), real-time endpoints and InvokeEndpoint."""

from emulator.runtime.container import StopResult
from emulator.serving.endpoint import Endpoint
from emulator.serving.instances import ModelInstances, serving_endpoint
from emulator.serving.invocations import find_endpoint_url
from emulator.serving.models import ModelDefinition, ModelSource, create_model, delete_model, get_model
from emulator.serving.multimodel import MultiModelEndpoint, invoke_endpoint
from emulator.serving.variants import VariantEndpoint

__all__ = [
    "Endpoint",
    "ModelDefinition",
    "ModelInstances",
    "ModelSource",
    "MultiModelEndpoint",
    "StopResult",
    "VariantEndpoint",
    "create_model",
    "delete_model",
    "find_endpoint_url",
    "get_model",
    "invoke_endpoint",
    "serving_endpoint",
]
