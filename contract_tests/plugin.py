"""The pytest plugin of the SageMaker contract suite: options, layered fixtures, skips and the cleanup net.

Registered through the ``pytest11`` entry point ``contract_tests.plugin`` (and, in a checkout, by the root
``conftest.py``; the names match, so it never registers twice). ``pytest --image IMAGE`` runs the suite
(in a checkout or a project with its own ``testpaths``, the suite replaces the default test paths);
``pytest --pyargs contract_tests --image IMAGE`` does the same from an installed package.

Fixtures, from configuration to resources (override the first three in a ``conftest.py``):

* ``sagemaker_image`` -- the image under test (``--image``);
* ``contract_config`` -- the :class:`~contract_tests.config.ContractConfig` (``--contract-config``);
* ``emulator_config`` -- the :class:`emulator.EmulatorConfig` the jobs run with;
* ``contract_harness`` -- runs training jobs, endpoints and processing jobs with the emulator;
* ``trained_model`` -- the one training job every later check reuses (session);
* ``shared_endpoint`` -- the one serving container all serving checks share (session);
* ``sagemaker_endpoint`` -- the same, checked alive (restarted if a check killed it) before each test.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contract_tests import _report
from contract_tests._diagnosis import RootCause
from contract_tests._report import CHECKS
from contract_tests._runs import ContractOptions, EndpointHandle, Harness, TrainingRun
from contract_tests.config import ContractConfig, ContractConfigError, load_config
from emulator.constants import INVOCATION_TIMEOUT_S, SERVING_STOP_GRACE_S, STARTUP_TIMEOUT_S, TRAINING_STOP_GRACE_S

if TYPE_CHECKING:
    from emulator import EmulatorConfig

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
NO_IMAGE_REASON = "pass --image IMAGE to run the SageMaker contract suite"
_CONFIG_KEY = pytest.StashKey[ContractConfig]()
_OPTIONS_KEY = pytest.StashKey[ContractOptions]()


# -- options and configuration ----------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the suite's options (group "sagemaker contract")."""
    group = parser.getgroup("sagemaker contract", "SageMaker contract suite (contract_tests)")
    group.addoption(
        "--image",
        dest="sagemaker_image",
        metavar="IMAGE",
        default=None,
        help="the image to check against the SageMaker container contract; without it the suite's checks are skipped",
    )
    group.addoption(
        "--contract-config",
        dest="contract_config_path",
        metavar="FILE",
        default=None,
        help="contract config (YAML) with the image's sample data, requests and capabilities; "
        "default: the sample algorithm's (python -m emulator init-contract writes a starter)",
    )
    group.addoption(
        "--keep-containers",
        dest="contract_keep_containers",
        action="store_true",
        default=False,
        help="leave the suite's containers behind for debugging (remove them with 'python -m emulator cleanup')",
    )
    group.addoption(
        "--startup-timeout",
        dest="contract_startup_timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help=f"bound for a serving container to pass /ping (default: the platform's {STARTUP_TIMEOUT_S:g} s). Sure "
        "failures (the server exited, listens on 127.0.0.1 or another port, /ping answers an error or takes over "
        "2 s) are reported within seconds whatever this is",
    )
    group.addoption(
        "--invocation-timeout",
        dest="contract_invocation_timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help=f"bound for one POST /invocations (default: the platform's {INVOCATION_TIMEOUT_S:g} s)",
    )
    group.addoption(
        "--contract-strict",
        dest="contract_strict",
        action="store_true",
        default=False,
        help="fail every SHOULD the image misses (the checks' warnings become failures): for a gate",
    )
    group.addoption(
        "--stop-timeout",
        dest="contract_stop_timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="SIGTERM grace period the SIGTERM checks allow before SIGKILL (default: the platform's "
        f"{TRAINING_STOP_GRACE_S:g} s for training, {SERVING_STOP_GRACE_S:g} s for serving)",
    )


def _options(config: pytest.Config) -> ContractOptions:
    startup = config.getoption("contract_startup_timeout")
    invocation = config.getoption("contract_invocation_timeout")
    stop = config.getoption("contract_stop_timeout")
    for name, value in (("--startup-timeout", startup), ("--invocation-timeout", invocation), ("--stop-timeout", stop)):
        if value is not None and value <= 0:
            raise pytest.UsageError(f"{name} {value:g}: expected a positive number of seconds")
    raw_path = config.getoption("contract_config_path")
    return ContractOptions(
        image=config.getoption("sagemaker_image"),
        config_path=Path(raw_path) if raw_path else None,
        keep_containers=bool(config.getoption("contract_keep_containers")),
        startup_timeout_s=startup if startup is not None else STARTUP_TIMEOUT_S,
        invocation_timeout_s=invocation if invocation is not None else INVOCATION_TIMEOUT_S,
        training_stop_timeout_s=stop if stop is not None else TRAINING_STOP_GRACE_S,
        serving_stop_timeout_s=stop if stop is not None else SERVING_STOP_GRACE_S,
        strict=bool(config.getoption("contract_strict")),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, validate options and config early, and point a bare run at the suite."""
    config.addinivalue_line("markers", "sagemaker_check(id): a SageMaker contract check of contract_tests")
    options = _options(config)
    config.stash[_OPTIONS_KEY] = options
    _report.STRICT = options.strict
    if options.image or options.config_path:
        try:
            config.stash[_CONFIG_KEY] = load_config(options.config_path)
        except ContractConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    if options.image and options.config_path is None and not _judged_by_default(options.image):
        raise pytest.UsageError(
            f"--image {options.image} needs --contract-config FILE: without it the suite would judge the image with "
            "the sample algorithm's data and requests (iris CSV). Write one with 'python -m emulator init-contract "
            "contract.yaml', fill it in, and pass --contract-config contract.yaml"
        )
    # `pytest --image X` with no paths runs the contract suite, not the project's own testpaths.
    if options.image and config.args_source in (
        pytest.Config.ArgsSource.TESTPATHS,
        pytest.Config.ArgsSource.INVOCATION_DIR,
    ):
        config.args = [str(PACKAGE_DIR)]
        config.args_source = pytest.Config.ArgsSource.ARGS


#: The label of images that the packaged config fits (the sample algorithm and images built FROM it).
DEFAULT_CONFIG_LABEL = "sagemaker-emulator.contract-config"


def _judged_by_default(image: str) -> bool:
    """Whether the packaged (sample) config fits ``image``: it carries DEFAULT_CONFIG_LABEL=default.

    True too when the engine or the image cannot be read now: the suite then reports that itself, one line.
    """
    from emulator import EmulatorConfig, EmulatorError
    from emulator.runtime import Session

    try:
        with Session(EmulatorConfig.from_env()) as session:
            return session.docker.image_info(image).labels.get(DEFAULT_CONFIG_LABEL) == "default"
    except EmulatorError:
        return True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the checks in the contract's order (training, serving, batch, processing), after other items."""
    order = {cid: i for i, cid in enumerate(CHECKS)}

    def key(pair: tuple[int, pytest.Item]) -> tuple[int, int]:
        marker = pair[1].get_closest_marker("sagemaker_check")
        return (1, order[marker.args[0]]) if marker is not None else (0, pair[0])

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which image and config the suite checks."""
    options = config.stash.get(_OPTIONS_KEY, None)
    if options is None or not options.image:
        return []
    contract = config.stash.get(_CONFIG_KEY, None)
    source = contract.source if contract is not None else "?"
    claimed = [k for k, v in vars(contract.capabilities).items() if v] if contract is not None else []
    return [
        f"sagemaker contract: image {options.image}, config {source}",
        f"sagemaker contract: claims {', '.join(claimed) or 'nothing'}; startup {options.startup_timeout_s:g} s, "
        f"invocation {options.invocation_timeout_s:g} s, SIGTERM grace {options.training_stop_timeout_s:g} s "
        f"(training) / {options.serving_stop_timeout_s:g} s (serving)"
        + ("; strict: every SHOULD fails" if options.strict else ""),
    ]


# -- configuration fixtures (override them in a conftest.py) ----------------------------------------------
@pytest.fixture(scope="session")
def contract_options(pytestconfig: pytest.Config) -> ContractOptions:
    """The suite's command-line options."""
    return pytestconfig.stash.get(_OPTIONS_KEY, None) or _options(pytestconfig)


@pytest.fixture(scope="session")
def sagemaker_image(contract_options: ContractOptions) -> str:
    """The image under test (``--image``); without it the checks are skipped."""
    if not contract_options.image:
        pytest.skip(NO_IMAGE_REASON)
    return contract_options.image


@pytest.fixture(scope="session")
def contract_config(pytestconfig: pytest.Config, contract_options: ContractOptions) -> ContractConfig:
    """The contract config (``--contract-config``, else the sample algorithm's defaults)."""
    loaded = pytestconfig.stash.get(_CONFIG_KEY, None)
    if loaded is not None:
        return loaded
    try:
        return load_config(contract_options.config_path)
    except ContractConfigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def emulator_config(contract_options: ContractOptions) -> EmulatorConfig:
    """The emulator settings the suite's jobs run with (SM_EMULATOR_* variables apply too)."""
    from emulator import EmulatorConfig

    return EmulatorConfig.from_env(
        keep_containers=contract_options.keep_containers or None,
        startup_timeout_s=contract_options.startup_timeout_s,
        training_stop_grace_s=contract_options.training_stop_timeout_s,
        serving_stop_grace_s=contract_options.serving_stop_timeout_s,
        stream_logs=False,
    )


@pytest.fixture(autouse=True)
def _contract_gate(request: pytest.FixtureRequest) -> None:
    """Skip a check without --image, or when the image does not claim the capability it needs."""
    marker = request.node.get_closest_marker("sagemaker_check")
    if marker is None:
        return
    request.getfixturevalue("sagemaker_image")
    config: ContractConfig = request.getfixturevalue("contract_config")
    check = CHECKS[marker.args[0]]
    caps = config.capabilities
    if check.id == "t02":
        if not (caps.training or caps.serving):
            pytest.skip(f"[t02] the image claims neither training nor serving ({config.source})")
        return
    if check.capability == "any":
        return
    needed = [check.capability] + (["serving"] if check.capability == "batch_transform" else [])
    for cap in needed:
        if not getattr(caps, cap):
            pytest.skip(
                f"[{check.id}] the image does not claim {cap!r} (capabilities.{cap} is false in {config.source})"
            )


# -- resources --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def contract_harness(
    sagemaker_image: str,
    contract_config: ContractConfig,
    contract_options: ContractOptions,
    emulator_config: EmulatorConfig,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Harness]:
    """Runs the checks' jobs with the emulator; fails every check at once if Docker or the image is missing."""
    from emulator import EmulatorError
    from emulator.runtime import Session

    with Session(emulator_config) as session:
        try:
            harness = Harness(
                sagemaker_image, contract_config, contract_options, session, tmp_path_factory.mktemp("contract")
            )
            harness.image_info()
        except EmulatorError as exc:
            pytest.fail(f"cannot run the SageMaker contract suite: {exc}", pytrace=False)
        try:
            _run_ahead(harness, request.session.items)
            yield harness
        finally:
            harness.close()


def _run_ahead(harness: Harness, items: list[pytest.Item]) -> None:
    """Start, in the background, the jobs of the selected checks that need nothing an earlier check makes.

    A check module offers them as ``AHEAD = {check id: [(key, make(harness)), ...]}``; the check's fixtures take
    the results with ``harness.once(key, ...)``.
    """
    for item in items:
        marker = item.get_closest_marker("sagemaker_check")
        if marker is None:
            continue
        check_id = marker.args[0]
        capability = CHECKS[check_id].capability
        if capability != "any" and not getattr(harness.config.capabilities, capability, False):
            continue
        harness.selected.add(check_id)
        offered = getattr(getattr(item, "module", None), "AHEAD", {})
        if check_id not in offered:
            continue
        for key, make in offered[check_id]:
            harness.ahead(key, functools.partial(make, harness))


@pytest.fixture(scope="session")
def trained_model(contract_harness: Harness) -> TrainingRun | None:
    """The one training job with the config's channels and hyperparameters (None if the image does not train)."""
    if not contract_harness.config.capabilities.training:
        return None
    h = contract_harness
    # record_tree: t08 checks that nothing was left under /opt/ml outside the directories SageMaker uploads.
    run = h.train("train", h.training_request("train"), record_tree=True)
    h.training_log = run.log_text()
    return run


def _serving_model(harness: Harness, trained: TrainingRun | None) -> Path | None:
    if harness.config.serving.model:
        return harness.model_dir(None)
    if trained is None:
        return harness.model_dir(None)  # an image that only serves: an empty /opt/ml/model
    if trained.status != "Completed" or trained.model_tar is None:
        return None
    return harness.model_dir(trained.model_tar)


@pytest.fixture(scope="session")
def serving_model_dir(contract_harness: Harness, trained_model: TrainingRun | None) -> Path | None:
    """The model every serving container gets at /opt/ml/model, extracted from model.tar.gz (None: there is none)."""
    model_dir = _serving_model(contract_harness, trained_model)
    contract_harness.served_model_dir = model_dir
    return model_dir


def _start(
    harness: Harness,
    label: str,
    model_dir: Path | None,
    trained: TrainingRun | None,
    environment: dict[str, str] | None = None,
) -> EndpointHandle:
    """Start a serving container, unless a root cause found earlier blocks it (then the handle carries that)."""
    handle = EndpointHandle(label, {})
    if model_dir is None:
        assert trained is not None
        handle.root = harness.training_root(trained) or RootCause(
            "t08", "the training job completed without a model.tar.gz: there is no model to serve", CHECKS["t08"].fix
        )
        return handle
    if harness.serving_broken is not None:
        # Same image and model: another container would fail the same way (and wait out the same bound).
        handle.root = harness.serving_broken
        return handle
    handle = harness.start_endpoint(
        label, model_dir, environment=environment, network_isolation=harness.config.capabilities.network_isolation
    )
    if label == "serve" and handle.endpoint is None:
        harness.serving_broken = handle.root
    return handle


@pytest.fixture(scope="session")
def shared_endpoint(
    contract_harness: Harness, serving_model_dir: Path | None, trained_model: TrainingRun | None
) -> Iterator[EndpointHandle]:
    """The one serving container all serving checks share (``docker run IMAGE serve``)."""
    h = contract_harness
    if serving_model_dir is not None and any(c in h.selected for c in _BATCH_CHECKS):
        # The batch checks' container needs the same model and nothing else: start it beside this one.
        h.ahead("batch-endpoint", functools.partial(_start_batch, h, serving_model_dir, trained_model))
    handle = _start(h, "serve", serving_model_dir, trained_model)
    try:
        yield handle
    finally:
        if handle.endpoint is not None:
            handle.endpoint.close()


@pytest.fixture
def sagemaker_endpoint(
    shared_endpoint: EndpointHandle,
    contract_harness: Harness,
    serving_model_dir: Path | None,
    trained_model: TrainingRun | None,
    request: pytest.FixtureRequest,
) -> EndpointHandle:
    """The shared serving container, checked alive first (restarted when an earlier check killed it)."""
    ep = shared_endpoint.endpoint
    if ep is None:
        return shared_endpoint
    alive = ep.wait(0) is None
    if alive:
        try:
            alive = ep.ping() == 200
        except Exception:
            alive = False
    if not alive:
        logger.warning(
            "the shared serving container stopped answering before %s; starting a new one", request.node.name
        )
        shared_endpoint.restarts.append(request.node.name)
        ep.close()
        fresh = _start(contract_harness, "serve", serving_model_dir, trained_model)
        shared_endpoint.endpoint, shared_endpoint.error, shared_endpoint.logs = fresh.endpoint, fresh.error, fresh.logs
    return shared_endpoint


_BATCH_CHECKS = tuple(c for c in CHECKS if c.startswith("b"))


def _start_batch(harness: Harness, model_dir: Path | None, trained: TrainingRun | None) -> EndpointHandle:
    env = {**harness.config.serving.environment, "SAGEMAKER_BATCH": "true"}
    return _start(harness, "batch", model_dir, trained, env)


@pytest.fixture(scope="session")
def batch_endpoint(
    contract_harness: Harness, serving_model_dir: Path | None, trained_model: TrainingRun | None
) -> Iterator[EndpointHandle]:
    """A serving container as batch transform runs it (``SAGEMAKER_BATCH=true``), for the batch checks."""
    h = contract_harness
    handle = h.once("batch-endpoint", functools.partial(_start_batch, h, serving_model_dir, trained_model))
    try:
        yield handle
    finally:
        if handle.endpoint is not None:
            handle.endpoint.close()


# -- the safety net ---------------------------------------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove whatever this session's jobs left behind (the fixtures remove their own; this is the second net)."""
    options = session.config.stash.get(_OPTIONS_KEY, None)
    if options is None or not options.image or options.keep_containers:
        return
    try:
        from emulator import EmulatorConfig
        from emulator.runtime import SESSION_ID, sweep

        for swept in sweep(EmulatorConfig.from_env(), session_id=SESSION_ID):
            logger.warning("removed leftover %s %s %s", swept.kind, swept.id[:12], swept.description)
    except Exception as exc:
        logger.warning("could not sweep leftover containers: %s", exc)
