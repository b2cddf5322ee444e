"""The console's pages, each built from the API server's own operations (List*, Describe*) and log streams.

A view returns a :class:`~emulator.api.console.html.Page`: its blocks, and which of them the page's poll renders
again while something on it still runs. Nothing here changes state; the actions live in ``app.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.api.console import charts, graph, junit
from emulator.api.console.html import Block, Page, badge, describe, esc, href, link, table, when
from emulator.api.logs import GROUPS
from emulator.api.protocol import ApiError
from emulator.api.registry import name_of
from emulator.errors import EmulatorError
from emulator.pipelines import PipelineDefinition

if TYPE_CHECKING:
    from emulator.api.backend import SageMakerBackend

#: Rows per kind on the overview page (each list page shows every row).
OVERVIEW_ROWS = 8
#: Rows a list page shows at most (the newest first).
LIST_ROWS = 5000
#: A list page polls once more slowly per this many rows (1,000 rows: every 6 s instead of every second).
SLOW_POLL_ROWS = 200
#: Statuses in which something still changes (the page keeps polling).
RUNNING = frozenset({"InProgress", "Stopping", "Executing", "Starting", "Creating", "Updating", "Deleting"})
_STOPPABLE = frozenset({"InProgress", "Executing", "Starting"})


@dataclass(frozen=True)
class Section:
    """A kind of resource the console lists, and the operations it reads it with."""

    key: str  # URL part: /console/<key>, /console/<key>/<name>
    kind: str  # "TrainingJob"
    title: str
    list_op: str
    describe_op: str
    stop_op: str | None = None
    log_group: str | None = None

    @property
    def name_field(self) -> str:
        return f"{self.kind}Name"

    @property
    def status_field(self) -> str:
        return f"{self.kind}Status"

    @property
    def noun(self) -> str:
        return self.title.lower().removesuffix("s")


SECTIONS = {
    s.key: s
    for s in (
        Section(
            "training",
            "TrainingJob",
            "Training jobs",
            "ListTrainingJobs",
            "DescribeTrainingJob",
            "StopTrainingJob",
            GROUPS["training"],
        ),
        Section(
            "processing",
            "ProcessingJob",
            "Processing jobs",
            "ListProcessingJobs",
            "DescribeProcessingJob",
            "StopProcessingJob",
            GROUPS["processing"],
        ),
        Section(
            "transform",
            "TransformJob",
            "Transform jobs",
            "ListTransformJobs",
            "DescribeTransformJob",
            "StopTransformJob",
            GROUPS["transform"],
        ),
        Section(
            "tuning",
            "HyperParameterTuningJob",
            "Tuning jobs",
            "ListHyperParameterTuningJobs",
            "DescribeHyperParameterTuningJob",
            "StopHyperParameterTuningJob",
        ),
        Section("endpoints", "Endpoint", "Endpoints", "ListEndpoints", "DescribeEndpoint"),
        Section("models", "Model", "Models", "ListModels", "DescribeModel"),
        Section("pipelines", "Pipeline", "Pipelines", "ListPipelines", "DescribePipeline"),
        Section(
            "executions",
            "PipelineExecution",
            "Pipeline executions",
            "ListPipelineExecutions",
            "DescribePipelineExecution",
            "StopPipelineExecution",
        ),
    )
}
JOB_SECTIONS = ("training", "processing", "transform", "tuning")
_METADATA_SECTIONS = {"TrainingJob": "training", "ProcessingJob": "processing", "TransformJob": "transform"}


class Views:
    """The pages over one backend."""

    def __init__(self, backend: SageMakerBackend, report_path: Path | None = None) -> None:
        self.backend = backend
        self.report_path = report_path

    # -- reading through the server's own operations -----------------------------------------------------------
    def op(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """The backend's method for ``operation``, or None where this server does not serve it."""
        return self.backend.handler(operation)

    def sections(self) -> list[Section]:
        """The sections this server serves (tuning only where the backend has it)."""
        return [s for s in SECTIONS.values() if s.key == "executions" or self.op(s.list_op) is not None]

    def rows(self, section: Section) -> list[dict[str, Any]]:
        """Every resource of a section, newest first, as its List* answer has it (Describe-shaped here)."""
        if section.key == "executions":
            out = []
            for pipeline in self.rows(SECTIONS["pipelines"]):
                answer = self._list("ListPipelineExecutions", {"PipelineName": pipeline["PipelineName"]})
                for row in answer:
                    row.setdefault("PipelineName", pipeline["PipelineName"])
                out.extend(answer)
            out.sort(key=lambda r: _stamp(r.get("CreationTime")), reverse=True)
            return out
        return self._list(section.list_op, {})

    def _list(self, operation: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        method = self.op(operation)
        if method is None:
            return []
        answer = method({**params, "MaxResults": LIST_ROWS})
        return next((v for k, v in answer.items() if isinstance(v, list) and k != "NextToken"), [])

    def describe(self, section: Section, name: str) -> dict[str, Any]:
        """Describe* of one resource (raises the API's ResourceNotFound as ApiError)."""
        method = self.op(section.describe_op)
        if method is None:
            raise ApiError("ResourceNotFound", f"this server has no {section.title.lower()}")
        field = "PipelineExecutionArn" if section.key == "executions" else section.name_field
        return method({field: name})

    # -- navigation and lists ----------------------------------------------------------------------------------
    def nav(self) -> str:
        """The header's links: every section, then the contract report."""
        items = [link(href(s.key), s.title) for s in self.sections()]
        items.append(link(href("report"), "Contract report"))
        return "".join(items)

    def overview(self) -> Page:
        """Every section's newest rows, with their counts."""
        page = Page("Overview", live=True)
        for section in self.sections():
            rows = self.rows(section)
            more = f" · {link(href(section.key), f'all {len(rows)}')}" if len(rows) > OVERVIEW_ROWS else ""
            shown = self.list_table(section, rows[:OVERVIEW_ROWS]) if rows else ""
            heading = f"<h2>{link(href(section.key), section.title)} ({len(rows)}){more}</h2>"
            page.blocks.append(Block(section.key, heading + shown, live=True))
        return page

    def list_page(self, section: Section) -> Page:
        """One section, every row."""
        rows = self.rows(section)
        body = f"<h1>{esc(section.title)} ({len(rows)})</h1>" + self.list_table(section, rows)
        slow = 1 + len(rows) // SLOW_POLL_ROWS
        return Page(section.title, [Block("list", body, live=True)], live=True, slow_poll=slow)

    def list_table(self, section: Section, rows: list[dict[str, Any]]) -> str:
        """A section's rows as a table; each name links to its page."""
        key = section.key
        if key == "models":
            cells = [
                [link(self.url(section, r), r.get("ModelName", "")), when(r.get("CreationTime")), esc(_image(r))]
                for r in rows
            ]
            return table(["Model", "Created", "Image"], cells, body_id=f"rows-{key}")
        if key == "executions":
            cells = [
                [
                    link(self.url(section, r), name_of("PipelineExecution", r)),
                    link(href("pipelines", r.get("PipelineName", "")), r.get("PipelineName", "")),
                    badge(r.get("PipelineExecutionStatus")),
                    when(r.get("CreationTime")),
                    esc(r.get("FailureReason") or ""),
                ]
                for r in rows
            ]
            return table(["Execution", "Pipeline", "Status", "Started", "Note"], cells, body_id=f"rows-{key}")
        cells = [
            [
                link(self.url(section, r), name_of(section.kind, r)),
                badge(r.get(section.status_field)),
                when(r.get("CreationTime")),
                when(_ended(r)),
                esc(_note(r)),
            ]
            for r in rows
        ]
        return table(["Name", "Status", "Created", "Ended", "Note"], cells, body_id=f"rows-{key}")

    def url(self, section: Section, row: Mapping[str, Any]) -> str:
        """The page of a row."""
        if section.key == "executions":
            arn = str(row.get("PipelineExecutionArn", ""))
            pipeline, _, execution = arn.partition("/execution/")
            return href("pipelines", pipeline.rsplit("/", 1)[-1], "executions", execution)
        return href(section.key, name_of(section.kind, row))

    # -- detail pages ------------------------------------------------------------------------------------------
    def detail(self, section: Section, name: str) -> Page:
        """The page of one resource; 404 when there is none."""
        try:
            data = self.describe(section, name)
        except ApiError as exc:
            return not_found(f"{exc.message} ", link(href(section.key), section.title))
        if section.key in JOB_SECTIONS:
            return self._job(section, name, data)
        if section.key == "endpoints":
            return self._endpoint(name, data)
        if section.key == "pipelines":
            return self._pipeline(name, data)
        if section.key == "executions":
            return self._execution(data)
        return Page(name, [Block("head", _head(name, None)), Block("describe", _describe_block(data))])

    def execution(self, pipeline: str, execution_id: str) -> Page:
        """An execution, by its pipeline's name and its id (the last part of its ARN)."""
        try:
            arn = self.describe(SECTIONS["pipelines"], pipeline)["PipelineArn"]
        except ApiError as exc:
            return not_found(f"{exc.message} ", link(href("pipelines"), "Pipelines"))
        return self.detail(SECTIONS["executions"], f"{arn}/execution/{execution_id}")

    def _job(self, section: Section, name: str, data: dict[str, Any]) -> Page:
        status = data.get(section.status_field)
        live = status in RUNNING
        actions = _stop_button(section, name) if status in _STOPPABLE and section.stop_op else ""
        secondary = data.get("SecondaryStatus")
        extra = f" {esc(secondary)}" if secondary and secondary != status else ""
        blocks = [Block("head", _head(name, status, extra + actions), live=True)]
        blocks.append(Block("summary", _summary(data), live=True))
        if section.key == "training":
            blocks.append(Block("metrics", self._metrics(name, data), live=True))
        if section.key == "tuning":
            blocks.append(Block("trainings", self._tuning_trainings(name, data), live=True))
        if section.log_group:
            blocks.append(Block("logs", _logs_box(href("api", "logs", section.key, name))))
        blocks.append(Block("describe", _describe_block(data), live=True))
        return Page(name, blocks, live=live)

    def _metrics(self, name: str, data: Mapping[str, Any]) -> str:
        definitions = (data.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        final = data.get("FinalMetricDataList") or []
        html = "<h2>Metrics</h2>"
        if final:
            html += table(
                ["Metric", "Final value", "At"],
                [[esc(m.get("MetricName")), esc(f"{m.get('Value', 0):g}"), when(m.get("Timestamp"))] for m in final],
            )
        if not definitions:
            return html + '<p class="note">no MetricDefinitions in this job\'s AlgorithmSpecification</p>'
        lines = self.log_lines(SECTIONS["training"], name)
        found = charts.series(definitions, lines)
        return html + '<div class="charts">' + "".join(charts.chart(s) for s in found) + "</div>"

    def _tuning_trainings(self, name: str, data: Mapping[str, Any]) -> str:
        rows = self._list("ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
        best = (data.get("BestTrainingJob") or {}).get("TrainingJobName")
        head = f"<h2>Training jobs ({len(rows)})</h2>"
        if best:
            head += f"<p>best: {link(href('training', best), best)}</p>"
        cells = [
            [
                link(href("training", r.get("TrainingJobName", "")), r.get("TrainingJobName", "")),
                badge(r.get("TrainingJobStatus")),
                esc(_objective(r)),
                esc(", ".join(f"{k}={v}" for k, v in (r.get("TunedHyperParameters") or {}).items())),
            ]
            for r in rows
        ]
        return head + table(["Training job", "Status", "Objective", "Hyperparameters"], cells)

    def _endpoint(self, name: str, data: dict[str, Any]) -> Page:
        status = data.get("EndpointStatus")
        delete = (
            f'<button class="danger" data-action="delete-endpoint" data-kind="endpoints" data-name="{esc(name)}" '
            f'data-confirm="Delete endpoint {esc(name)}?">Delete</button>'
            '<span data-result="delete-endpoint"></span>'
        )
        config = data.get("EndpointConfigName", "")
        links = f"<p>endpoint config {esc(config)}"
        try:
            variants = self.describe(_CONFIG, config).get("ProductionVariants") or []
        except ApiError:
            variants = []
        models = [v.get("ModelName", "") for v in variants]
        if models:
            links += " · model " + ", ".join(link(href("models", m), m) for m in models)
        links += "</p>"
        invoke = (
            f'<h2>Invoke</h2><form class="invoke card" data-endpoint="{esc(name)}">'
            '<textarea name="body" spellcheck="false" placeholder="request body">5.1,3.5,1.4,0.2</textarea>'
            '<p><label>Content-Type <input name="contentType" value="text/csv"></label> '
            '<label>Accept <input name="accept" value=""></label> <button type="submit">Send</button></p>'
            '</form><div class="answer card"><div class="head"></div><pre></pre></div>'
        )
        blocks = [
            Block("head", _head(name, status, delete), live=True),
            Block("summary", _summary(data) + links, live=True),
            Block("invoke", invoke),
            Block("logs", _logs_box(href("api", "logs", "endpoints", name))),
            Block("describe", _describe_block(data), live=True),
        ]
        return Page(name, blocks, live=True)

    def _definition(self, pipeline: Mapping[str, Any]) -> PipelineDefinition | None:
        try:
            return PipelineDefinition.load(
                json.loads(pipeline.get("PipelineDefinition") or "{}"), name=pipeline["PipelineName"]
            )
        except (ValueError, EmulatorError):
            return None

    def _pipeline(self, name: str, data: dict[str, Any]) -> Page:
        definition = self._definition(data)
        drawn = graph.svg(definition) if definition else '<p class="note">the definition cannot be drawn</p>'
        executions = [r for r in self.rows(SECTIONS["executions"]) if r.get("PipelineName") == name]
        blocks = [
            Block("head", _head(name, data.get("PipelineStatus"))),
            Block("graph", "<h2>Steps</h2>" + drawn),
            Block(
                "executions",
                f"<h2>Executions ({len(executions)})</h2>" + self.list_table(SECTIONS["executions"], executions),
                live=True,
            ),
            Block("describe", _describe_block(data)),
        ]
        return Page(name, blocks, live=True)

    def _execution(self, data: dict[str, Any]) -> Page:
        status = data.get("PipelineExecutionStatus")
        arn = str(data.get("PipelineExecutionArn", ""))
        pipeline_name = arn.partition("/execution/")[0].rsplit("/", 1)[-1]
        title = name_of("PipelineExecution", data) or arn
        try:
            pipeline = self.describe(SECTIONS["pipelines"], pipeline_name)
        except ApiError:
            pipeline = {}
        steps = list(data.get("Steps") or [])
        links = self._step_links(arn, steps)
        definition = self._definition(pipeline) if pipeline else None
        statuses = {s["StepName"]: s.get("StepStatus", "Pending") for s in steps}
        drawn = graph.svg(definition, statuses, links) if definition else '<p class="note">no definition</p>'
        stop = ""
        if status in _STOPPABLE:
            stop = (
                f'<button data-action="stop" data-kind="executions" data-name="{esc(arn)}" '
                'data-confirm="Stop this execution?">Stop</button><span data-result="stop"></span>'
            )
        head = _head(title, status, stop) + (
            f"<p>pipeline {link(href('pipelines', pipeline_name), pipeline_name)}</p>" if pipeline_name else ""
        )
        step_rows = [
            [
                link(links[s["StepName"]], s["StepName"]) if s["StepName"] in links else esc(s["StepName"]),
                badge(s.get("StepStatus")),
                when(s.get("StartTime")),
                when(s.get("EndTime")),
                esc(s.get("FailureReason") or ""),
            ]
            for s in steps
        ]
        rest = {k: v for k, v in data.items() if k != "Steps"}
        blocks = [
            Block("head", head, live=True),
            Block("summary", _summary(rest), live=True),
            Block("graph", "<h2>Graph</h2>" + drawn, live=True),
            Block("steps", "<h2>Steps</h2>" + table(["Step", "Status", "Started", "Ended", "Note"], step_rows), True),
            Block("describe", _describe_block(rest), live=True),
        ]
        return Page(title, blocks, live=status in RUNNING)

    def _step_links(self, execution_arn: str, steps: list[dict[str, Any]]) -> dict[str, str]:
        """Each step's job page: from its Metadata once it ended, else by the job name the execution gave it."""
        links: dict[str, str] = {}
        execution_id = execution_arn.rsplit("/", 1)[-1]
        jobs: list[tuple[str, str]] = []
        for step in steps:
            for kind, meta in (step.get("Metadata") or {}).items():
                arn = str((meta or {}).get("Arn", ""))
                if kind in _METADATA_SECTIONS and arn:
                    links[step["StepName"]] = href(_METADATA_SECTIONS[kind], arn.rsplit("/", 1)[-1])
                elif kind == "Model" and arn:
                    name = arn.rsplit("/", 1)[-1]
                    if self._exists(SECTIONS["models"], name):
                        links[step["StepName"]] = href("models", name)
        pending = [s for s in steps if s["StepName"] not in links and s.get("StepStatus") in RUNNING]
        if pending:
            prefix = f"pipelines-{execution_id}-"
            for key in ("training", "processing", "transform"):
                method = self.op(SECTIONS[key].list_op)
                if method is not None:
                    answer = method({"NameContains": prefix, "MaxResults": LIST_ROWS})
                    rows = next((v for v in answer.values() if isinstance(v, list)), [])
                    jobs += [(key, name_of(SECTIONS[key].kind, r)) for r in rows]
            for step in pending:
                clean = re.sub(r"[^A-Za-z0-9-]", "-", step["StepName"]).strip("-")
                for key, job in jobs:
                    middle = job[len(prefix) :].rsplit("-", 1)[0]
                    if middle and clean.lower().startswith(middle.lower()):
                        links[step["StepName"]] = href(key, job)
        return links

    def _exists(self, section: Section, name: str) -> bool:
        try:
            self.describe(section, name)
        except ApiError:
            return False
        return True

    # -- logs --------------------------------------------------------------------------------------------------
    def log_lines(self, section: Section, name: str) -> list[tuple[int, str]]:
        """Every line of a job's log streams, in time order."""
        events, _ = self.log_events(section, name, {})
        return [(stamp, text) for stamp, _, text in events]

    def log_events(
        self, section: Section, name: str, cursor: Mapping[str, int]
    ) -> tuple[list[tuple[int, str, str]], dict[str, int]]:
        """The lines after ``cursor`` (stream -> lines read) as (timestamp ms, host, text), and the new cursor."""
        if section.key == "endpoints":
            group, prefix = f"/aws/sagemaker/Endpoints/{name}", ""
        elif section.log_group:
            group, prefix = section.log_group, f"{name}/"
        else:
            return [], dict(cursor)
        streams = self.backend.logs.events(group, prefix, cursor)
        out: list[tuple[int, str, str]] = []
        new_cursor = dict(cursor)
        for stream, lines in streams.items():
            host = re.sub(r"-\d+$", "", stream[len(prefix) :])
            out.extend((stamp, host, text) for stamp, text in lines)
            new_cursor[stream] = cursor.get(stream, 0) + len(lines)
        out.sort(key=lambda e: e[0])
        return out, new_cursor

    # -- the contract report -----------------------------------------------------------------------------------
    def report(self) -> Page:
        """The contract suite's JUnit XML: the file the server was pointed at, or one picked in the browser."""
        pick = (
            '<p class="actions"><label>Open a JUnit XML file (<code>pytest --image IMAGE --junitxml=FILE</code>): '
            '<input type="file" accept=".xml,text/xml" data-report></label></p>'
        )
        if self.report_path is None:
            shown = (
                '<p class="note">no report file configured: start the server with '
                "<code>api-server --contract-report FILE</code>, or open one here.</p>"
            )
        else:
            shown = render_report_file(self.report_path)
        return Page("Contract report", [Block("pick", "<h1>Contract report</h1>" + pick), Block("report", shown)])


def render_report_file(path: Path) -> str:
    """The report at ``path`` (read again at each view: the latest run), or why it cannot be shown."""
    try:
        data = path.read_bytes()
        return junit.render(junit.parse(data), f"{path.name} ({when_file(path)})", title=str(path))
    except FileNotFoundError:
        return f'<p class="note">{esc(path)} does not exist yet: run the suite with --junitxml={esc(path)}</p>'
    except (OSError, junit.ReportError) as exc:
        return f'<p class="note">{esc(path)}: {esc(exc)}</p>'


def when_file(path: Path) -> str:
    """A file's modification time."""
    return when(datetime.fromtimestamp(path.stat().st_mtime, UTC)) + " UTC"


_CONFIG = Section("configs", "EndpointConfig", "Endpoint configs", "ListEndpointConfigs", "DescribeEndpointConfig")


def not_found(message: str, back: str) -> Page:
    """A 404 page that says what is missing and links back to the list."""
    return Page("Not found", [Block("head", f"<h1>Not found</h1><p>{esc(message)}{back}</p>")], status=404)


def _head(name: str, status: str | None, extra: str = "") -> str:
    status_html = f" {badge(status)}" if status else ""
    return f'<h1>{esc(name)}{status_html}</h1><div class="actions">{extra}</div>'


def _stop_button(section: Section, name: str) -> str:
    return (
        f'<button data-action="stop" data-kind="{esc(section.key)}" data-name="{esc(name)}" '
        f'data-confirm="Stop {esc(section.noun)} {esc(name)}?">Stop</button><span data-result="stop"></span>'
    )


def _logs_box(url: str) -> str:
    return f'<h2>Logs</h2><div data-logs="{esc(url)}" data-count="0"><pre class="logs"></pre></div>'


def _describe_block(data: Mapping[str, Any]) -> str:
    return f'<h2>Describe</h2><div class="card">{describe(data)}</div>'


def _summary(data: Mapping[str, Any]) -> str:
    """Times, duration and the failure reason, in one line."""
    parts = []
    for key in ("CreationTime", "TrainingStartTime", "ProcessingStartTime", "TransformStartTime", "LastModifiedTime"):
        if data.get(key):
            parts.append(f"<span>{esc(_words(key))}: {when(data[key])}</span>")
    ended = _ended(data)
    if ended:
        parts.append(f"<span>ended: {when(ended)}</span>")
    if data.get("FailureReason"):
        parts.append(f'<span class="failure">{esc(data["FailureReason"])}</span>')
    return f'<div class="summary">{"".join(parts)}</div>'


def _words(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r" \1", key).lower()


def _ended(row: Mapping[str, Any]) -> Any:
    return next((v for k, v in row.items() if k.endswith("EndTime") and v), None)


def _note(row: Mapping[str, Any]) -> str:
    reason = row.get("FailureReason")
    if reason:
        return str(reason).split("\n", 1)[0][:160]
    secondary = row.get("SecondaryStatus")
    return str(secondary) if secondary and secondary not in ("Completed", "Failed", "Stopped") else ""


def _image(row: Mapping[str, Any]) -> str:
    container = row.get("PrimaryContainer") or (row.get("Containers") or [{}])[0]
    return str(container.get("Image", ""))


def _objective(row: Mapping[str, Any]) -> str:
    metric = row.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    return f"{metric.get('MetricName')} = {metric.get('Value'):g}" if "Value" in metric else ""


def _stamp(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else 0.0
