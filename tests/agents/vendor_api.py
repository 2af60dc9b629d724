"""A loopback HTTP server that speaks the vendors' model APIs, for real-boundary tests.

One server answers the Anthropic Messages API (`/v1/messages`, plain or streamed), the
OpenAI chat-completions API (`/v1/chat/completions`, plain or SSE with usage), the OpenAI
Responses API (`/v1/responses`, SSE, as Codex uses it) and Gemini's `generateContent` /
`streamGenerateContent`. The providers and the vendors' real CLIs talk to it over TCP
exactly as they would to the vendor. Tests script failures (`fail_next(429, ...)`) and read
what was sent (`requests`), headers included.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INPUT_TOKENS = 17
OUTPUT_TOKENS = 5


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: Any


@dataclass
class ScriptedFailure:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # bursts of concurrent clients must not hit a full backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout test) is expected; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class VendorAPI:
    """Start with `start()`, stop with `stop()`; `url` is `http://127.0.0.1:PORT`."""

    def __init__(self, reply: str = "hello from loopback") -> None:
        self.reply = reply
        self.delay_s = 0.0
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most model calls the server was handling at once
        self._failures: deque[ScriptedFailure] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> VendorAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(
        self, status: int, message: str = "scripted failure", *, times: int = 1, **headers: str
    ) -> None:
        """The next `times` model calls answer `status` with a vendor-style error body."""
        with self._lock:
            for _ in range(times):
                self._failures.append(
                    ScriptedFailure(
                        status, message, {k.replace("_", "-"): v for k, v in headers.items()}
                    )
                )

    def model_calls(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    def _next_failure(self) -> ScriptedFailure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None


def _handler_for(api: VendorAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            api.requests.append(RecordedRequest("GET", self.path, _lower(self.headers), None))
            self._send(200, {"object": "list", "data": [], "models": []})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            api.requests.append(RecordedRequest("POST", self.path, _lower(self.headers), body))
            with api._lock:
                api.in_flight += 1
                api.max_in_flight = max(api.max_in_flight, api.in_flight)
            try:
                self._answer(body)
            finally:
                with api._lock:
                    api.in_flight -= 1

        def _answer(self, body: Any) -> None:
            if api.delay_s:
                threading.Event().wait(api.delay_s)
            if "countTokens" in self.path:
                self._send(200, {"totalTokens": INPUT_TOKENS})
                return
            failure = api._next_failure()
            if failure is not None:
                error = {
                    "type": "error",
                    "error": {
                        "type": "api_error",
                        "code": failure.status,
                        "message": failure.message,
                    },
                }
                self._send(failure.status, error, failure.headers)
                return
            path = self.path.split("?", 1)[0]
            data = body if isinstance(body, dict) else {}
            if path.endswith("/messages"):
                self._anthropic(data)
            elif path.endswith("/chat/completions"):
                self._openai_chat(data)
            elif path.endswith("/responses"):
                self._openai_responses(data)
            elif re.search(r"/models/[^/:]+:(stream)?[gG]enerateContent$", path):
                self._gemini(path, data)
            else:
                self._send(404, {"error": {"message": f"no route {path}"}})

        def _anthropic(self, data: dict[str, Any]) -> None:
            model = data.get("model", "claude-test")
            usage = {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS}
            if not data.get("stream"):
                self._send(200, {
                    "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": api.reply}],
                    "stop_reason": "end_turn", "usage": usage,
                })  # fmt: skip
                return
            start = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
            }
            self._sse([
                ("message_start", {"type": "message_start", "message": start}),
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": api.reply}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                   "usage": {"output_tokens": OUTPUT_TOKENS}}),
                ("message_stop", {"type": "message_stop"}),
            ])  # fmt: skip

        def _openai_chat(self, data: dict[str, Any]) -> None:
            model = data.get("model", "gpt-test")
            usage = {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                     "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}  # fmt: skip
            if not data.get("stream"):
                self._send(200, {
                    "id": "c1", "object": "chat.completion", "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": api.reply}}],
                    "usage": usage,
                })  # fmt: skip
                return
            words = re.findall(r"\S+\s*", api.reply) or [""]
            chunks: list[tuple[str | None, Any]] = [
                (None, {"id": "c1", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": word}}]})
                for word in words
            ]  # fmt: skip
            chunks.append((None, {"id": "c1", "object": "chat.completion.chunk", "model": model,
                                  "choices": [{"index": 0, "delta": {},
                                               "finish_reason": "stop"}]}))  # fmt: skip
            if (data.get("stream_options") or {}).get("include_usage"):
                chunks.append((None, {"id": "c1", "model": model, "choices": [], "usage": usage}))
            chunks.append((None, "[DONE]"))
            self._sse(chunks)

        def _openai_responses(self, data: dict[str, Any]) -> None:
            item = {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": api.reply, "annotations": []}],
            }
            response = {
                "id": "resp_1", "object": "response", "status": "completed",
                "model": data.get("model"), "output": [item],
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                          "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}},
            }  # fmt: skip
            events = [
                {"type": "response.created",
                 "response": {**response, "status": "in_progress", "output": []}},
                {"type": "response.output_item.added", "output_index": 0,
                 "item": {**item, "status": "in_progress", "content": []}},
                {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0,
                 "content_index": 0, "delta": api.reply},
                {"type": "response.output_item.done", "output_index": 0, "item": item},
                {"type": "response.completed", "response": response},
            ]  # fmt: skip
            self._sse([(str(e["type"]), e) for e in events])

        def _gemini(self, path: str, data: dict[str, Any]) -> None:
            model = path.rsplit("/", 1)[-1].split(":", 1)[0]
            answer = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": api.reply}]},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": INPUT_TOKENS,
                                  "candidatesTokenCount": OUTPUT_TOKENS,
                                  "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS},
                "modelVersion": model,
            }  # fmt: skip
            if ":stream" in path:
                self._sse([(None, answer)])
            else:
                self._send(200, answer)

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            out = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(out)

        def _sse(self, events: list[tuple[str | None, Any]]) -> None:
            parts = []
            for name, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                parts.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
            out = "".join(parts).encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler


def _lower(headers: Any) -> dict[str, str]:
    """Header names lowercased: clients differ in the case they send."""
    return {name.lower(): value for name, value in headers.items()}
