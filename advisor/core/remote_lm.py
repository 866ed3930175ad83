"""Generation and scoring on an OpenAI-compatible server (`generation.backend: openai`), behind the same
methods as the in-process `LM`, so the arms, probes, judge, drill and server use either unchanged.

    lm = load_lm(cfg, adapter="runs/x/adapter", adapter_name="x")   # LM or RemoteLM, per cfg.generation
    with lm.adapter(False):                                          # the base arms send generation.model
        outs = lm.generate([render_prompt(lm.tokenizer, "Who chairs the board?")])

The prompt is built here by the same code as in process; a chat prompt goes to /chat/completions as its
messages (the server applies the model's chat template), a plain prompt to /completions as text. Greedy
(temperature 0), the same stop sequences and max tokens; `sample` sends one request per sample with a
temperature and a seed (vLLM and OpenAI honour `seed`; a server that ignores it gives unseeded samples). Log-likelihoods (probes, judge, perplexity) go to
/completions as token ids with `echo` and `logprobs` (the lm-evaluation-harness `local-completions` way),
so the scored tokens are exactly those scored in process. Answer confidence comes from chat `logprobs`.
A server that gives no log-probabilities gets one note per metric, and the metric is computed in process
when the model is available here, else left out (confidence) or refused with what to do (probes).

The model's tokenizer is loaded here (a few MB): prompts, token budgets and scored tokens need it.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator

from advisor.core.errors import AdvisorError
from advisor.core.lm import Generation, loglikelihood_rows, perplexities, perplexity_rows
from advisor.core.openai_client import EngineError, OpenAIClient, api_key_from_env

# Answers a server gives to a request option it does not support (echo, logprobs), as opposed to a wrong model.
UNSUPPORTED_STATUS = {400, 422, 501}


class NoLogprobs(Exception):
    """The server answered but without the token log-probabilities asked for."""


class RemoteLM:
    """`LM`'s interface over an OpenAI-compatible server: generate, loglikelihood, perplexity, adapter on/off."""

    def __init__(
        self,
        client: OpenAIClient,
        tokenizer,
        spec: str,
        model: str,
        adapter_model: str | None = None,
        local: Callable[[], object] | None = None,
    ):
        """`model` and `adapter_model` are the served names of the base model and of the adapter (None: no
        adapter); `local` loads the in-process LM (adapter included) for scoring the server cannot do, or is
        None when the model is not available here."""
        self.client = client
        self.tokenizer = tokenizer
        self.spec = spec
        self.model_name = model
        self.adapter_name = adapter_model
        self.device = "remote"
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        self.prefill_tokens = 0
        self._local_factory = local
        self._local = None
        self._adapter_on = True
        self._lock = threading.Lock()
        self.notes: list[str] = []  # one line per metric computed differently or not at all on this server
        self._chat_logprobs = True  # cleared once the server shows it gives none

    # ------------------------------------------------------------ the LM surface
    @property
    def has_adapter(self) -> bool:
        return self.adapter_name is not None

    @contextlib.contextmanager
    def adapter(self, enabled: bool) -> Iterator[None]:
        """Send the adapter's served name (on) or the base model's (off) inside the block."""
        before = self._adapter_on
        self._adapter_on = enabled
        try:
            yield
        finally:
            self._adapter_on = before

    @property
    def served_model(self) -> str:
        return self.adapter_name if (self._adapter_on and self.adapter_name) else self.model_name

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=not self.has_chat_template)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def check_served(self) -> None:
        """Fail early, with one line, when the server is unreachable or does not serve the names asked for."""
        try:
            served = self.client.models()
        except EngineError as e:
            if e.server_status in (404, 405):  # a server without GET /models: the first request will tell
                return
            raise
        for name, key in ((self.model_name, "generation.model"), (self.adapter_name, "generation.adapter_model")):
            if name is not None and name not in served:
                raise AdvisorError(
                    f"the server at {self.client.base_url} does not serve a model named '{name}' "
                    f"(it serves: {', '.join(served) or 'nothing'}); set {key} to the served name "
                    f"(vLLM: --served-model-name / --lora-modules NAME=PATH)"
                )

    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int = 32,
        batch_size: int = 16,
        stop: tuple[str, ...] = ("\n",),
        desc: str | None = None,
        min_new_tokens: int = 0,
        evict: bool = True,
    ) -> list[Generation]:
        """Greedy answers, in input order, up to `generation.concurrency` requests at once (the server batches
        them; `batch_size`, `min_new_tokens` and `evict` are in-process settings). latency_s is each request's
        own wall time."""
        from tqdm.auto import tqdm

        model, use_adapter = self.served_model, self._adapter_on
        bar = tqdm(total=len(prompts), desc=desc or "generate", unit="q", leave=False, disable=desc is None)

        def one(prompt: str) -> Generation:
            g = self._generate_one(prompt, model, max_new_tokens, stop)
            bar.update(1)
            return g

        out = self.client.map(one, prompts)
        bar.close()
        if any(g.confidence is None and g.token_logprobs is None for g in out):
            self._confidence_fallback(prompts, out, use_adapter)
        return out

    def sample(
        self,
        prompts: list[str],
        k: int,
        temperature: float,
        seed: int = 0,
        max_new_tokens: int = 16,
        batch_size: int = 16,
        stop: tuple[str, ...] = ("\n",),
        desc: str | None = None,
    ) -> list[list[Generation]]:
        """`k` answers per prompt sampled at `temperature`, in input order: one request per sample (servers that
        ignore `n` still give k answers), sample j of a prompt sent with seed `seed * 1000 + j`. A server that
        refuses to sample (advisor serve --raw decodes greedily only) gets one note, and the answers are sampled
        in process when the model is here, else the error says what to do."""
        from tqdm.auto import tqdm

        if k < 1 or temperature <= 0:
            raise ValueError(f"sample needs k >= 1 and temperature > 0 (got k={k}, temperature={temperature})")
        model, use_adapter = self.served_model, self._adapter_on
        bar = tqdm(total=len(prompts) * k, desc=desc or "sample", unit="answer", leave=False, disable=desc is None)

        def one(job: tuple[str, int]) -> Generation:
            g = self._generate_one(
                job[0], model, max_new_tokens, stop, temperature=temperature, seed=seed * 1000 + job[1]
            )
            bar.update(1)
            return g

        try:
            flat = self.client.map(one, [(p, j) for p in prompts for j in range(k)])
        except EngineError as e:
            bar.close()
            if e.server_status not in UNSUPPORTED_STATUS:
                raise
            why = f"refused a sampled answer at temperature {temperature} ({e})"
            if self._local_factory is None:
                raise AdvisorError(
                    f"sampled answers (eval.known_samples) are needed, but the server at "
                    f"{self.client.base_url} {why} and model.spec={self.spec} is not available here; "
                    "use a server that samples (vLLM does), generation.backend=hf, or turn the "
                    "known-facts split off: eval.known_samples=0"
                ) from None
            local = self._local_lm("sampled answers (eval.known_samples)", why)
            with local.adapter(use_adapter):
                return local.sample(prompts, k, temperature, seed, max_new_tokens, batch_size, stop, desc)
        bar.close()
        return [flat[i * k : (i + 1) * k] for i in range(len(prompts))]

    def _generate_one(
        self,
        prompt: str,
        model: str,
        max_new_tokens: int,
        stop: tuple[str, ...],
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        t0 = time.perf_counter()
        messages = getattr(prompt, "messages", None)
        # A sample (seeded) needs no log-probabilities; asking for none keeps a refusal of the temperature from
        # being taken for a refusal of logprobs.
        extra, want_lp = ({}, self._chat_logprobs) if seed is None else ({"seed": seed}, False)
        if messages is not None:
            try:
                resp = self.client.chat(
                    model,
                    messages,
                    max_tokens=max_new_tokens,
                    temperature=temperature,
                    stop=list(stop) or None,
                    logprobs=want_lp,
                    **extra,
                )
            except EngineError as e:
                if not (want_lp and e.server_status in UNSUPPORTED_STATUS):
                    raise
                self._chat_logprobs = False  # a server that refuses chat logprobs answers without them
                resp = self.client.chat(
                    model,
                    messages,
                    max_tokens=max_new_tokens,
                    temperature=temperature,
                    stop=list(stop) or None,
                    **extra,
                )
            choice = _first_choice(resp, self.client.base_url)
            text = (choice.get("message") or {}).get("content") or ""
            content = (
                (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
            )
            lps = [float(t["logprob"]) for t in content] if content else None
        else:
            resp = self.client.complete(
                model,
                str(prompt),
                max_tokens=max_new_tokens,
                temperature=temperature,
                stop=list(stop) or None,
                logprobs=None if extra else 1,
                **extra,
            )
            choice = _first_choice(resp, self.client.base_url)
            text = choice.get("text") or ""
            raw = (
                (choice.get("logprobs") or {}).get("token_logprobs")
                if isinstance(choice.get("logprobs"), dict)
                else None
            )
            lps = [float(v) for v in raw if v is not None] if raw else None
        for s in stop:  # servers cut at the stop string; text after one (if any slipped through) is cut here too
            text = text.split(s, 1)[0] if s in text else text
        usage = resp.get("usage") or {}
        n_new = int(usage.get("completion_tokens") or (len(lps) if lps else self.count_tokens(text)))
        n_prompt = int(usage.get("prompt_tokens") or len(self.encode(str(prompt))))
        conf = math.exp(sum(lps) / len(lps)) if lps else None
        return Generation(text.strip(), n_prompt, n_new, time.perf_counter() - t0, conf, lps)

    # ------------------------------------------------------------ scoring
    def loglikelihood(
        self, requests: list[tuple[str, str]], batch_size: int = 16, desc: str | None = None
    ) -> list[float]:
        """Summed log-probability of each continuation after its context, tokenized here as in process."""
        rows = loglikelihood_rows(self.encode, requests)
        try:
            return self._score_rows(rows, desc)
        except NoLogprobs as e:
            local = self._local_lm("log-likelihood scoring (forgetting probes, judge)", str(e))
            with local.adapter(self._adapter_on):
                return local.loglikelihood(requests, batch_size=batch_size, desc=desc)

    def perplexity(
        self, texts: list[str], max_tokens: int = 256, batch_size: int = 8, desc: str | None = None
    ) -> list[float]:
        rows = perplexity_rows(self.tokenizer, texts, max_tokens)
        try:
            return perplexities(self._score_rows(rows, desc), rows)
        except NoLogprobs as e:
            local = self._local_lm("perplexity", str(e))
            with local.adapter(self._adapter_on):
                return local.perplexity(texts, max_tokens, batch_size, desc)

    def _score_rows(self, rows: list[tuple[list[int], int]], desc: str | None) -> list[float]:
        """Sum of the server's log-probabilities of the last n tokens of each (ids, n) row: one completions
        request per row with the token ids as prompt, echo and logprobs (max_tokens 1: some servers refuse 0)."""
        model = self.served_model

        def one(row: tuple[list[int], int]) -> float:
            ids, n = row
            if n <= 0:
                return 0.0
            try:
                resp = self.client.complete(model, ids, max_tokens=1, logprobs=1, echo=True)
            except EngineError as e:
                if e.server_status in UNSUPPORTED_STATUS:
                    raise NoLogprobs(f"it refused completions with echo and logprobs ({e})") from None
                raise
            lp = (_first_choice(resp, self.client.base_url).get("logprobs") or {}).get("token_logprobs")
            if not lp or len(lp) < len(ids) or any(v is None for v in lp[len(ids) - n : len(ids)]):
                raise NoLogprobs("its completions answer carries no log-probabilities of the prompt tokens (echo)")
            return float(sum(lp[len(ids) - n : len(ids)]))

        return self.client.map(one, rows)

    def _confidence_fallback(self, prompts: list[str], gens: list[Generation], use_adapter: bool) -> None:
        """Without token log-probabilities from the server: confidence from the in-process model when it is
        here (the answer text's tokens after the prompt, end token excluded), else none (the
        wrong-and-confident rate is then left out for these answers)."""
        self._chat_logprobs = False
        why = f"the server at {self.client.base_url} returns no token log-probabilities with its answers"
        if self._local_factory is None:
            self.note(
                f"wrong_and_confident_rate: {why} and model.spec={self.spec} is not available here; "
                f"left out (use a server that returns logprobs, e.g. vLLM)"
            )
            return
        local = self._local_lm("answer confidence (wrong_and_confident_rate)", why)
        rows = [
            (
                local.encode(str(p)) + local.tokenizer(g.text, add_special_tokens=False)["input_ids"],
                local.count_tokens(g.text),
            )
            for p, g in zip(prompts, gens)
        ]
        with local.adapter(use_adapter):
            sums = local._score_tail(rows, 16, None)
        for g, s, (_, n) in zip(gens, sums, rows):
            g.confidence = math.exp(s / n) if n else None

    def _local_lm(self, what: str, why: str):
        if self._local_factory is None:
            raise AdvisorError(
                f"{what} needs token log-probabilities, but the server at {self.client.base_url}: "
                f"{why}; and model.spec={self.spec} is not available here to score in process; use a "
                f"server that supports them (vLLM does), or turn the probes off: eval.probes=[] "
                f"eval.perplexity_texts=0"
            )
        self.note(
            f"{what}: the server at {self.client.base_url}: {why}; computed in process with model.spec={self.spec}"
        )
        with self._lock:
            if self._local is None:
                self._local = self._local_factory()
        return self._local

    def note(self, line: str) -> None:
        """Record (and print once) how a metric was computed on this server."""
        if line not in self.notes:
            self.notes.append(line)
            print(f"  note: {line}", file=sys.stderr, flush=True)


def _first_choice(resp: dict, url: str) -> dict:
    try:
        choice = resp["choices"][0]
    except (KeyError, IndexError, TypeError):
        raise EngineError(
            f"the generation server at {url} answered without choices; is it OpenAI-compatible?"
        ) from None
    return choice if isinstance(choice, dict) else {}


def model_is_local(spec: str) -> bool:
    """True when the weights of `spec` are on this machine (bundled, a folder, or in the Hugging Face cache)."""
    from advisor.core.models import resolve_model

    try:
        r = resolve_model(spec, "causal")
    except AdvisorError:
        return False
    if r.origin != "hub":
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(spec, "config.json"), str)
    except Exception:  # noqa: BLE001 - no cache, no local model
        return False


def check_generation_server(cfg, adapter: str | None = None) -> None:
    """Fail early, before any model or index loads, when generation.backend=openai and the server is unreachable
    or does not serve the base model (and the adapter, when `adapter` is given) under the configured names."""
    if cfg.generation.backend != "openai":
        return
    g = cfg.generation
    client = OpenAIClient(g.base_url, api_key_from_env(g.api_key_env), g.timeout_s, g.max_retries, g.backoff_s, 1)
    try:
        RemoteLM(client, None, cfg.model.spec, g.model or cfg.model.spec, _adapter_name(cfg, adapter)).check_served()
    finally:
        client.close()


def _adapter_name(cfg, adapter: str | None) -> str | None:
    from pathlib import Path

    if not adapter:
        return None
    return cfg.generation.adapter_model or Path(adapter).resolve().parent.name


def load_lm(cfg, adapter: str | None = None, adapter_name: str | None = None):
    """The LM for `cfg.generation.backend`: in process (`LM.load`), or a RemoteLM on the configured server whose
    tuned arms send `adapter_name` (default generation.adapter_model, else the adapter's run folder name)."""
    from advisor.core.lm import LM

    g = cfg.generation
    if g.backend == "hf":
        return LM.load(cfg.model.spec, cfg.model.quantization, adapter=adapter, matmul_dtype=cfg.model.cpu_matmul_dtype)
    from advisor.core.models import causal_tokenizer

    tok = causal_tokenizer(cfg.model.spec)
    client = OpenAIClient(
        g.base_url, api_key_from_env(g.api_key_env), g.timeout_s, g.max_retries, g.backoff_s, g.concurrency
    )
    name = adapter_name or _adapter_name(cfg, adapter) if adapter else None
    local = None
    if model_is_local(cfg.model.spec):

        def local():
            return LM.load(
                cfg.model.spec, cfg.model.quantization, adapter=adapter, matmul_dtype=cfg.model.cpu_matmul_dtype
            )

    lm = RemoteLM(client, tok, cfg.model.spec, g.model or cfg.model.spec, name, local)
    lm.check_served()
    return lm
