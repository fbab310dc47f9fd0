"""A minimal OpenAI-compatible chat server for the benchmark: answers at once, so what remains is the pipeline.

``assistant bench`` points the openai-compatible backend at it to measure the
answer path's own time (retrieval, prompt building, the HTTP client, SSE
parsing, citation checking) apart from the model: the model's share here is
the server's handling time, recorded per request in ``handled_ms``. Real
sockets on 127.0.0.1; nothing else is reached.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "The first source addresses the question directly [1]. The second adds a related result [2]."


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        started = time.perf_counter()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        model = body.get("model", "stub")
        if body.get("stream"):
            words = ANSWER.split(" ")
            events = [_chunk(model, {"content": w + (" " if i < len(words) - 1 else "")}, None) for i, w in enumerate(words)]
            events += [_chunk(model, {}, "stop"), b"data: [DONE]\n\n"]
            self._send(b"".join(events), "text/event-stream")
        else:
            reply = {
                "id": "stub", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self._send(json.dumps(reply).encode(), "application/json")
        with self.server.lock:
            self.server.handled_ms.append(1000 * (time.perf_counter() - started))

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _chunk(model: str, delta: dict, finish: str | None) -> bytes:
    body = {"id": "stub", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class StubLLM:
    """``with StubLLM() as llm:`` serves on a free port; ``llm.url`` ends in /v1."""

    def __init__(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.lock = threading.Lock()
        self._server.handled_ms = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def handled_ms(self) -> list[float]:
        return list(self._server.handled_ms)

    def __enter__(self) -> "StubLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
