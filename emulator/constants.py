"""The container contract's paths, ports and limits, in one place (see docs/contract-choices.md)."""

from __future__ import annotations

OPT_ML = "/opt/ml"
INPUT_CONFIG_DIR = "/opt/ml/input/config"
INPUT_DATA_DIR = "/opt/ml/input/data"
MODEL_DIR = "/opt/ml/model"
OUTPUT_DIR = "/opt/ml/output"
OUTPUT_DATA_DIR = "/opt/ml/output/data"
FAILURE_FILE = "/opt/ml/output/failure"
MESSAGE_FILE = "/opt/ml/output/message"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
PROCESSING_CONFIG_DIR = "/opt/ml/config"
PROCESSING_DIR = "/opt/ml/processing"

HYPERPARAMETERS_FILE = "hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "inputdataconfig.json"
RESOURCE_CONFIG_FILE = "resourceconfig.json"
CHECKPOINT_CONFIG_FILE = "checkpointconfig.json"
PROCESSING_JOB_CONFIG_FILE = "processingjobconfig.json"

SERVING_PORT = 8080
PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
EXECUTION_PARAMETERS_PATH = "/execution-parameters"

#: InvokeEndpoint request and response bodies are at most 6 MiB (BodyBlob).
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: The container must answer /invocations within 60 s on a real-time endpoint.
INVOCATION_TIMEOUT_S = 60.0
#: Each /ping must answer within 2 s.
PING_TIMEOUT_S = 2.0
#: DescribeTrainingJob.FailureReason and DescribeProcessingJob.ExitMessage hold at most 1024 characters.
MAX_FAILURE_REASON_CHARS = 1024
MAX_EXIT_MESSAGE_BYTES = 1024

HOMOGENEOUS_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"

#: Every container and network the emulator creates carries these labels.
LABEL_MANAGED = "sagemaker-emulator.managed"
LABEL_SESSION = "sagemaker-emulator.session"
LABEL_KIND = "sagemaker-emulator.kind"
LABEL_JOB = "sagemaker-emulator.job"
LABEL_PID = "sagemaker-emulator.pid"


def host_name(index: int) -> str:
    """The platform's host names: algo-1 .. algo-N."""
    return f"algo-{index + 1}"
