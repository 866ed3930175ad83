"""generation.backend=openai against a real local OpenAI-compatible server (`advisor serve --raw` on the tiny
random Llama with the run's LoRA adapter): the arms give the in-process answers, log-likelihoods match, the run
server generates there and survives the engine going away, and bad settings fail with one line."""

import json
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from test_serve import BAD_INPUTS, Server, free_port, served_run  # noqa: F401 - served_run is a fixture

from advisor.cli import main as advisor_main
from advisor.core.config import GenerationConfig, load_run_config

DATA = Path(__file__).parent / "data"
ADAPTER_NAME = "tiny-run"


class RawServer:
    """`advisor serve --raw MODEL --adapter tiny-run=RUN/adapter` on a port (fixed, so it can come back)."""

    def __init__(self, model: Path, adapter: Path, port: int | None = None, *args: str):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [
            sys.executable,
            "-m",
            "advisor",
            "serve",
            "--raw",
            str(model),
            "--quantization",
            "none",
            "--adapter",
            f"{ADAPTER_NAME}={adapter}",
            "--port",
            str(self.port),
            *args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"raw server exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("raw server did not start within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def raw(tiny_model_dir, served_run):
    s = RawServer(tiny_model_dir, served_run / "adapter")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def eval_run(served_run, tmp_path_factory) -> Path:
    """The served run with a QA set and no probes: what `advisor eval` needs."""
    run = tmp_path_factory.mktemp("eval-run") / "run"
    shutil.copytree(served_run, run)
    (run / "recommendation.json").unlink()  # the serving tests' stub; eval writes a report from real advice
    cfg = load_run_config(run)
    cfg.corpus.path, cfg.corpus.qa = str(DATA / "corpus"), str(DATA / "qa.jsonl")
    cfg.eval.limit, cfg.eval.probes, cfg.eval.perplexity_texts, cfg.eval.embedder = 0, [], 0, "none"
    from advisor.core.config import dump_config

    (run / "config.yaml").write_text(dump_config(cfg))
    return run


def remote_cfg(run: Path, url: str, **gen):
    cfg = load_run_config(run)
    cfg.generation = GenerationConfig(backend="openai", base_url=url, adapter_model=ADAPTER_NAME, **gen)
    return cfg


def answers(run: Path, arm: str) -> list[str]:
    return [json.loads(line)["answer"] for line in (run / "eval" / f"{arm}.jsonl").read_text().splitlines()]


def test_eval_on_the_raw_server_gives_the_in_process_answers_for_base_and_tuned(eval_run, raw, capsys):
    assert advisor_main(["eval", str(eval_run), "--arms", "base", "tuned"]) == 0
    local = {a: answers(eval_run, a) for a in ("base", "tuned")}
    conf_local = [json.loads(x)["confidence"] for x in (eval_run / "eval" / "base.jsonl").read_text().splitlines()]
    assert (
        advisor_main(
            [
                "eval",
                str(eval_run),
                "--arms",
                "base",
                "tuned",
                "--backend",
                "openai",
                "--base-url",
                raw.url,
                "--served-adapter",
                ADAPTER_NAME,
            ]
        )
        == 0
    )
    for arm in ("base", "tuned"):
        remote = answers(eval_run, arm)
        same = sum(a == b for a, b in zip(local[arm], remote))
        assert len(remote) == 24 and same / len(remote) >= 0.95, (arm, local[arm], remote)
    assert local["base"] != local["tuned"]  # the tuned arm really sent the adapter's name
    conf_remote = [json.loads(x)["confidence"] for x in (eval_run / "eval" / "base.jsonl").read_text().splitlines()]
    assert all(abs(a - b) < 1e-3 for a, b in zip(conf_local, conf_remote))


def test_log_likelihoods_and_perplexity_through_completions_echo_equal_in_process(served_run, raw):
    from advisor.core.lm import LM
    from advisor.core.remote_lm import load_lm
    from evalsuite.probes import MCItem, mc_accuracy

    cfg = remote_cfg(served_run, raw.url)
    remote = load_lm(cfg, adapter=str(served_run / "adapter"))
    local = LM.load(cfg.model.spec, "none", adapter=str(served_run / "adapter"))
    items = [
        MCItem(str(i), f"Question: {json.loads(line)['question']}\nAnswer:", [" yes", " no", " 12 pounds"], 0)
        for i, line in enumerate((DATA / "qa.jsonl").read_text().splitlines()[:8])
    ]
    reqs = [(it.context, ch) for it in items for ch in it.choices]
    for adapter_on in (False, True):
        with remote.adapter(adapter_on), local.adapter(adapter_on):
            a, b = remote.loglikelihood(reqs), local.loglikelihood(reqs)
            assert max(abs(x - y) for x, y in zip(a, b)) < 1e-3
            assert mc_accuracy(items, a) == mc_accuracy(items, b)
            texts = ["The ferry leaves at dawn and returns at dusk.", "Bicycles ride free on Sundays."]
            pa, pb = remote.perplexity(texts), local.perplexity(texts)
            assert max(abs(x - y) / y for x, y in zip(pa, pb)) < 1e-4
    assert remote.notes == []


class StripLogprobs(BaseHTTPRequestHandler):
    """A proxy to the raw server that drops log-probabilities, as servers without them answer."""

    target = ""

    def log_message(self, *args):
        pass

    def _relay(self, body: bytes | None) -> None:
        r = httpx.request(
            self.command,
            self.target + self.path,
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        data = r.json()
        for ch in data.get("choices", []) if isinstance(data, dict) else []:
            ch["logprobs"] = None
        raw = json.dumps(data).encode()
        self.send_response(r.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._relay(None)

    def do_POST(self):
        self._relay(self.rfile.read(int(self.headers.get("Content-Length", 0))))


def test_a_server_without_logprobs_gets_a_note_per_metric_and_in_process_scores(served_run, raw, capsys):
    from advisor.core.answer import render_prompt
    from advisor.core.remote_lm import load_lm

    StripLogprobs.target = raw.url.rsplit("/v1", 1)[0]
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), StripLogprobs)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        lm = load_lm(remote_cfg(served_run, f"http://127.0.0.1:{proxy.server_address[1]}/v1"))
        lls = lm.loglikelihood([("Question: When is the drill?\nAnswer:", " noon")])
        gens = lm.generate([render_prompt(lm.tokenizer, "When is the drill?")], max_new_tokens=3)
    finally:
        proxy.shutdown()
    assert lls[0] < 0 and gens[0].confidence is not None
    err = capsys.readouterr().err
    assert "log-likelihood scoring" in err and "computed in process" in err
    assert "answer confidence (wrong_and_confident_rate)" in err
    assert len(lm.notes) == 2


def one_line_error(args: list[str], capsys) -> str:
    assert advisor_main(args) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("advisor: error:"), lines
    return lines[0]


def test_unreachable_url_and_wrong_served_name_fail_with_one_line_and_exit_2(eval_run, raw, capsys):
    port = free_port()
    line = one_line_error(
        [
            "eval",
            str(eval_run),
            "generation.max_retries=0",
            "--arms",
            "base",
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
        ],
        capsys,
    )
    assert f"127.0.0.1:{port}/v1/models" in line and "cannot reach" in line
    line = one_line_error(
        ["eval", str(eval_run), "--arms", "tuned", "--base-url", raw.url, "--served-adapter", "nope"], capsys
    )
    assert "does not serve a model named 'nope'" in line and ADAPTER_NAME in line and "generation.adapter_model" in line
    line = one_line_error(["eval", str(eval_run), "--backend", "openai"], capsys)
    assert "generation.base_url" in line


def test_run_server_on_the_engine_answers_the_openai_client_with_sources_and_bad_input_still_gets_4xx(served_run, raw):
    from openai import OpenAI

    srv = Server(
        served_run, "--arm", "rag", "--backend", "openai", "--base-url", raw.url, "--served-adapter", ADAPTER_NAME
    )
    try:
        client = OpenAI(base_url=srv.url + "/v1", api_key="unused")
        resp = client.chat.completions.create(
            model="rag",
            messages=[{"role": "user", "content": "How many bicycles can one Ormsby ferry crossing carry?"}],
            max_tokens=3,
        )
        assert resp.model_dump()["sources"][0]["source"] == "bicycle-policy.md"
        assert isinstance(resp.choices[0].message.content, str) and resp.usage.prompt_tokens > 0
        for payload, status, needle in BAD_INPUTS:
            kw = (
                {"content": payload, "headers": {"content-type": "application/json"}}
                if isinstance(payload, bytes)
                else {"json": payload}
            )
            r = httpx.post(srv.url + "/v1/chat/completions", timeout=60, **kw)
            assert r.status_code == status and needle.lower() in r.json()["error"]["message"].lower(), r.text
    finally:
        srv.stop()


@pytest.mark.slow
def test_run_server_gives_503_json_while_the_engine_is_down_and_recovers_when_it_returns(served_run, tiny_model_dir):
    engine = RawServer(tiny_model_dir, served_run / "adapter")
    srv = Server(
        served_run, "--arm", "rag", "--backend", "openai", "--base-url", engine.url, "--served-adapter", ADAPTER_NAME
    )
    try:
        ask = {"json": {"question": "When is the drill?"}, "timeout": 60}
        assert httpx.post(srv.url + "/v1/query", **ask).status_code == 200
        port = engine.port
        engine.stop()
        for _ in range(2):  # every request while it is down, not just the first
            t0 = time.perf_counter()
            r = httpx.post(srv.url + "/v1/query", **ask)
            assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable"
            assert time.perf_counter() - t0 < 15 and "127.0.0.1" not in r.text  # no hang; the engine URL stays inside
        engine = RawServer(tiny_model_dir, served_run / "adapter", port)
        r = httpx.post(srv.url + "/v1/query", **ask)
        assert r.status_code == 200 and r.json()["sources"]
    finally:
        srv.stop()
        engine.stop()


def test_the_raw_server_refuses_what_it_cannot_do_with_openai_style_errors(raw):
    from openai import BadRequestError, NotFoundError, OpenAI

    client = OpenAI(base_url=raw.url, api_key="unused")
    assert [m.id for m in client.models.list().data][1:] == [ADAPTER_NAME]
    with pytest.raises(NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-9", prompt="hi", max_tokens=2)
    with pytest.raises(BadRequestError, match="greedily"):
        client.completions.create(model=ADAPTER_NAME, prompt="hi", max_tokens=2, temperature=0.7)
    out = client.completions.create(model=ADAPTER_NAME, prompt=[5, 6, 7], max_tokens=1, echo=True, logprobs=1)
    lp = out.choices[0].logprobs.token_logprobs
    assert lp[0] is None and all(v < 0 for v in lp[1:3])


@pytest.mark.slow
def test_arc_easy_by_log_likelihood_through_completions_equals_in_process_on_the_bundled_model(tmp_path):
    """50 ARC-Easy items, SmolLM2-135M (NF4), scored by the raw server (completions, echo, logprobs) and in process."""
    from advisor.core.config import load_config
    from advisor.core.lm import LM
    from advisor.core.remote_lm import load_lm
    from evalsuite.probes import load_probe, mc_accuracy

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "advisor", "serve", "--raw", "smollm2-135m-instruct", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-2000:] if proc.poll() else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        cfg = load_config(None, ["generation.backend=openai", f"generation.base_url=http://127.0.0.1:{port}/v1"])
        items = load_probe("arc_easy", 50)
        reqs = [(it.context, ch) for it in items for ch in it.choices]
        remote = load_lm(cfg).loglikelihood(reqs)
        local = LM.load("smollm2-135m-instruct", "nf4").loglikelihood(reqs)
    finally:
        proc.terminate()
        proc.wait(30)

    def choices(lls: list[float]) -> list[int]:
        out, k = [], 0
        for it in items:
            ll = lls[k : k + len(it.choices)]
            k += len(it.choices)
            out.append(max(range(len(ll)), key=ll.__getitem__))
        return out

    diff = max(abs(a - b) for a, b in zip(remote, local))
    print(
        f"ARC-Easy x50: {len(reqs)} continuations, largest |remote - local| = {diff:.2e}; "
        f"accuracy {mc_accuracy(items, local)['acc'].count(1.0)}/50"
    )
    assert choices(remote) == choices(local) and mc_accuracy(items, remote) == mc_accuracy(items, local)
    assert diff < 1e-3


class _SamplingServer:
    """A stand-in OpenAIClient that records what each completions request asked for; `refuse` answers 400 as a
    greedy-only server does."""

    base_url = "http://127.0.0.1:9/v1"

    def __init__(self, refuse: bool = False):
        self.refuse, self.requests = refuse, []

    def complete(self, model, prompt, **kw):
        from advisor.core.openai_client import EngineError

        self.requests.append(kw)
        if self.refuse:
            raise EngineError("HTTP 400: this server decodes greedily only", server_status=400)
        return {
            "choices": [{"text": f"{prompt}-{kw['seed']}\nnext line"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }

    def map(self, fn, items):
        return [fn(x) for x in items]


def test_remote_sampling_sends_temperature_and_a_seed_per_sample_and_a_refusal_says_what_to_do():
    from advisor.core.errors import AdvisorError
    from advisor.core.remote_lm import RemoteLM

    server = _SamplingServer()
    out = RemoteLM(server, None, "spec", "base").sample(["a", "b"], 3, 0.7, seed=2, max_new_tokens=16)
    assert [[g.text for g in r] for r in out] == [["a-2000", "a-2001", "a-2002"], ["b-2000", "b-2001", "b-2002"]]
    assert all(r["temperature"] == 0.7 and r["max_tokens"] == 16 and r["logprobs"] is None for r in server.requests)
    with pytest.raises(AdvisorError, match=r"refused a sampled answer.*not available here.*eval\.known_samples=0"):
        RemoteLM(_SamplingServer(refuse=True), None, "spec", "base").sample(["a"], 2, 0.7)


def test_the_raw_server_multiplies_in_float32_unless_asked_and_then_as_a_run_would(monkeypatch):
    """`advisor serve --raw --cpu-matmul-dtype bfloat16` scores as a run's in-process model with bfloat16
    products does (the same log-probabilities); without the flag it scores as bitsandbytes' float32 kernels."""
    from advisor.core.lm import LM
    from advisor.raw_server import RawModel

    ids = LM.load("smollm2-135m-instruct", "nf4").tokenizer("The drill starts at the north gate at nine.")["input_ids"]
    got = {}
    for dtype in ("float32", "bfloat16"):
        raw = RawModel("smollm2-135m-instruct", "nf4", {}, matmul_dtype=dtype)
        assert raw.lm.matmul_dtype == dtype
        got[dtype] = raw.run([("score", raw.name, ids)])[0]
        local = LM.load("smollm2-135m-instruct", "nf4", matmul_dtype=dtype).token_logprobs([ids])[0]
        assert got[dtype] == pytest.approx(local, abs=1e-5)
    assert got["float32"] != pytest.approx(got["bfloat16"], abs=1e-5)  # the flag is not a no-op
