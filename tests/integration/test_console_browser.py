"""The console in a real headless Chromium (Debian's chromium and chromedriver, driven by Selenium), against an
API server whose jobs run on the real engine with the tiny test images.

Pages load; a running job's status and chart change without a reload; the pipeline graph paints each step in
its status's colour and its job step links to the job; invoke answers (and shows a ModelError); a
state-changing request without the page's token is refused, the Stop button (with it) stops.
``SM_EMULATOR_CONSOLE_SHOTS=DIR`` also saves a screenshot of each page there (docs/console.md's pictures).
Chromium missing is a failure, not a skip: scripts/test.sh installs it (ensure_browser).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.api.server import ApiServer
from emulator.config import EmulatorConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: What this closed network needs: no GPU, no QUIC, nothing fetched in the background, a fresh profile.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
ROLE = "arn:aws:iam::123456789012:role/Emulator"
BUCKET = "sagemaker-emulator"  # the server's default bucket
TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, through Debian's chromedriver (Selenium downloads nothing)."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver (scripts/test.sh does it)",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(fast_config: EmulatorConfig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    report = tmp_path_factory.mktemp("report") / "junit.xml"
    report.write_text(_contract_report())
    with ApiServer(port=0, config=fast_config.with_(stream_logs=False), contract_report=report) as api:
        yield api


@pytest.fixture(scope="module")
def sm(server: ApiServer) -> Any:
    keys = {"aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1", **keys)  # type: ignore[call-overload]


def until(what: str, check: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def shot(browser: Any, name: str) -> None:
    """Save a screenshot when SM_EMULATOR_CONSOLE_SHOTS names a folder (for docs/console.md)."""
    folder = os.environ.get("SM_EMULATOR_CONSOLE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / f"{name}.png"))


def text(browser: Any, css: str) -> str:
    """The rendered text of the first match (read in one script: live parts are replaced under the test's feet)."""
    found = browser.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css)
    return str(found).strip()


def click(browser: Any, css: str) -> None:
    """Click the first match, again if the page's poll replaced it between finding and clicking."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(20):
        try:
            browser.find_element("css selector", css).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"{css} kept being replaced")


def training_request(name: str, image: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/console-out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Environment": env,
    }


def test_a_running_job_changes_status_and_chart_without_a_reload(
    browser: Any, server: ApiServer, sm: Any, probe_image: str
) -> None:
    name = f"console-train-{uuid.uuid4().hex[:6]}"
    values = [0.9, 0.6, 0.35, 0.2, 0.12]
    lines = "\\n".join(f"epoch={i} loss={v}" for i, v in enumerate(values))
    sm.create_training_job(**training_request(name, probe_image, {"PROBE_PRINT": lines, "PROBE_SLEEP_S": "4"}))
    browser.get(server.url + "/")
    until("the job in the overview", lambda: name in text(browser, "body"))
    browser.get(f"{server.url}/console/training/{name}")
    assert text(browser, "h1 .badge") in ("InProgress", "Pending")
    browser.execute_script("window.__sameDocument = true")  # gone if the page reloads
    until("the metric lines in the logs box", lambda: "loss=0.12" in text(browser, "pre.logs"))
    shot(browser, "job-running")
    until("Completed without a reload", lambda: text(browser, "h1 .badge") == "Completed")
    assert browser.execute_script("return window.__sameDocument") is True
    points = until(
        "the chart's points",
        lambda: (
            browser.execute_script(
                "return [...document.querySelectorAll('svg.chart[data-metric=\"loss\"] circle.pt')]"
                ".map(c => Number(c.dataset.v))"
            )
            if len(browser.find_elements("css selector", "svg.chart circle.pt")) == len(values)
            else None
        ),
    )
    assert points == values
    shot(browser, "job")
    browser.get(server.url + "/console/training")
    assert name in text(browser, "table.list")
    shot(browser, "training-list")


def test_the_pipeline_graph_shows_each_status_in_its_colour_and_links_the_job(
    browser: Any, server: ApiServer, sm: Any, probe_image: str
) -> None:
    pipeline = f"console-pipe-{uuid.uuid4().hex[:6]}"
    train = training_request("unused", probe_image, {"PROBE_PRINT": "loss=0.3"})
    del train["TrainingJobName"]
    definition = {
        "Version": "2020-12-01",
        "Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": train},
            {
                "Name": "Check",
                "Type": "Condition",
                "DependsOn": ["Train"],
                "Arguments": {
                    "Conditions": [{"Type": "LessThan", "LeftValue": 1, "RightValue": 2}],
                    "IfSteps": [{"Name": "Reject", "Type": "Fail", "Arguments": {"ErrorMessage": "rejected"}}],
                    "ElseSteps": [{"Name": "Accept", "Type": "Fail", "Arguments": {"ErrorMessage": "never"}}],
                },
            },
        ],
    }
    sm.create_pipeline(PipelineName=pipeline, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName=pipeline)["PipelineExecutionArn"]
    browser.get(f"{server.url}/console/pipelines/{pipeline}/executions/{arn.rsplit('/', 1)[-1]}")
    until(
        "the execution to end on the page",
        lambda: text(browser, "h1 .badge") in ("Failed", "Succeeded"),
    )
    steps = {
        s["StepName"]: s["StepStatus"]
        for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    }
    assert steps == {"Train": "Succeeded", "Check": "Succeeded", "Reject": "Failed", "Accept": "NotExecuted"}
    fills = until(
        "every step drawn with its final status",
        lambda: _fills(browser) if set(_statuses(browser).items()) == set(steps.items()) else None,
    )
    for step, status in steps.items():
        r, g, b = fills[step]
        dominant = {"Succeeded": "green", "Failed": "red"}.get(status, "amber")
        painted = "green" if g > max(r, b) else "red" if g < 0.6 * r and b < 0.6 * r else "amber" if g > b else "?"
        assert painted == dominant, (step, status, fills[step])
    shot(browser, "execution")
    click(browser, 'a g.step[data-step="Train"]')
    until("the step's job page", lambda: "/console/training/" in browser.current_url)
    assert text(browser, "h1 .badge") == "Completed"
    assert browser.current_url.rsplit("/", 1)[-1] in text(browser, "h1")
    browser.get(f"{server.url}/console/pipelines/{pipeline}")
    shot(browser, "pipeline")


def test_invoke_answers_and_shows_the_model_error(
    browser: Any, server: ApiServer, sm: Any, recorder_image: str
) -> None:
    model, cfg, endpoint = (f"console-{p}-{uuid.uuid4().hex[:6]}" for p in ("model", "config", "endpoint"))
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": recorder_image, "Environment": {"RECORDER_FAIL_ON": "boom"}},
    )
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName=cfg, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=cfg)
    browser.get(f"{server.url}/console/endpoints/{endpoint}")
    until("InService on the page", lambda: text(browser, "h1 .badge") == "InService")
    body = browser.find_element("css selector", "form.invoke textarea")
    body.clear()
    body.send_keys("1,2,3")
    click(browser, "form.invoke button")
    answer = until(
        "the answer", lambda: text(browser, ".answer pre") if "200" in text(browser, ".answer .head") else ""
    )
    assert answer == "1,2,3"  # the recorder echoes what it got
    shot(browser, "endpoint")
    body.clear()
    body.send_keys("boom")
    click(browser, "form.invoke button")
    until("the ModelError", lambda: "ModelError" in text(browser, ".answer .head"))
    assert "400" in text(browser, ".answer .head")
    assert "boom" in text(browser, ".answer pre")
    click(browser, 'button[data-action="delete-endpoint"]')
    browser.switch_to.alert.accept()
    until("the endpoint deleted", lambda: endpoint not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]])


def test_a_change_without_the_token_is_refused_and_the_stop_button_stops(
    browser: Any, server: ApiServer, sm: Any, probe_image: str
) -> None:
    name = f"console-stop-{uuid.uuid4().hex[:6]}"
    sm.create_training_job(**training_request(name, probe_image, {"PROBE_SLEEP_S": "120"}))
    browser.get(f"{server.url}/console/training/{name}")
    until("InProgress", lambda: text(browser, "h1 .badge") == "InProgress")
    refused = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/console/api/stop', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        f" body: JSON.stringify({{kind: 'training', name: '{name}'}})}}).then(r => done(r.status));"
    )
    assert refused == 403
    time.sleep(1)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    click(browser, 'button[data-action="stop"]')
    browser.switch_to.alert.accept()
    until("Stopped on the page", lambda: text(browser, "h1 .badge") == "Stopped")
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"


def test_the_contract_report_page_shows_each_check_and_its_fix(browser: Any, server: ApiServer) -> None:
    from contract_tests._report import CHECKS

    browser.get(server.url + "/console/report")
    failed = browser.find_element("css selector", '.check.failed[data-check="s21"]')
    assert CHECKS["s21"].fix in failed.find_element("css selector", ".fix").text
    assert len(browser.find_elements("css selector", ".check.passed")) == 2
    shot(browser, "report")
    browser.get(server.url + "/")  # last: every kind the module made is in it
    assert "console-train-" in text(browser, "body")
    shot(browser, "overview")


def _statuses(browser: Any) -> dict[str, str]:
    found: dict[str, str] = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('svg.graph g.step')]"
        ".map(g => [g.dataset.step, g.dataset.status]))"
    )
    return found


def _fills(browser: Any) -> dict[str, tuple[int, int, int]]:
    """Each step box's computed fill colour, as the browser paints it."""
    raw: dict[str, str] = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('svg.graph g.step')]"
        ".map(g => [g.dataset.step, getComputedStyle(g.querySelector('rect')).fill]))"
    )
    out = {}
    for step, fill in raw.items():
        parts = fill[fill.index("(") + 1 : fill.index(")")].split(",")
        r, g, b = (int(float(p)) for p in parts[:3])
        out[step] = (r, g, b)
    return out


def _contract_report() -> str:
    """A JUnit XML like the suite writes: two passes and a failure whose message carries the fix."""
    from contract_tests._report import violation

    try:
        violation("s21", "POST /invocations answered 500", sent="POST /invocations (text/csv)", got="500")
    except BaseException as exc:  # pytest.fail's exception: its message is what JUnit XML carries
        message = str(exc)
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="contract_tests.test_serving_contract" name="test_s19_listens_on_all_interfaces_8080" '
        'time="0.03"/><testcase classname="contract_tests.test_serving_contract" name="test_s20_ping_healthy" '
        'time="0.03"/><testcase classname="contract_tests.test_serving_contract" name="test_s21_invocations_answer" '
        f'time="0.02"><failure message="s21">{escaped}</failure></testcase></testsuite></testsuites>'
    )
