"""advisor serve: the chosen pipeline of a run behind an OpenAI-compatible HTTP API."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a run's arm behind an OpenAI-compatible API with sources",
        description="Serve one arm of a run directory: POST /v1/chat/completions and GET /v1/models "
        "(OpenAI-compatible; the model name is the arm; answers carry an extra 'sources' field), POST /v1/query "
        "(answer + sources with chunk text), GET /healthz. Concurrent requests are micro-batched into one "
        "generation call. Binds to loopback unless --host says otherwise.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  advisor serve runs/sample-smollm2-135m-instruct-1a2b3c4d\n"
        "  advisor serve RUN_DIR --arm rag --port 8080 --api-key s3cret\n"
        '  curl -s localhost:8000/v1/query -d \'{"question": "What is the late-payment fee?"}\'\n'
        "  advisor serve RUN_DIR --arm rag --backend openai --base-url http://127.0.0.1:8001/v1   # generate there\n"
        "  advisor serve --raw smollm2-135m-instruct --adapter RUN=RUN_DIR/adapter --port 8001   # a bare model server",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", nargs="?", help="a run directory made by advisor run")
    p.add_argument(
        "--raw",
        metavar="MODEL",
        help="instead of a run's arm, serve the bare model MODEL (spec) with "
        "OpenAI chat completions and completions (logprobs, echo): a local engine for --backend openai",
    )
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="with --raw: also serve this LoRA adapter under NAME (repeatable)",
    )
    p.add_argument("--served-name", metavar="NAME", help="with --raw: the base model's served name (default: MODEL)")
    p.add_argument(
        "--quantization",
        default="nf4",
        choices=["nf4", "int8", "none"],
        help="with --raw: how the weights are loaded (default: nf4, as runs are)",
    )
    p.add_argument(
        "--cpu-matmul-dtype",
        choices=["float32", "bfloat16", "auto"],
        help="with --raw on a CPU: the 4-bit layers' products (default: float32, bitsandbytes' own; match a run's "
        "model.cpu_matmul_dtype, auto on a CPU with AVX512-BF16 is bfloat16, to get its in-process answers)",
    )
    from advisor.commands.eval import add_backend_args

    add_backend_args(p)
    p.add_argument("--arm", default="auto", help="auto (the run's recommended arm), base, rag, tuned or tuned_rag")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--api-key",
        default=os.environ.get("ADVISOR_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1/* (default: $ADVISOR_API_KEY, else none)",
    )
    p.add_argument("--max-batch", type=int, default=32, help="requests per generation call; 1 turns micro-batching off")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=50.0,
        help="an open batch closes when no request has arrived for this long (default: 50)",
    )
    p.add_argument("--max-delay-ms", type=float, default=500.0, help="... or this long after it opened (default: 500)")
    p.add_argument("--max-tokens", type=int, default=256, help="largest max_tokens a request may ask for")
    p.add_argument("--max-prompt-tokens", type=int, default=512, help="largest question, in tokens")
    p.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="largest request body")
    p.add_argument("--timeout-s", type=float, default=120.0, help="a request waiting longer gets 504")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from advisor.core.config import load_run_config
    from advisor.core.errors import AdvisorError
    from advisor.ports import bind_port
    from advisor.serve import Limits, resolve_arm, serve

    if args.max_batch < 1 or args.max_tokens < 1 or args.max_prompt_tokens < 1 or args.timeout_s <= 0:
        raise AdvisorError("--max-batch, --max-tokens, --max-prompt-tokens and --timeout-s must be positive")
    if args.max_body_bytes < 1:
        raise AdvisorError("--max-body-bytes must be positive")
    if args.max_wait_ms < 0 or args.max_delay_ms < 0:
        raise AdvisorError("--max-wait-ms and --max-delay-ms must not be negative")
    if args.raw:
        from advisor.raw_server import parse_adapters, serve_raw

        if args.run_dir is not None:
            raise AdvisorError("pass either RUN_DIR or --raw MODEL, not both")
        serve_raw(
            args.raw,
            parse_adapters(args.adapter),
            args.host,
            args.port,
            args.quantization,
            args.served_name,
            args.api_key,
            args.max_batch,
            args.cpu_matmul_dtype or "float32",
        )
        return 0
    if args.run_dir is None:
        raise AdvisorError("pass a run directory (advisor serve RUN_DIR) or a model (advisor serve --raw MODEL)")
    if args.adapter:
        raise AdvisorError("--adapter goes with --raw MODEL; a run's own adapter is served with --arm tuned")
    if args.cpu_matmul_dtype:
        raise AdvisorError(
            "--cpu-matmul-dtype goes with --raw MODEL; a run's arm multiplies as its run did (model.cpu_matmul_dtype)"
        )
    limits = Limits(
        max_body_bytes=args.max_body_bytes,
        max_prompt_tokens=args.max_prompt_tokens,
        max_tokens=args.max_tokens,
        timeout_s=args.timeout_s,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_delay_ms=args.max_delay_ms,
    )
    from advisor.commands.eval import backend_overrides

    resolve_arm(args.run_dir, args.arm)  # the run and the arm's artifacts, before the port and the model
    load_run_config(args.run_dir)
    # Claim the port before loading the model: a busy port fails in a second, and nobody can take it meanwhile.
    sock = bind_port(args.host, args.port)
    try:
        serve(args.run_dir, args.arm, args.host, args.port, args.api_key, limits, backend_overrides(args), sock=sock)
    finally:
        sock.close()
    return 0
