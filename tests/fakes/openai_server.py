"""A scripted OpenAI-compatible HTTP server for tests: real sockets on 127.0.0.1, real HTTP, no network.

The real ``openai`` client talks to it, so the whole client path (request
building, SSE parsing, error mapping) runs. Each POST to ``/v1/chat/completions``
takes the next reply from the script (FIFO); when the script is empty it answers
``default_text`` (streamed or not, as the request asks). Every request body is
recorded in ``requests``.

Reply kinds (build them with the helpers below):
  answer(text)            JSON or SSE, whichever the request asked for
  sse(pieces, finish)     SSE chunks, optional finish_reason, then ``data: [DONE]``
  status(code, ...)       an error status with an OpenAI-style error body and headers
  malformed()             200 with a body that is not JSON
  malformed_sse()         an SSE stream whose second event is not JSON
  close_midstream(pieces) chunked SSE, then the socket closes without the final chunk
  clean_eof(pieces)       SSE without length or finish, then a clean close (looks complete to HTTP)
  delay(seconds, then)    wait, then send ``then`` (longer than a client timeout: a timeout)
  never()                 read the request and never answer (until the server stops)
  trickle(pieces, every)  chunked SSE, one piece every ``every`` seconds, then the finish: a slow model
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(text: str) -> dict:
    return {"kind": "answer", "text": text}


def sse(pieces: list[str], finish: str | None = "stop", done: bool = True) -> dict:
    return {"kind": "sse", "pieces": pieces, "finish": finish, "done": done}


def status(code: int, message: str = "error", headers: dict | None = None, code_name: str | None = None) -> dict:
    return {"kind": "status", "status": code, "message": message, "headers": headers or {}, "code": code_name}


def malformed() -> dict:
    return {"kind": "malformed"}


def malformed_sse() -> dict:
    return {"kind": "malformed_sse"}


def close_midstream(pieces: list[str]) -> dict:
    return {"kind": "close_midstream", "pieces": pieces}


def clean_eof(pieces: list[str]) -> dict:
    return {"kind": "clean_eof", "pieces": pieces}


def delay(seconds: float, then: dict | None = None) -> dict:
    return {"kind": "delay", "seconds": seconds, "then": then or answer("late")}


def never() -> dict:
    return {"kind": "never"}


def trickle(pieces: list[str], every: float) -> dict:
    return {"kind": "trickle", "pieces": pieces, "every": every}


def _completion(text: str, model: str) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(model: str, content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked encoding, like real servers
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        fake = self.server.fake
        fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        reply = fake.next_reply()
        try:
            self._send(reply, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def _send(self, reply: dict, body: dict) -> None:
        model = body.get("model", "test-model")
        kind = reply["kind"]
        if kind == "delay":
            time.sleep(reply["seconds"])
            return self._send(reply["then"], body)
        if kind == "never":
            self.server.fake.stopped.wait(600)
            return None
        if kind == "answer":
            if body.get("stream"):
                return self._send(sse(_split(reply["text"])), body)
            return self._json(200, _completion(reply["text"], model))
        if kind == "status":
            err = {"error": {"message": reply["message"], "type": "error", "code": reply["code"]}}
            return self._json(reply["status"], err, reply["headers"])
        if kind == "malformed":
            return self._bytes(200, b'{"id": "x", "choices": [ this is not json', "application/json")
        if kind == "sse":
            events = [_chunk(model, p) for p in reply["pieces"]]
            events.append(_chunk(model, None, reply["finish"]) if reply["finish"] else b"")
            if reply["done"]:
                events.append(b"data: [DONE]\n\n")
            return self._bytes(200, b"".join(events), "text/event-stream")
        if kind == "malformed_sse":
            return self._bytes(200, _chunk(model, "Half") + b"data: {not json\n\n", "text/event-stream")
        if kind == "close_midstream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in reply["pieces"]:
                data = _chunk(model, piece)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            self._hard_close()  # no terminating 0-chunk: the body is incomplete
            return None
        if kind == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            events = [_chunk(model, p) for p in reply["pieces"]] + [_chunk(model, None, "stop"), b"data: [DONE]\n\n"]
            for i, data in enumerate(events):
                if i and i < len(reply["pieces"]) and self.server.fake.stopped.wait(reply["every"]):
                    return None
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return None
        if kind == "clean_eof":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"".join(_chunk(model, p) for p in reply["pieces"]))
            self.wfile.flush()
            self.close_connection = True
            return None
        raise ValueError(f"unknown reply kind {kind!r}")

    def _hard_close(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _json(self, code: int, obj: dict, headers: dict | None = None) -> None:
        self._bytes(code, json.dumps(obj).encode(), "application/json", headers)

    def _bytes(self, code: int, data: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _split(text: str) -> list[str]:
    """Stream a text word by word, as models do."""
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler sleeping in a timeout test must not hold up shutdown
    fake: "FakeOpenAIServer"

    def handle_error(self, request, client_address):
        # A client that closes its kept-alive connection (as the openai client does between retries) is normal;
        # socketserver would print its traceback to stderr, which a CLI test's captured output then shows.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class FakeOpenAIServer:
    """Start with ``start()``; ``url`` is the base URL to give the client (ends in /v1)."""

    def __init__(self, default_text: str = "Default answer [1]."):
        self.default_text = default_text
        self.script: deque[dict] = deque()
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.stopped = threading.Event()  # set by stop(): replies that wait (never, trickle) end
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def push(self, *replies: dict) -> "FakeOpenAIServer":
        """Queue replies for the next requests, in order."""
        self.script.extend(replies)
        return self

    def next_reply(self) -> dict:
        with self._lock:
            return self.script.popleft() if self.script else answer(self.default_text)

    @property
    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]

    def start(self) -> "FakeOpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self._thread.is_alive():  # shutdown() of a server never started would wait forever
            self._server.shutdown()
        self._server.server_close()
