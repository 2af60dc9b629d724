"""Sending an ended execution to an OpenTelemetry receiver as a trace, over OTLP/HTTP
(protobuf, `POST {AX_OTEL_ENDPOINT}/v1/traces`), with the `otel` extra's SDK.

The spans are made with the SDK's tracer from the plan in `telemetry.trace`, each with its
real start and end from the store (not the time of the export), and the ids the plan
chose; they are sent in one request, then the exporter is closed: nothing stays behind in
the process (no global tracer provider, no background thread, no exit hook).

The run comes first. A receiver that is down, slow or refusing costs at most
`EXPORT_TIMEOUT_S` at the end of the run and one `warning:` line on stderr; the run's
outcome and exit code do not change. The exporter's own standard settings apply
(`OTEL_EXPORTER_OTLP_HEADERS` for an API key, `OTEL_EXPORTER_OTLP_CERTIFICATE`, ...), and
`OTEL_SDK_DISABLED=true` sends nothing.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from automatosx.telemetry.trace import Trace, execution_trace

if TYPE_CHECKING:
    from automatosx.store.base import Store

SERVICE_NAME = "automatosx"
TRACES_PATH = "/v1/traces"
EXPORT_TIMEOUT_S = 2.0  # the exporter's whole budget, retries included
# The exporter logs its failures (and each retry) itself; with no logging configured Python
# would print them on stderr. We say it once, in one line, instead; an application that
# configures logging still receives them.
_EXPORTER_LOGGER = logging.getLogger("opentelemetry.exporter")
_EXPORTER_LOGGER.addHandler(logging.NullHandler())
_OS_ERROR = re.compile(r"\[Errno -?\d+\][^\"'()]*")  # "[Errno 111] Connection refused"


def export_ended(store: Store, execution_id: str, endpoint: str) -> bool:
    """Send the execution's trace if it has ended (completed, failed, cancelled): a paused
    one is sent when it ends, whole. Never raises: a failure is one `warning:` line on
    stderr. True if the receiver took the spans."""
    try:
        if not store.get_execution(execution_id).is_terminal:
            return False
        problem = export_execution(store, execution_id, endpoint)
    except Exception as exc:  # telemetry never fails a run
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None:
        return True
    line = " ".join(problem.split())
    sys.stderr.write(
        f"warning: the trace of execution {execution_id} was not sent to "
        f"{_shown(traces_url(endpoint))}: {line}\n"
    )
    sys.stderr.flush()
    return False


def export_execution(store: Store, execution_id: str, endpoint: str) -> str | None:
    """Send the execution's trace (its children's with it); None when the receiver took
    it, else what went wrong."""
    spans = sdk_spans(execution_trace(store, execution_id))
    if not spans:  # OTEL_SDK_DISABLED, or a sampler that keeps nothing
        return None
    exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=EXPORT_TIMEOUT_S)
    failures = _Failures()
    _EXPORTER_LOGGER.addHandler(failures)
    try:
        result = exporter.export(spans)
    finally:
        _EXPORTER_LOGGER.removeHandler(failures)
        exporter.shutdown()  # type: ignore[no-untyped-call]
    if result is SpanExportResult.SUCCESS:
        return None
    return failures.first or "the receiver did not take the spans"


def traces_url(endpoint: str) -> str:
    """Where the spans go: `{endpoint}/v1/traces` (an endpoint that names it already is
    taken as it is)."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def _shown(url: str) -> str:
    """The URL without a user or password it may carry."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def sdk_spans(trace: Trace) -> Sequence[ReadableSpan]:
    """The planned spans as the SDK's finished spans, made by a tracer of their own."""
    version = _installed_version()
    ids = _PlannedIds(trace.trace_id)
    collected = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME, "service.version": version}),
        id_generator=ids,
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("automatosx", version)
    try:
        for planned in trace.spans:
            parent = Context()  # never the caller's current span: the trace is ours
            if planned.parent_id is not None:
                context = trace_api.SpanContext(
                    trace.trace_id,
                    planned.parent_id,
                    is_remote=False,
                    trace_flags=trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED),
                )
                parent = trace_api.set_span_in_context(trace_api.NonRecordingSpan(context))
            ids.span_id = planned.span_id
            span = tracer.start_span(
                planned.name,
                context=parent,
                kind=trace_api.SpanKind.INTERNAL,
                attributes=planned.attributes,
                start_time=planned.start_ns,
            )
            if planned.error is not None:
                span.set_status(trace_api.Status(trace_api.StatusCode.ERROR, planned.error))
            span.end(end_time=planned.end_ns)
        return collected.get_finished_spans()
    finally:
        provider.shutdown()


def _installed_version() -> str:
    """The installed distribution's version (the package's own `__version__` is in a room
    above this one)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("automatosx")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _PlannedIds(IdGenerator):
    """The ids the plan chose: the trace's, and the span id set before each span starts."""

    def __init__(self, trace_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


class _Failures(logging.Handler):
    """What the exporter said first went wrong, in this thread (`recover` sends several
    executions' traces at once, each from its own thread), to say why in our one line:
    the system's words for a connection that failed, else the exporter's message."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or self.first is not None:
            return
        message = record.getMessage()
        found = _OS_ERROR.search(message)
        self.first = found.group(0).strip() if found else message
