"""The container contract's paths, ports and limits, in one place (see docs/contract-choices.md)."""

from __future__ import annotations

OPT_ML = "/opt/ml"
INPUT_DIR = "/opt/ml/input"
INPUT_CONFIG_DIR = "/opt/ml/input/config"
INPUT_DATA_DIR = "/opt/ml/input/data"
MODEL_DIR = "/opt/ml/model"
OUTPUT_DIR = "/opt/ml/output"
OUTPUT_DATA_DIR = "/opt/ml/output/data"
FAILURE_FILE = "/opt/ml/output/failure"
MESSAGE_FILE = "/opt/ml/output/message"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
#: The emulator's choice (the platform syncs "continuously" at an undocumented pace): while a job runs, its
#: checkpoint dir is read through Docker's archive API this often and new or changed files are uploaded ...
CHECKPOINT_SYNC_INTERVAL_S = 5.0
#: ... and a slow read (large checkpoints) spaces the next one out: at least this many times its own duration.
CHECKPOINT_SYNC_BACKOFF = 4.0
#: ml.p* and ml.g* hosts see their GPUs as devices 0..n-1 of this variable (NVIDIA's container runtime reads it).
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"
#: Pipe mode (RecordWrapperType RecordIO): MXNet RecordIO's magic number, before each record's length word.
RECORDIO_MAGIC = 0xCED7230A
#: Where framework containers put the user's code (SageMaker provides it; not an artifact).
CODE_DIR = "/opt/ml/code"
PROCESSING_CONFIG_DIR = "/opt/ml/config"
PROCESSING_DIR = "/opt/ml/processing"

HYPERPARAMETERS_FILE = "hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "inputdataconfig.json"
RESOURCE_CONFIG_FILE = "resourceconfig.json"
CHECKPOINT_CONFIG_FILE = "checkpointconfig.json"
PROCESSING_JOB_CONFIG_FILE = "processingjobconfig.json"

SERVING_PORT = 8080
#: An image with this label set to "true" lets SageMaker choose its serving port: the container gets
#: SAGEMAKER_BIND_TO_PORT (listen there, not on 8080) and SAGEMAKER_SAFE_PORT_RANGE (inclusive "lo-hi", for any
#: second port it opens). Images without it listen on 8080 and get neither variable.
LABEL_ACCEPT_BIND_TO_PORT = "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"
#: The emulator draws SAGEMAKER_BIND_TO_PORT from this inclusive range (never 8080, so a hard-coded port shows).
BIND_TO_PORT_RANGE = (9000, 9099)
#: SAGEMAKER_SAFE_PORT_RANGE as the emulator sets it (inclusive; the bind port is outside it).
SAFE_PORT_RANGE = (9100, 9199)
#: Multi-model endpoints (CreateModel Mode MultiModel): the image must carry this label set to "true" ...
LABEL_MULTI_MODELS = "com.amazonaws.sagemaker.capabilities.multi-models"
#: ... the container gets SAGEMAKER_MULTI_MODEL=true, each TargetModel is extracted under MODELS_DIR/<name>/model
#: (read-only) before ``POST /models`` loads it, and ``POST /models/<name>/invoke`` serves it.
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
MODELS_DIR = "/opt/ml/models"
MODELS_PATH = "/models"
#: The emulator's memory bound for a multi-model endpoint (the platform's is the instance's memory, undocumented):
#: at most this many models loaded in one container; loading one more unloads the least recently used first. A
#: container that answers 507 (out of memory) to a load also makes the emulator unload the least recently used one
#: and retry; with nothing left to unload the 507 reaches the client as a ModelError.
MME_MAX_LOADED_MODELS = 16
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
#: AlgorithmSpecification.MetricDefinitions: at most 40 entries, each Name 1-255 and Regex 1-500 characters.
MAX_METRIC_DEFINITIONS = 40
MAX_METRIC_NAME_CHARS = 255
MAX_METRIC_REGEX_CHARS = 500

#: What a local run defaults to where the API requires a value.
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_VOLUME_SIZE_GB = 30
#: StoppingCondition.MaxRuntimeInSeconds: the platform's default (1 day) ...
DEFAULT_MAX_RUNTIME_S = 86400
#: ... and its upper bound for training (28 days; botocore's model gives no max, processing's is 777600).
MAX_TRAINING_RUNTIME_S = 28 * 86400
#: The platform waits 120 s between SIGTERM and SIGKILL for training and processing ...
TRAINING_STOP_GRACE_S = 120.0
#: ... and 30 s for serving containers.
SERVING_STOP_GRACE_S = 30.0
#: A new endpoint has 4 minutes to pass /ping (ContainerStartupHealthCheckTimeoutInSeconds' default).
STARTUP_TIMEOUT_S = 240.0
#: The emulator's own choice, not the platform's (docs/contract-choices.md): with ``fail_fast``, an endpoint's
#: start fails as soon as a sure sign has held this long: something listens, but not on 0.0.0.0:8080 ...
FAST_FAIL_LISTEN_S = 3.0
#: ... or GET /ping keeps answering something other than 200 or 503 (503: still loading), or keeps answering only
#: after more than PING_TIMEOUT_S (no answer at all proves nothing: workers may still be booting).
FAST_FAIL_PING_S = 30.0

HOMOGENEOUS_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"

#: Every container and network the emulator creates carries these labels.
LABEL_MANAGED = "sagemaker-emulator.managed"
LABEL_SESSION = "sagemaker-emulator.session"
LABEL_KIND = "sagemaker-emulator.kind"
LABEL_JOB = "sagemaker-emulator.job"
LABEL_PID = "sagemaker-emulator.pid"
#: A multi-model endpoint's container also carries its ModelDataUrl, staging dir, cache setting and bound (so that
#: ``invoke NAME --target-model`` in another process can load models into it).
LABEL_MME_SOURCE = "sagemaker-emulator.mme-source"
LABEL_MME_STAGING = "sagemaker-emulator.mme-staging"
LABEL_MME_CACHE = "sagemaker-emulator.mme-cache"
LABEL_MME_MAX_LOADED = "sagemaker-emulator.mme-max-loaded"
#: On each container of an inference pipeline: "<position>/<count> <container name>" (``invoke NAME`` from another
#: process cannot run the chain, and says so).
LABEL_PIPELINE_CONTAINER = "sagemaker-emulator.pipeline-container"


def host_name(index: int) -> str:
    """The platform's host names: algo-1 .. algo-N."""
    return f"algo-{index + 1}"


# -- batch transform
#: BatchStrategy as the API spells it.
SINGLE_RECORD = "SingleRecord"
MULTI_RECORD = "MultiRecord"
#: The API's spelling -> the environment's (SAGEMAKER_BATCH_STRATEGY, the documented /execution-parameters answer).
BATCH_STRATEGY_ENV = {SINGLE_RECORD: "SINGLE_RECORD", MULTI_RECORD: "MULTI_RECORD"}
#: Either spelling -> the API's (both are accepted wherever a strategy is read).
BATCH_STRATEGIES = {**{api: api for api in BATCH_STRATEGY_ENV}, **{env: api for api, env in BATCH_STRATEGY_ENV.items()}}
#: The platform's default is unverified; SDK local mode uses MultiRecord, and so does the emulator.
DEFAULT_BATCH_STRATEGY = MULTI_RECORD
DEFAULT_MAX_CONCURRENT_TRANSFORMS = 1
DEFAULT_MAX_PAYLOAD_IN_MB = 6
#: MaxPayloadInMB is at most 100 (0: no limit).
MAX_PAYLOAD_IN_MB = 100
#: Limit of MaxConcurrentTransforms x MaxPayloadInMB.
MAX_CONCURRENT_PAYLOAD_MB = 100
#: ModelClientConfig.InvocationsTimeoutInSeconds is at most 3600 (batch transform).
MAX_INVOCATIONS_TIMEOUT_S = 3600
#: ModelClientConfig's defaults: InvocationsTimeoutInSeconds and InvocationsMaxRetries.
DEFAULT_INVOCATIONS_TIMEOUT_S = 600
DEFAULT_INVOCATIONS_MAX_RETRIES = 3

# -- hyperparameter tuning
#: ResourceLimits.MaxNumberOfTrainingJobs when a request gives none (the SDK's HyperparameterTuner default max_jobs).
DEFAULT_TUNING_MAX_JOBS = 1
#: The platform ends a tuning job Failed when this many training jobs failed and none succeeded
#: ("No training job succeeded after 5 attempts").
TUNING_FAILED_JOBS_BEFORE_FAILING = 5
#: Early stopping (TrainingJobEarlyStoppingType Auto) compares a job with the median of earlier jobs at the same
#: step, once this many jobs have reported.
EARLY_STOPPING_MIN_JOBS = 3
#: The FailureReason of a training job of a tuning job whose logs never matched the objective metric's regex.
NO_OBJECTIVE_REASON = (
    "ClientError: No objective metrics found after running the training job. Please ensure that the algorithm "
    "emits the objective metric as defined by the regular expression provided."
)

#: A remote engine (emulator/runtime/remote.py): how long a published port of a running container may refuse
#: connections on 127.0.0.1 here before the start fails as unreachable (Docker's proxy accepts at once).
REMOTE_PORT_PATIENCE_S = 10.0
