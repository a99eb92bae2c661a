"""Real HTTP servers on 127.0.0.1 for the tests: llama.cpp's OpenAI-compatible server with the
embedded GGUF, an OpenAI-compatible embeddings server over a real local encoder, and a
scripted fault server that misbehaves on purpose."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free 127.0.0.1 port in a thread; yield ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def embeddings_api(encoder, model: str = "all-MiniLM-L6-v2",
                   api_key: str = "") -> Iterator[tuple[str, list[dict]]]:
    """Serve ``POST /v1/embeddings`` (the OpenAI protocol) over a real local encoder.

    llama-cpp-python's server cannot pool a decoder model's token vectors into one embedding
    per text, so this small server stands in for a text-embeddings server such as TEI or
    vLLM's. It checks the bearer key when one is set. Yields the /v1 base URL and the request
    bodies received.
    """
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                _send(self, 401, {"error": {"message": "bad key"}})
                return
            if self.path != "/v1/embeddings" or body.get("model") != model:
                _send(self, 404, {"error": {"message": "unknown route or model"}})
                return
            vectors = encoder.encode(list(body["input"]))
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in enumerate(vectors)]
            _send(self, 200, {"object": "list", "model": model, "data": data,
                              "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    with loopback_server(Handler) as base:
        yield base + "/v1", seen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_cpp_server(model_path: str, n_ctx: int = 2048, extra_args: tuple[str, ...] = (),
                     processes: list[subprocess.Popen] | None = None) -> Iterator[str]:
    """Start ``python -m llama_cpp.server`` on a free loopback port; yield its /v1 base URL.

    The server process is appended to ``processes`` when given (a test may kill it).
    """
    port = free_port()
    # A pipe nobody reads would fill up and block the server, so it logs to a file.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", "gemma-3-270m",
         *extra_args],
        stdout=log, stderr=subprocess.STDOUT)
    if processes is not None:
        processes.append(proc)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama.cpp server exited: {log.read()[-2000:]!r}")
            try:
                with urllib.request.urlopen(base + "/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("llama.cpp server did not start in 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


_FAULT = re.compile(r"FAULT:([a-z0-9]+)(?:_(\d+))?")


class FaultServer:
    """An OpenAI-compatible endpoint whose behaviour is chosen by a marker in the prompt.

    Markers (``_N`` = for the first N attempts): ``FAULT:ok``, ``FAULT:429_2`` (429 with
    Retry-After), ``FAULT:500_3``, ``FAULT:slow_1`` (sleeps past the client timeout),
    ``FAULT:truncate`` (finish_reason length), ``FAULT:bad400`` (a non-retryable 400),
    ``FAULT:malformed`` (a 200 whose body is not JSON), ``FAULT:always503``,
    ``FAULT:jsontail`` (a JSON object, then more text up to the token limit). Attempts are
    counted per marker text, so each test uses its own marker.
    """

    def __init__(self, slow_s: float = 2.0, die_after: int | None = None,
                 max_in_flight: int | None = None, answer_s: float = 0.0):
        self.attempts: Counter[str] = Counter()
        self.slow_s = slow_s
        self.die_after = die_after  # stop serving for good after this many requests
        # Like a loaded server: a request beyond max_in_flight gets a 429 at once.
        self.max_in_flight = max_in_flight
        self.answer_s = answer_s  # how long each accepted request takes
        self.in_flight = self.peak_in_flight = self.rejected = 0
        self.total = 0
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body.get("prompt") or json.dumps(body.get("messages"))
                m = _FAULT.search(prompt)
                marker = m.group(0) if m else "ok"
                with server._lock:
                    server.attempts[marker] += 1
                    n = server.attempts[marker]
                    server.total += 1
                    server.auth_headers.append(self.headers.get("Authorization"))
                    dying = server.die_after is not None and server.total > server.die_after
                if dying:  # the server process "dies": stop listening, drop this request
                    threading.Thread(target=server._die, daemon=True).start()
                    self.close_connection = True
                    return
                kind, times = (m.group(1), int(m.group(2) or 0)) if m else ("ok", 0)
                with server._lock:
                    busy = (server.max_in_flight is not None
                            and server.in_flight >= server.max_in_flight)
                    server.rejected += busy
                    if not busy:
                        server.in_flight += 1
                        server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                if busy:
                    _send(self, 429, {"error": "busy"}, {"Retry-After": "0"})
                    return
                try:
                    time.sleep(server.answer_s)
                    server._respond(self, kind, times, n, body)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._die()

    def _die(self) -> None:
        with self._lock:
            if getattr(self, "_dead", False):
                return
            self._dead = True
        self.httpd.shutdown()
        self.httpd.server_close()

    def _respond(self, h: BaseHTTPRequestHandler, kind: str, times: int, n: int,
                 body: dict) -> None:
        if kind in {"429", "500"} and n <= times:
            return _send(h, int(kind), {"error": "injected"},
                         {"Retry-After": "0"} if kind == "429" else {})
        if kind == "slow" and n <= times:
            time.sleep(self.slow_s)
        if kind == "always503":
            return _send(h, 503, {"error": "down"})
        if kind == "bad400":
            return _send(h, 400, {"error": "bad request"})
        if kind == "malformed":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.end_headers()
            h.wfile.write(b"{not json")
            return None
        finish = "length" if kind in {"truncate", "jsontail"} else "stop"
        text = f" A reply to {kind} number {n}"
        if kind == "jsontail":  # a JSON object, then the model runs on to the token limit
            text = ' {"name": "Ada"}\n\nGame world: a town\nPersona: a smith\nNPC: {"na'
        choice = ({"text": text} if "prompt" in body
                  else {"message": {"role": "assistant", "content": text.strip()}})
        return _send(h, 200, {"choices": [{**choice, "finish_reason": finish, "index": 0}],
                              "usage": {"prompt_tokens": 11, "completion_tokens": 7}})


def _send(h: BaseHTTPRequestHandler, status: int, payload: dict, headers=None) -> None:
    raw = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(raw)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(raw)
