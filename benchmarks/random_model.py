"""A randomly initialised Llama-architecture causal LM with a real tokenizer, for timing the pipeline where no model
weights can be had (a GPU machine without network access): the accuracies of such a run mean nothing; the stages,
their time and memory are real (docs/fine-tuning-measured.md, 'On a GPU').

    python benchmarks/random_model.py OUT_DIR 0.5b [--tokenizer DIR]

Sizes: tiny (3M), 135m (SmolLM2-135M's shape), 0.5b (0.56B: hidden 1,280, 28 layers). The tokenizer (and chat
template) comes from --tokenizer, a model folder, else from the bundled SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {  # hidden, layers, intermediate, attention heads, key/value heads
    "tiny": (64, 2, 128, 4, 2),
    "135m": (576, 30, 1536, 9, 3),
    "0.5b": (1280, 28, 3584, 20, 5),
}


def build(out: Path, size: str, tokenizer: Path) -> int:
    """Write the model (bf16 safetensors) and the tokenizer's files into `out`; returns the parameter count."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hidden, layers, inter, heads, kv = SIZES[size]
    tok = AutoTokenizer.from_pretrained(tokenizer)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=hidden // heads,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    for name in ("chat_template.jinja", "generation_config.json"):
        if (tokenizer / name).exists():
            shutil.copy(tokenizer / name, out / name)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("size", choices=sorted(SIZES))
    ap.add_argument("--tokenizer", type=Path, help="a model folder whose tokenizer to use (default: bundled SmolLM2)")
    args = ap.parse_args(argv)
    tokenizer = args.tokenizer
    if tokenizer is None:
        from advisor.core.models import resolve_model

        tokenizer = Path(resolve_model("smollm2-135m-instruct", "causal").path)
    n = build(args.out, args.size, tokenizer)
    print(f"{args.size}: {n / 1e6:.1f}M parameters -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
