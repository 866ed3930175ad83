"""The real server on a free port, talked to with httpx and the official openai client.
The served run is tiny: a random 2-layer Llama, a hashing-embedder FAISS index, a random LoRA adapter."""

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from advisor.core.artifacts import atomic_write_json, write_jsonl
from advisor.core.config import RetrievalConfig, dump_config, load_config
from advisor.core.corpus import chunk_documents, read_corpus, whitespace_offsets
from retrieval.index import build_index

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def served_run(tmp_path_factory, tiny_model_dir) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("served-run")
    cfg = load_config(
        "smoke",
        [
            f"model.spec={tiny_model_dir}",
            "model.quantization=none",
            "model.max_new_tokens=4",
            "retrieval.embedder=hashing",
            "retrieval.context_tokens=200",
        ],
    )
    (run / "config.yaml").write_text(dump_config(cfg))
    docs, _ = read_corpus(DATA / "corpus")
    write_jsonl(run / "chunks.jsonl", (c.to_dict() for c in chunk_documents(docs, whitespace_offsets, 40, 8)))
    build_index(run / "chunks.jsonl", run / "index", RetrievalConfig(embedder="hashing", hybrid=False), progress=False)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
    )
    model.save_pretrained(run / "adapter")
    atomic_write_json(
        run / "recommendation.json", {"verdict": "rag", "utilities": {}, "reasons": [], "sensitivity": {}}
    )
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, run: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advisor", "serve", str(run), "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("server did not start within 120 s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server(served_run):
    s = Server(served_run)  # --arm auto: the run's recommendation says rag
    yield s
    s.stop()


@pytest.fixture(scope="module")
def auth_server(served_run):
    s = Server(served_run, "--arm", "tuned", "--api-key", "s3cret")
    yield s
    s.stop()


def test_models_and_chat_with_the_official_openai_client(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list().data] == ["rag"]
    resp = client.chat.completions.create(
        model="rag",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "How many bicycles can one Ormsby ferry crossing carry?"},
        ],
        max_tokens=3,
    )
    assert resp.model == "rag" and resp.choices[0].message.role == "assistant"
    assert isinstance(resp.choices[0].message.content, str) and resp.choices[0].finish_reason in ("stop", "length")
    sources = resp.model_dump()["sources"]
    assert sources and sources[0]["source"] == "bicycle-policy.md" and sources[0]["text"]
    assert resp.usage.prompt_tokens > 0


def test_streaming_chat(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    chunks = list(
        client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "Who handles Ormsby complaints?"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].model_dump()["sources"][0]["source"] == "complaints.md"


def test_query_returns_answer_and_sources_with_chunk_text(server):
    r = httpx.post(
        server.url + "/v1/query",
        json={"question": "Who is the senior captain of the Ormsby Ferry Company?"},
        timeout=60,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["arm"] == "rag" and isinstance(body["answer"], str) and body["latency_s"] > 0
    assert body["sources"][0]["source"] == "captain.md" and "Rhona Bellweather" in body["sources"][0]["text"]


def test_auth_on(auth_server):
    from openai import AuthenticationError, OpenAI

    url = auth_server.url
    assert httpx.get(url + "/healthz").status_code == 200  # liveness needs no key
    assert httpx.get(url + "/v1/models").status_code == 401
    r = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    good = OpenAI(base_url=url + "/v1", api_key="s3cret")
    assert [m.id for m in good.models.list().data] == ["tuned"]
    resp = good.chat.completions.create(model="tuned", messages=[{"role": "user", "content": "When is the drill?"}])
    assert resp.model_dump()["sources"] == []  # closed book: no retrieval
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=url + "/v1", api_key="nope").models.list()


BAD_INPUTS = [  # also run against a server generating on an OpenAI-compatible engine (test_openai_backend.py)
    (b"{not json", 400, "not valid JSON"),
    ({"model": "rag"}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "role"),
    ({"messages": [{"role": "user", "content": "   "}]}, 400, "empty"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, 400, "last message"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}, 400, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens"),
    ({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}, 404, "not served"),
    ({"messages": [{"role": "user", "content": "word " * 2000}]}, 400, "tokens"),
    ({"messages": [{"role": "user", "content": "x" * (1 << 20)}]}, 413, "body"),
]


@pytest.mark.parametrize("payload, status, needle", BAD_INPUTS)
def test_bad_input_gets_the_right_4xx_and_the_server_keeps_serving(server, payload, status, needle):
    kw = (
        {"content": payload, "headers": {"content-type": "application/json"}}
        if isinstance(payload, bytes)
        else {"json": payload}
    )
    r = httpx.post(server.url + "/v1/chat/completions", timeout=60, **kw)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle.lower() in err["message"].lower() and "Traceback" not in r.text
    assert httpx.post(server.url + "/v1/query", json={"question": "When is the drill?"}, timeout=60).status_code == 200


def test_query_rejects_unknown_fields(server):
    r = httpx.post(server.url + "/v1/query", json={"q": "typo"}, timeout=30)
    assert r.status_code == 400 and "question" in r.json()["error"]["message"]


def test_200_concurrent_requests_no_5xx_and_they_are_micro_batched(server):
    before = httpx.get(server.url + "/healthz").json()

    async def load():
        async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=200)) as c:
            qs = [json.loads(line)["question"] for line in (DATA / "qa.jsonl").read_text().splitlines()]
            reqs = [c.post(server.url + "/v1/query", json={"question": qs[i % len(qs)]}) for i in range(200)]
            return await asyncio.gather(*reqs)

    responses = asyncio.run(load())
    assert [r.status_code for r in responses].count(200) == 200
    assert all("answer" in r.json() and r.json()["sources"] for r in responses)
    after = httpx.get(server.url + "/healthz").json()
    n_req, n_batches = after["requests"] - before["requests"], after["batches"] - before["batches"]
    assert n_req == 200 and n_batches < 200 / 4, (n_req, n_batches)


def _start_error(*args):
    r = subprocess.run(
        [sys.executable, "-m", "advisor", "serve", *args, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("advisor: error:"), r.stderr
    return lines[0]


def test_start_up_errors_exit_2_with_one_line(served_run, tmp_path):
    assert "unknown arm 'ragg'" in _start_error(str(served_run), "--arm", "ragg")
    assert "not a run directory" in _start_error(str(tmp_path))
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.yaml").write_text((served_run / "config.yaml").read_text())
    assert "needs the adapter" in _start_error(str(partial), "--arm", "tuned")
    assert "needs the FAISS index" in _start_error(str(partial), "--arm", "rag")
    assert "no recommendation.json" in _start_error(str(partial))


def _batch_sizes(max_wait_s: float, max_delay_s: float, gaps: list[float]) -> list[int]:
    """Submit one request after each gap (seconds) to a MicroBatcher; the sizes of the batches it formed."""
    from advisor.serve import MicroBatcher

    sizes: list[int] = []

    def fn(questions, max_tokens):
        sizes.append(len(questions))
        return questions

    async def go():
        batcher = MicroBatcher(fn, 32, max_wait_s, max_delay_s=max_delay_s)
        task = asyncio.create_task(batcher.run())
        waiting = []
        for i, gap in enumerate(gaps):
            await asyncio.sleep(gap)
            waiting.append(asyncio.create_task(batcher.submit(f"q{i}", 8)))
        assert await asyncio.gather(*waiting) == [f"q{i}" for i in range(len(gaps))]
        task.cancel()

    asyncio.run(go())
    return sizes


def test_a_batch_stays_open_while_requests_keep_coming_until_its_delay_bound():
    # Five requests 0.1 s apart span 0.4 s, longer than the 0.3 s quiet gap: one batch, not two.
    assert _batch_sizes(0.3, 5.0, [0, 0.1, 0.1, 0.1, 0.1]) == [5]
    # A pause longer than the quiet gap closes the batch.
    assert _batch_sizes(0.3, 5.0, [0, 0.1, 1.0, 0.1]) == [2, 2]
    # A steady stream is cut at the delay bound (0.45 s after the batch opened).
    sizes = _batch_sizes(0.3, 0.45, [0] + [0.1] * 11)
    assert sum(sizes) == 12 and len(sizes) >= 2 and max(sizes) <= 7, sizes


def test_the_served_retrieval_arm_abstains_below_the_runs_gate_as_the_evaluated_one_did(served_run, tmp_path):
    import shutil

    from advisor.core.answer import ABSTAIN
    from retrieval.index import Retriever

    run = tmp_path / "gated-run"
    shutil.copytree(served_run, run)
    near, far = "Who is the senior captain of the Ormsby Ferry Company?", "Quokka zeppelin marmalade xylophone?"
    cos_near, cos_far = Retriever(run / "index").gate_signals([near, far])[:, 0]
    assert cos_far < cos_near
    atomic_write_json(run / "eval" / "gate.json", {"share": 0.05, "threshold": float(cos_near + cos_far) / 2})
    s = Server(run)
    try:
        gated = httpx.post(s.url + "/v1/query", json={"question": far}, timeout=60).json()
        answered = httpx.post(s.url + "/v1/query", json={"question": near}, timeout=60).json()
    finally:
        s.stop()
    assert gated["answer"] == ABSTAIN and gated["gated"] is True and gated["sources"]  # its sources still shown
    assert answered["gated"] is False and answered["sources"][0]["source"] == "captain.md"
