"""A small client for any OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama, `advisor serve --raw`):
chat completions, completions (with `logprobs` and `echo`), the model list, bounded retries with backoff, a
timeout per request and bounded concurrency. Every failure is an `EngineError` (an AdvisorError) that names the
URL and says what to do.

    client = OpenAIClient("http://127.0.0.1:8001/v1", api_key=None, concurrency=8)
    resp = client.chat("my-model", [{"role": "user", "content": "Hi"}], max_tokens=16)
    text = chat_text(resp)
    outs = client.map(lambda q: client.chat("my-model", [{"role": "user", "content": q}]), questions)

Plain httpx and threads: each request is one blocking call, `map` runs up to `concurrency` of them at once
(the engine batches concurrent requests itself: continuous batching in vLLM and TGI).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from advisor.core.errors import AdvisorError

T = TypeVar("T")
R = TypeVar("R")

# Answers that a retry may change: rate limits and the server's own transient failures.
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EngineError(AdvisorError):
    """The generation server failed. `status` is what a proxy in front of it should answer: 503 when it cannot
    be reached (down, refusing, timing out), 502 when it answered with an error or something unreadable."""

    def __init__(self, message: str, status: int = 502, server_status: int | None = None):
        super().__init__(message)
        self.status = status
        self.server_status = server_status  # the HTTP status the engine answered with, if it answered


class EngineUnavailable(EngineError):
    """The server could not be reached or did not answer in time (after the retries)."""

    def __init__(self, message: str):
        super().__init__(message, status=503)


class OpenAIClient:
    """Blocking client for one OpenAI-compatible base URL (ending in /v1); thread-safe."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        concurrency: int = 8,
    ):
        import httpx

        if not base_url.startswith(("http://", "https://")):
            raise AdvisorError(
                f"generation.base_url '{base_url}' must start with http:// or https:// (e.g. http://127.0.0.1:8001/v1)"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.backoff_s = max(0.0, backoff_s)
        self.concurrency = max(1, concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s, limits=limits)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ endpoints
    def models(self) -> list[str]:
        """The model names the server serves (GET /models)."""
        data = self._request("GET", "/models")
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]

    def chat(
        self,
        model: str,
        messages: list[dict],
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        logprobs: bool = False,
        **extra: Any,
    ) -> dict:
        """POST /chat/completions; returns the response JSON. temperature 0 = greedy on every engine named above."""
        body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, **extra}
        if stop:
            body["stop"] = list(stop)
        if logprobs:
            body["logprobs"] = True
        return self._request("POST", "/chat/completions", body)

    def complete(
        self,
        model: str,
        prompt: str | list[int],
        max_tokens: int = 16,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        logprobs: int | None = None,
        echo: bool = False,
        **extra: Any,
    ) -> dict:
        """POST /completions; `prompt` is text or token ids. With `echo` and `logprobs` the answer carries the
        log-probability of every prompt token (`choices[0].logprobs.token_logprobs`, the first one null)."""
        body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, **extra}
        if stop:
            body["stop"] = list(stop)
        if logprobs is not None:
            body["logprobs"] = logprobs
        if echo:
            body["echo"] = True
        return self._request("POST", "/completions", body)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """fn(item) for every item, at most `concurrency` at once, results in input order; the first
        exception is raised after the others have finished or failed."""
        items = list(items)
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(x) for x in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="advisor-openai")
        futs = [self._pool.submit(fn, x) for x in items]
        errors = [f.exception() for f in futs]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return [f.result() for f in futs]

    def close(self) -> None:
        self._http.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ transport
    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One call with bounded retries: connection failures, timeouts and RETRY_STATUS answers are retried
        after backoff_s * 2**attempt (plus jitter, so concurrent callers do not retry in lockstep)."""
        import httpx

        url = f"{self.base_url}{path}"
        last: EngineError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random()))
            try:
                r = self._http.request(method, path, json=body)
            except httpx.TimeoutException:
                last = EngineUnavailable(
                    f"the generation server at {url} did not answer within {self.timeout_s:g} s "
                    f"({self.max_retries + 1} tries); check that it is running and not overloaded, "
                    f"or raise generation.timeout_s"
                )
                continue
            except httpx.HTTPError as e:
                last = EngineUnavailable(
                    f"cannot reach the generation server at {url} ({type(e).__name__}: {e}); "
                    f"start it, or fix generation.base_url (--base-url)"
                )
                continue
            if r.status_code < 400:
                try:
                    data = r.json()
                except ValueError:
                    raise EngineError(
                        f"the generation server at {url} answered with something that is not JSON; "
                        f"is generation.base_url an OpenAI-compatible API ending in /v1?"
                    ) from None
                if not isinstance(data, dict):
                    raise EngineError(f"the generation server at {url} answered with JSON that is not an object")
                return data
            last = EngineError(
                f"the generation server at {url} answered HTTP {r.status_code}: {_server_message(r)}",
                status=502,
                server_status=r.status_code,
            )
            if r.status_code not in RETRY_STATUS:
                break
        assert last is not None
        raise last


def _server_message(r) -> str:
    """The error message of an OpenAI-style error body ({"error": {"message": ...}}), else the body's start."""
    try:
        data = r.json()
    except ValueError:
        return (r.text or "").strip()[:200] or "no body"
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or err)[:300]
    return str(err)[:300]


def chat_text(resp: dict) -> str:
    """The assistant text of a chat completion response ('' when the server sent none)."""
    try:
        return resp["choices"][0]["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def api_key_from_env(var: str) -> str | None:
    """The key in environment variable `var` ('' = no key; an unset variable is no key too)."""
    return os.environ.get(var) or None if var else None


def message_text(content: str | list[dict] | None) -> str:
    """The text of an OpenAI chat message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""
