"""Serve one arm of a run directory behind an OpenAI-compatible HTTP API, with sources.

    advisor serve runs/<run-id> [--arm auto|ARM] [--port 8000] [--api-key KEY]     # ARM: advisor.core.arms.ARMS

Endpoints
  POST /v1/chat/completions  OpenAI chat format; the model name is the arm; the answer to the last user
                             message, plus an extra field `sources` (retrieved chunks); `stream: true` sends
                             server-sent events (the answer in one content chunk once generated)
  GET  /v1/models            the served arm
  POST /v1/query             {"question": ...} -> answer, sources with chunk text, arm, latency
  GET  /healthz              liveness, no auth

Concurrent requests are micro-batched: the first waiting request opens a batch, which closes once no
request has arrived for `max_wait_ms`, at `max_batch` requests, or `max_delay_ms` after it opened, and
the whole batch is one generation call; requests that arrive while a batch generates form the next one.
With `--backend openai --base-url URL` generation (and its batching) runs on that OpenAI-compatible engine while
retrieval, the prompt and the sources stay here; while the engine is down, requests get 503 JSON errors (502 when
it answers with an error) after the bounded retries, and answers resume when it is back.
Safe defaults: loopback bind, bearer-token check when an API key is set, bounded body, prompt tokens,
max_tokens and request time, JSON errors with 4xx for bad input and no stack traces in responses.
"""

# No `from __future__ import annotations` here: FastAPI and pydantic resolve the annotations of the
# handlers and request models defined inside add_routes and request_models at run time.
import asyncio
import hmac
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from advisor.arms import check_artifacts, make_arm
from advisor.core.arms import ARM, ARM_OF_OPTION, ARMS
from advisor.core.config import load_run_config
from advisor.core.errors import AdvisorError, did_you_mean
from advisor.core.openai_client import EngineError, message_text
from advisor.core.textio import read_json


@dataclass
class Limits:
    max_body_bytes: int = 64 * 1024  # request body
    max_prompt_tokens: int = 512  # tokens of the question (retrieved context is bounded by the run's config)
    max_tokens: int = 256  # the largest max_tokens a request may ask for
    default_max_tokens: int = 0  # 0 = the run's model.max_new_tokens
    timeout_s: float = 120.0  # a request waiting longer gets 504
    max_batch: int = 32  # requests per generation call; 1 = no micro-batching
    max_wait_ms: float = 50.0  # an open batch closes when no request has arrived for this long ...
    max_delay_ms: float = 500.0  # ... or this long after it opened, whichever comes first


# ---------------------------------------------------------------- the pipeline


def resolve_arm(run_dir: Path, arm: str) -> str:
    """'auto' -> the run's recommended arm; checks the arm's artifacts exist."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise AdvisorError(f"{run_dir} is not a run directory (no config.yaml); pass the folder `advisor run` printed")
    if arm == "auto":
        rec = run_dir / "recommendation.json"
        if not rec.is_file():
            raise AdvisorError(
                f"{run_dir} has no recommendation.json to pick the arm from; pass --arm {'|'.join(ARMS)}"
            )
        arm = ARM_OF_OPTION[
            read_json(rec, "recommendation", f"run advisor recommend {run_dir}, or pass --arm")["verdict"]
        ]
    if arm not in ARMS:
        raise AdvisorError(f"unknown arm '{arm}'{did_you_mean(arm, ARMS)}; arms: auto, {', '.join(ARMS)}")
    check_artifacts(run_dir, arm, "run the pipeline first (advisor run), or serve another arm (--arm)")
    return arm


class ServedArm:
    """The model (with the adapter when the arm needs it), the retriever, and the arm's Answerer."""

    def __init__(self, run_dir: Path, arm: str, generation: dict | None = None):
        self.run_dir = Path(run_dir)
        self.arm = resolve_arm(self.run_dir, arm)
        self.cfg = load_run_config(self.run_dir)
        if generation:  # --backend/--base-url: generation on a server, retrieval and prompts here
            from advisor.core.config import GenerationConfig, _deep_merge, from_dict

            self.cfg.generation = from_dict(
                GenerationConfig, _deep_merge(asdict(self.cfg.generation), generation), "generation"
            )
        # Every torch call (loading, each generation) runs on this one thread. Once a second OS thread has run
        # torch ops, each has its own OpenMP team and they contend for the cores: a 32-token RAG answer took
        # 11.4 s from asyncio's worker threads vs 3.6 s on one thread (SmolLM2-135M, 2 cores).
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advisor-model")
        self.executor.submit(self._load).result()

    def _load(self) -> None:
        from advisor.core.remote_lm import load_lm

        spec = ARM[self.arm]
        self.lm = load_lm(self.cfg, adapter=str(self.run_dir / "adapter") if spec.needs_adapter else None)
        retriever = None
        if spec.needs_index:
            from retrieval.index import Retriever

            retriever = Retriever(self.run_dir / "index")
        self.answerer = make_arm(self.arm, self.cfg, self.lm, retriever, run_dir=self.run_dir)

    def answer_batch(self, questions: list[str], max_new_tokens: int):
        """One generation call for the whole batch (the batcher runs it on `self.executor`)."""
        self.answerer.max_new_tokens = max_new_tokens
        self.answerer.batch_size = max(1, len(questions))
        return self.answerer.answer(questions)

    def count_tokens(self, text: str) -> int:
        return self.lm.count_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        ids = self.lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.lm.tokenizer.decode(ids[:max_tokens]).strip()


class MicroBatcher:
    """Collects concurrent requests into bounded batches for one generation call each.

    A batch stays open while requests keep coming (each within `max_wait_s` of the one before), up to
    `max_batch` requests or `max_delay_s` after it opened. A fixed window from the first request split
    bursts: 32 clients' requests reached the server over 40-50 ms, so at concurrency 32 the batches
    alternated between two cohorts of about 16 (RAG arm on 2 CPU cores: 1.01 req/s, mean batch 16.0).
    Within a burst, requests came up to 18 ms apart, and a 20 ms quiet gap still split some bursts
    (closed-book arm: 3.1 req/s, mean batch 21.3, vs 3.9 req/s and 32.0 with 50 ms)."""

    def __init__(self, fn, max_batch: int, max_wait_s: float, executor=None, max_delay_s: float = 0.5):
        self.fn = fn
        self.executor = executor  # where `fn` runs; None = asyncio's default thread pool
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self.max_delay_s = max(self.max_wait_s, max_delay_s)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0
        self.batched_requests = 0

    async def submit(self, question: str, max_tokens: int):
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((question, max_tokens, fut))
        return await fut

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_delay_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = min(self.max_wait_s, deadline - loop.time())
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            batch = [b for b in batch if not b[2].done()]  # drop requests that timed out while queued
            if not batch:
                continue
            self.batches += 1
            self.batched_requests += len(batch)
            try:
                answers = await loop.run_in_executor(
                    self.executor, self.fn, [b[0] for b in batch], max(b[1] for b in batch)
                )
            except Exception as e:  # noqa: BLE001 - every waiting request learns of the failure
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for (_, _, fut), a in zip(batch, answers):
                if not fut.done():
                    fut.set_result(a)


# ---------------------------------------------------------------- the HTTP app


class APIError(Exception):
    """An error answered as OpenAI-style JSON with this status (no stack trace reaches a client)."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param


def error_response(status: int, message: str, type_: str, code=None, param=None, headers=None):
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": type_, "code": code, "param": param}}
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(served, limits: Limits | None = None, api_key: str | None = None):
    """The FastAPI app around a ServedArm (or anything with arm, cfg, answer_batch, count_tokens, truncate):
    the micro-batcher, the JSON error handlers, the bound on the body, and the routes."""
    from fastapi import FastAPI

    limits = limits or Limits()
    batcher = MicroBatcher(
        served.answer_batch,
        limits.max_batch,
        limits.max_wait_ms / 1000,
        getattr(served, "executor", None),
        limits.max_delay_ms / 1000,
    )

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="rag-ft-advisor", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    add_error_handlers(app)
    add_body_bound(app, limits.max_body_bytes)
    add_routes(app, Answering(served, limits, batcher), api_key)
    return app


def add_error_handlers(app) -> None:
    """Every error becomes one JSON body: APIError as raised, request validation as 400, HTTP errors as they are,
    the generation engine's as 503/502 with the URL kept in the server log, anything else as 500."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.type, exc.code, exc.param, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        err = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        if err.get("type") == "json_invalid":
            return error_response(400, "request body is not valid JSON", "invalid_request_error", "invalid_json")
        msg = f"{loc}: {err.get('msg', 'invalid value')}" if loc else err.get("msg", "invalid request")
        return error_response(400, msg, "invalid_request_error", "invalid_value", loc or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error")

    @app.exception_handler(EngineError)
    async def _engine(request, exc: EngineError):
        # The engine's URL stays in the server log, not in answers to clients.
        print(f"advisor serve: {exc}", file=sys.stderr, flush=True)
        what = "is unavailable" if exc.status == 503 else "failed"
        return error_response(
            exc.status,
            f"the generation engine {what}; try again later",
            "engine_error",
            "engine_unavailable" if exc.status == 503 else "engine_error",
            headers={"Retry-After": "5"} if exc.status == 503 else None,
        )

    @app.exception_handler(Exception)
    async def _internal(request, exc: Exception):
        return error_response(500, "internal error while answering; see the server log", "server_error")


def add_body_bound(app, max_body_bytes: int) -> None:
    """Requests over `max_body_bytes` get 413: by their content-length, or read in parts when they send none."""
    from fastapi import Request

    def too_large():
        return error_response(
            413, f"request body over {max_body_bytes} bytes", "invalid_request_error", "body_too_large"
        )

    @app.middleware("http")
    async def bound_body(request: Request, call_next):
        cl = request.headers.get("content-length")
        if cl is not None and (not cl.isdigit() or int(cl) > max_body_bytes):
            return too_large()
        if cl is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for part in request.stream():
                body += part
                if len(body) > max_body_bytes:
                    return too_large()
            request._body = body  # starlette reads the cached body later
        return await call_next(request)


class Answering:
    """What every endpoint shares: the checks of a request and its answer through the micro-batcher."""

    def __init__(self, served, limits: Limits, batcher: MicroBatcher):
        self.served, self.limits, self.batcher = served, limits, batcher
        self.default_max = limits.default_max_tokens or served.cfg.model.max_new_tokens

    def check_model(self, name: str | None) -> None:
        if name not in (None, "", self.served.arm):
            raise APIError(
                404,
                f"model '{name}' is not served here; this server serves '{self.served.arm}'",
                "invalid_request_error",
                "model_not_found",
                "model",
            )

    def check_question(self, q: str, max_tokens: int | None) -> int:
        """The request's max_tokens, once the question and max_tokens are within the bounds."""
        limits = self.limits
        if not q.strip():
            raise APIError(400, "the question (last user message) is empty", param="messages")
        n = self.served.count_tokens(q)
        if n > limits.max_prompt_tokens:
            raise APIError(
                400,
                f"the question has {n} tokens, over the bound of {limits.max_prompt_tokens}",
                code="prompt_too_long",
                param="messages",
            )
        mt = self.default_max if max_tokens is None else max_tokens
        if not 1 <= mt <= limits.max_tokens:
            raise APIError(400, f"max_tokens={mt} must be between 1 and {limits.max_tokens}", param="max_tokens")
        return mt

    async def answer(self, q: str, max_tokens: int):
        """(Answer, its text cut to max_tokens, finish reason, seconds) once the batch holding `q` is answered."""
        t0 = time.perf_counter()
        try:
            a = await asyncio.wait_for(self.batcher.submit(q, max_tokens), self.limits.timeout_s)
        except asyncio.TimeoutError:
            raise APIError(
                504, f"no answer within {self.limits.timeout_s:.0f} s; try again later", "timeout_error", "timeout"
            ) from None
        # a batch generates up to its longest request's max_tokens: cut to this one's; the gate's abstention answer
        # (retrieval/gate.py) was not generated and is given whole
        text = a.text if a.gated else self.served.truncate(a.text, max_tokens)
        finish = "length" if a.new_tokens >= max_tokens else "stop"
        return a, text, finish, time.perf_counter() - t0

    @staticmethod
    def sources(a) -> list[dict]:
        return [
            {"rank": c.rank, "source": c.source, "chunk_id": c.chunk_id, "score": round(c.score, 4), "text": c.text}
            for c in a.contexts
        ]


def request_models():
    """The pydantic models of the request bodies (built on first use: pydantic is imported lazily)."""
    from pydantic import BaseModel, ConfigDict, Field

    class Message(BaseModel):
        model_config = ConfigDict(extra="ignore")
        role: Literal["system", "user", "assistant", "developer"]
        content: str | list[dict] | None = None

        def text(self) -> str:
            return message_text(self.content)

    class ChatRequest(BaseModel):
        model_config = ConfigDict(extra="ignore")
        model: str | None = None
        messages: list[Message] = Field(min_length=1)
        max_tokens: int | None = None
        max_completion_tokens: int | None = None
        stream: bool = False

    class QueryRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: str
        max_tokens: int | None = None

    return ChatRequest, QueryRequest


def add_routes(app, ans: Answering, api_key: str | None) -> None:
    """/healthz, /v1/models, /v1/query and /v1/chat/completions (the last three behind the API key, if set)."""
    from fastapi import Depends, Request
    from fastapi.responses import StreamingResponse

    ChatRequest, QueryRequest = request_models()
    served, batcher = ans.served, ans.batcher

    def check_auth(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), api_key.encode()):
            raise APIError(
                401,
                "missing or wrong API key (send Authorization: Bearer KEY)",
                "authentication_error",
                "invalid_api_key",
            )

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "arm": served.arm, "batches": batcher.batches, "requests": batcher.batched_requests}

    @app.get("/v1/models", dependencies=[Depends(check_auth)])
    async def models():
        return {
            "object": "list",
            "data": [{"id": served.arm, "object": "model", "created": 0, "owned_by": "rag-ft-advisor"}],
        }

    @app.post("/v1/query", dependencies=[Depends(check_auth)])
    async def query(req: QueryRequest):
        mt = ans.check_question(req.question, req.max_tokens)
        a, text, finish, dt = await ans.answer(req.question, mt)
        return {
            "answer": text,
            "sources": ans.sources(a),
            "arm": served.arm,
            "latency_s": round(dt, 4),
            "finish_reason": finish,
            "gated": a.gated,  # the retrieval gate's abstention: nothing generated (retrieval/gate.py)
        }

    @app.post("/v1/chat/completions", dependencies=[Depends(check_auth)])
    async def chat(req: ChatRequest):
        ans.check_model(req.model)
        last = req.messages[-1]
        if last.role != "user":
            raise APIError(400, f"the last message must have role 'user', not '{last.role}'", param="messages")
        q = last.text()
        mt = ans.check_question(
            q, req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        )
        a, text, finish, _ = await ans.answer(q, mt)
        reply = ChatReply(served.arm, a, text, finish, ans.sources(a))
        if req.stream:
            return StreamingResponse(reply.events(), media_type="text/event-stream")
        return reply.body()


class ChatReply:
    """One chat completion in the OpenAI format, whole or as server-sent events (the answer in one chunk)."""

    def __init__(self, arm: str, a, text: str, finish: str, sources: list[dict]):
        self.arm, self.text, self.finish, self.sources = arm, text, finish, sources
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        self.usage = {
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.new_tokens,
            "total_tokens": a.prompt_tokens + a.new_tokens,
        }

    def body(self) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.arm,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": self.text}, "finish_reason": self.finish}
            ],
            "usage": self.usage,
            "sources": self.sources,
        }

    def events(self):
        base = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.arm}
        first = {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": self.text}, "finish_reason": None}],
        }
        last_chunk = {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": self.finish}],
            "usage": self.usage,
            "sources": self.sources,
        }
        yield f"data: {json.dumps(first)}\n\n"
        yield f"data: {json.dumps(last_chunk)}\n\n"
        yield "data: [DONE]\n\n"


def serve(
    run_dir: Path,
    arm: str = "auto",
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    limits: Limits | None = None,
    generation: dict | None = None,
    sock=None,
) -> None:
    """Load the arm, then serve until interrupted (start-up problems raise AdvisorError: exit 2).
    `generation` overrides the run's generation settings (--backend/--base-url); `sock`: a socket already
    bound to host:port (advisor serve binds it before loading anything)."""
    import sys

    import uvicorn

    served = ServedArm(run_dir, arm, generation)
    app = create_app(served, limits, api_key)
    auth = "bearer token required" if api_key else "no API key (loopback use only)"
    print(f"serving arm '{served.arm}' of {run_dir} at http://{host}:{port}/v1 ({auth})", file=sys.stderr, flush=True)
    if sock is None:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)
        return
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5))
    server.run(sockets=[sock])
