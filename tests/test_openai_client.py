"""The OpenAI HTTP client against a small real HTTP server (stdlib http.server on a free port) whose answers
the test scripts: retries with backoff on 503, no retry on 404, errors that name the URL, bounded concurrency."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from advisor.core.errors import AdvisorError
from advisor.core.openai_client import EngineError, EngineUnavailable, OpenAIClient, chat_text


class Scripted(ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.script: list[tuple[int, dict]] = []  # answers to give, in order; then 200 echoing the request
        self.requests: list[dict] = []
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()
        self.delay_s = 0.0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body: dict | None) -> None:
        srv: Scripted = self.server  # type: ignore[assignment]
        with srv.lock:
            srv.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            srv.active += 1
            srv.peak = max(srv.peak, srv.active)
            status, data = srv.script.pop(0) if srv.script else (200, {})
        time.sleep(srv.delay_s)
        if status == 200 and not data:
            data = (
                {"data": [{"id": "m1"}]}
                if self.path.endswith("/models")
                else {"choices": [{"message": {"role": "assistant", "content": f"echo {len(srv.requests)}"}}]}
            )
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        with srv.lock:
            srv.active -= 1

    def do_GET(self):
        self._answer(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self._answer(json.loads(self.rfile.read(n)))


@pytest.fixture
def server():
    srv = Scripted()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def url(srv) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/v1"


def test_a_chat_request_carries_greedy_settings_stop_sequences_and_the_bearer_key(server):
    c = OpenAIClient(url(server), api_key="k1")
    resp = c.chat("m1", [{"role": "user", "content": "hi"}], max_tokens=8, stop=["\n"], logprobs=True)
    assert chat_text(resp) == "echo 1"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k1"
    assert req["body"] == {
        "model": "m1",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
        "temperature": 0.0,
        "stop": ["\n"],
        "logprobs": True,
    }
    assert c.models() == ["m1"]


def test_transient_server_errors_are_retried_with_backoff_then_succeed(server):
    server.script = [(503, {"error": {"message": "busy"}}), (503, {"error": {"message": "busy"}})]
    c = OpenAIClient(url(server), max_retries=2, backoff_s=0.05)
    t0 = time.perf_counter()
    assert chat_text(c.chat("m1", [{"role": "user", "content": "x"}])) == "echo 3"
    assert time.perf_counter() - t0 >= 0.05 + 0.1  # two waits: 0.05 s, then 0.1 s
    assert len(server.requests) == 3


def test_a_client_error_is_not_retried_and_its_message_names_the_url_and_the_servers_reason(server):
    server.script = [(404, {"error": {"message": "The model `nope` does not exist."}})]
    c = OpenAIClient(url(server), max_retries=3, backoff_s=0.01)
    with pytest.raises(EngineError) as e:
        c.complete("nope", "Hello", echo=True, logprobs=1)
    assert len(server.requests) == 1
    assert url(server) + "/completions" in str(e.value) and "does not exist" in str(e.value)
    assert e.value.status == 502 and e.value.server_status == 404 and isinstance(e.value, AdvisorError)


def test_an_unreachable_server_is_an_engine_unavailable_error_naming_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    c = OpenAIClient(f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(EngineUnavailable) as e:
        c.models()
    assert f"127.0.0.1:{port}/v1/models" in str(e.value) and e.value.status == 503


def test_map_keeps_input_order_and_never_runs_more_than_concurrency_requests_at_once(server):
    server.delay_s = 0.05
    c = OpenAIClient(url(server), concurrency=3)
    out = c.map(lambda q: c.chat("m1", [{"role": "user", "content": q}])["choices"][0], [str(i) for i in range(9)])
    assert len(out) == 9 and server.peak <= 3 and server.peak >= 2
    sent = [r["body"]["messages"][0]["content"] for r in server.requests]
    assert sorted(sent) == sorted(str(i) for i in range(9))


def test_a_base_url_without_a_scheme_is_refused_with_an_example():
    with pytest.raises(AdvisorError, match="http://"):
        OpenAIClient("127.0.0.1:8000/v1")
