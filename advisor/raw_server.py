"""A small OpenAI-compatible model server: one causal LM (and any number of LoRA adapters) behind
/v1/chat/completions, /v1/completions and /v1/models, for tests and for CPU users who want one.

    advisor serve --raw smollm2-135m-instruct --adapter my-run=runs/my-run/adapter --port 8001
    advisor eval runs/my-run --backend openai --base-url http://127.0.0.1:8001/v1

Unlike `advisor serve RUN_DIR` (a run's whole arm, retrieval included), this serves the bare model: chat
completions apply the model's chat template to the client's messages as given; completions take text or token
ids and, with `echo` and `logprobs`, return the log-probability of every prompt token (what log-likelihood
scoring needs, as vLLM does). Decoding is greedy (temperature 0) only. The model name of a request picks the
weights: the base model's served name, or an adapter's NAME (vLLM's --lora-modules NAME=PATH convention).
Production engines with continuous batching (vLLM, TGI, llama.cpp server, Ollama) serve the same API; the
README's "Scaling out" section has their commands. Concurrent requests are micro-batched as in `advisor serve`.
"""

# No `from __future__ import annotations`: FastAPI and pydantic resolve the request models' annotations at run time.
import asyncio
import functools
import hmac
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.openai_client import message_text
from advisor.serve import MicroBatcher


def parse_adapters(items: list[str]) -> dict[str, Path]:
    """['name=path', ...] -> {name: path}; each path must be a PEFT adapter folder."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise AdvisorError(f"--adapter '{item}' must look like NAME=PATH (e.g. my-run=runs/my-run/adapter)")
        p = Path(path.strip()).expanduser()
        if not (p / "adapter_config.json").is_file():
            raise AdvisorError(
                f"--adapter {name}: {p} is not a PEFT adapter folder (no adapter_config.json); "
                f"pass a run's adapter/ folder"
            )
        if name.strip() in out:
            raise AdvisorError(f"--adapter: the name '{name.strip()}' is given twice")
        out[name.strip()] = p
    return out


class RawModel:
    """The loaded model, its adapters by served name, and the batched work the HTTP handlers queue."""

    def __init__(
        self,
        spec: str,
        quantization: str,
        adapters: dict[str, Path],
        name: str | None = None,
        matmul_dtype: str = "float32",
    ):
        self.spec = spec
        self.name = name or spec
        if self.name in adapters:
            raise AdvisorError(f"--adapter name '{self.name}' is also the base model's served name; pick another")
        # One thread for every torch call, as in advisor serve: a second thread's OpenMP team would contend.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advisor-raw")
        self.executor.submit(self._load, quantization, adapters, matmul_dtype).result()

    def _load(self, quantization: str, adapters: dict[str, Path], matmul_dtype: str) -> None:
        from advisor.core.lm import LM

        items = list(adapters.items())
        first = str(items[0][1]) if items else None
        # float32 unless asked: the answers of bitsandbytes' own kernels, as an external engine would give
        self.lm = LM.load(self.spec, quantization, adapter=first, matmul_dtype=matmul_dtype)
        self.peft_names = {items[0][0]: "default"} if items else {}
        for name, path in items[1:]:
            self.lm.model.load_adapter(str(path), adapter_name=name)
            self.peft_names[name] = name

    @property
    def names(self) -> list[str]:
        return [self.name, *self.peft_names]

    def run(self, jobs: list[tuple], _max_tokens: int = 0) -> list:
        """One call per group of alike jobs: ('gen', model, prompt, max_tokens, stop) -> Generation,
        ('score', model, ids) -> per-token log-probabilities (len(ids) - 1 values)."""
        out: list = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            key = (job[0], job[1]) + ((job[3], job[4]) if job[0] == "gen" else ())
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            kind, model = key[0], key[1]
            with self._weights(model):
                if kind == "gen":
                    res = self.lm.generate([jobs[i][2] for i in idx], key[2], max(1, len(idx)), stop=key[3])
                else:
                    res = self.lm.token_logprobs([jobs[i][2] for i in idx], batch_size=16)
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def _weights(self, model: str):
        """The base weights (adapter off) or the named adapter, for the block."""
        if model in self.peft_names:
            self.lm.model.set_adapter(self.peft_names[model])
            return self.lm.adapter(True)
        return self.lm.adapter(False)


class APIError(Exception):
    """An OpenAI-style error answer: {"error": {"message", "type", "param", "code"}} with this HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None):
        self.status, self.message, self.param = status, message, param


def _error(status: int, message: str, param=None):
    from fastapi.responses import JSONResponse

    type_ = {404: "NotFoundError", 401: "AuthenticationError"}.get(status, "BadRequestError")
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": status}}, status)


@functools.cache
def _request_models():
    """(ChatRequest, CompletionRequest): the OpenAI request fields this server reads (others are ignored)."""
    from pydantic import BaseModel, ConfigDict, Field

    class Message(BaseModel):
        model_config = ConfigDict(extra="ignore")
        role: str
        content: str | list[dict] | None = None

        def text(self) -> str:
            return message_text(self.content)

    class Common(BaseModel):
        model_config = ConfigDict(extra="ignore")
        model: str
        max_tokens: int | None = Field(default=None, ge=0)
        temperature: float | None = None
        stop: str | list[str] | None = None
        stream: bool = False
        n: int = 1

    class ChatRequest(Common):
        messages: list[Message] = Field(min_length=1)
        max_completion_tokens: int | None = Field(default=None, ge=0)
        logprobs: bool = False

    class CompletionRequest(Common):
        prompt: str | list[int] | list[str] | list[list[int]]
        echo: bool = False
        logprobs: int | None = Field(default=None, ge=0, le=5)

    return ChatRequest, CompletionRequest


class RawAPI:
    """What the endpoints do, over a RawModel and the micro-batcher that feeds it."""

    def __init__(self, raw: RawModel, batcher: MicroBatcher, max_tokens: int):
        self.raw, self.batcher, self.max_tokens = raw, batcher, max_tokens
        self.tok = raw.lm.tokenizer
        self.context = int(getattr(raw.lm.model.config, "max_position_embeddings", 2048) or 2048)

    def check(self, req, asked: int | None, default: int) -> tuple[int, tuple[str, ...]]:
        """(max_tokens, stop) of a request this server can answer, else an APIError saying why not."""
        if req.model not in self.raw.names:
            raise APIError(404, f"The model `{req.model}` does not exist. Served: {', '.join(self.raw.names)}", "model")
        if req.stream:
            raise APIError(400, "stream is not supported by advisor serve --raw; send stream: false", "stream")
        if req.n != 1:
            raise APIError(400, "n must be 1 (greedy decoding gives one answer)", "n")
        if req.temperature not in (None, 0, 0.0):
            raise APIError(400, "advisor serve --raw decodes greedily only; send temperature 0", "temperature")
        mt = default if asked is None else asked
        if mt > self.max_tokens:
            raise APIError(400, f"max_tokens={mt} is over this server's bound of {self.max_tokens}", "max_tokens")
        return mt, (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())

    def check_length(self, n: int) -> None:
        if n == 0:
            raise APIError(400, "the prompt is empty", "prompt")
        if n >= self.context:
            raise APIError(400, f"the prompt has {n} tokens; this model's context is {self.context}", "prompt")

    async def chat(self, req) -> dict:
        from advisor.core.answer import chat_prompt

        asked = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        mt, stop = self.check(req, asked, 256)
        if not getattr(self.tok, "chat_template", None):
            raise APIError(400, f"model {self.raw.name} has no chat template; use /v1/completions", "messages")
        prompt = chat_prompt(self.tok, [{"role": m.role, "content": m.text()} for m in req.messages])
        self.check_length(len(self.tok(prompt, add_special_tokens=False)["input_ids"]))
        g = await self.batcher.submit(("gen", req.model, prompt, max(1, mt), stop), 0)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": g.text},
            "finish_reason": "length" if g.new_tokens >= mt else "stop",
            "logprobs": None,
        }
        if req.logprobs:
            choice["logprobs"] = {"content": self.token_entries(g)}
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [choice],
            "usage": usage(g.prompt_tokens, g.new_tokens),
        }

    async def completions(self, req) -> dict:
        mt, stop = self.check(req, req.max_tokens, 16)
        ids, text = self.prompt_ids(req.prompt)
        self.check_length(len(ids))
        if mt == 0 and not req.echo:
            raise APIError(400, "max_tokens=0 needs echo: true (prompt scoring)", "max_tokens")
        gen = self.batcher.submit(("gen", req.model, text, mt, stop), 0) if mt else _none()
        score = self.batcher.submit(("score", req.model, ids), 0) if req.echo and req.logprobs is not None else _none()
        g, lps = await asyncio.gather(gen, score)
        logprobs = None
        if req.logprobs is not None:
            toks, vals = [], []
            if req.echo:  # the first prompt token has no context, hence no log-probability (null, as in vLLM)
                toks, vals = [self.tok.decode([i]) for i in ids], [None, *lps]
            if g:
                toks += [e["token"] for e in self.token_entries(g)]
                vals += list(g.token_logprobs or [])
            offsets = [sum(len(t) for t in toks[:k]) for k in range(len(toks))]
            logprobs = {"tokens": toks, "token_logprobs": vals, "top_logprobs": None, "text_offset": offsets}
        n_new = g.new_tokens if g else 0
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": req.model,
            "usage": usage(len(ids), n_new),
            "choices": [
                {
                    "index": 0,
                    "text": (text if req.echo else "") + (g.text if g else ""),
                    "logprobs": logprobs,
                    "finish_reason": "length" if g is None or n_new >= mt else "stop",
                }
            ],
        }

    def token_entries(self, g) -> list[dict]:
        """Chat-style logprobs entries for a Generation's tokens (the end token, when counted, has empty text)."""
        ids = self.tok(g.text, add_special_tokens=False)["input_ids"]
        toks = [self.tok.decode([i]) for i in ids] + [""] * max(0, len(g.token_logprobs or []) - len(ids))
        return [
            {"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
            for t, lp in zip(toks, g.token_logprobs or [])
        ]

    def prompt_ids(self, prompt) -> tuple[list[int], str]:
        """(token ids, text) of a completions prompt given as text or as token ids (a batch of one is unwrapped)."""
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
            prompt = prompt[0]
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
            raise APIError(400, "send one prompt per request", "prompt")
        if isinstance(prompt, list):
            if any(not 0 <= i < len(self.tok) for i in prompt):
                raise APIError(400, f"token ids must be in [0, {len(self.tok)})", "prompt")
            return list(prompt), self.tok.decode(prompt)
        return self.raw.lm.encode(prompt), prompt


def create_raw_app(
    raw: RawModel, max_tokens: int = 512, max_batch: int = 32, max_wait_ms: float = 20.0, api_key: str | None = None
):
    """The FastAPI app over a RawModel: /v1/models, /v1/chat/completions, /v1/completions, /health."""
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    batcher = MicroBatcher(raw.run, max_batch, max_wait_ms / 1000, raw.executor, max_wait_ms * 10 / 1000)
    api = RawAPI(raw, batcher, max_tokens)
    ChatRequest, CompletionRequest = _request_models()

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(title="advisor raw model server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(APIError, lambda request, exc: _error(exc.status, exc.message, exc.param))
    app.add_exception_handler(StarletteHTTPException, lambda request, exc: _error(exc.status_code, str(exc.detail)))
    app.add_exception_handler(Exception, lambda request, exc: _error(500, "internal error; see the server log"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        err = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        return _error(400, f"{loc}: {err.get('msg', 'invalid value')}" if loc else "invalid request", loc or None)

    def check_auth(request: Request) -> None:
        if api_key and not hmac.compare_digest(
            request.headers.get("authorization", "").encode(), f"Bearer {api_key}".encode()
        ):
            raise APIError(401, "missing or wrong API key (send Authorization: Bearer KEY)")

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": raw.names}

    @app.get("/v1/models", dependencies=[Depends(check_auth)])
    async def models():
        return {
            "object": "list",
            "data": [
                {
                    "id": n,
                    "object": "model",
                    "created": 0,
                    "owned_by": "advisor",
                    "parent": None if n == raw.name else raw.name,
                }
                for n in raw.names
            ],
        }

    @app.post("/v1/chat/completions", dependencies=[Depends(check_auth)])
    async def chat(req: ChatRequest):
        return await api.chat(req)

    @app.post("/v1/completions", dependencies=[Depends(check_auth)])
    async def completions(req: CompletionRequest):
        return await api.completions(req)

    return app


def usage(prompt_tokens: int, new_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": new_tokens, "total_tokens": prompt_tokens + new_tokens}


async def _none():
    return None


def serve_raw(
    spec: str,
    adapters: dict[str, Path],
    host: str = "127.0.0.1",
    port: int = 8001,
    quantization: str = "none",
    name: str | None = None,
    api_key: str | None = None,
    max_batch: int = 32,
    matmul_dtype: str = "float32",
) -> None:
    """Load the model and adapters, then serve until interrupted. `matmul_dtype`: the 4-bit layers' products on
    CPU (model.cpu_matmul_dtype's values; float32 by default)."""
    import sys

    import uvicorn

    raw = RawModel(spec, quantization, adapters, name, matmul_dtype)
    app = create_raw_app(raw, max_batch=max_batch, api_key=api_key)
    from advisor.core.models import products_words

    how = products_words(raw.lm.matmul_dtype)
    print(
        f"serving {', '.join(raw.names)} at http://{host}:{port}/v1 (OpenAI-compatible, greedy{how})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5)
