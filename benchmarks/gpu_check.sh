#!/usr/bin/env bash
# The CUDA path end to end on random-weight models (docs/fine-tuning-measured.md, 'On a GPU'): for each size, a
# model built by benchmarks/random_model.py, `advisor plan`, then `advisor run` on the quickstart preset with the
# hashing embedder; the run directories (without weights) are packed into OUT.
#   bash benchmarks/gpu_check.sh OUT ["0.5b 135m"] ["extra key=value overrides"]
# TOKENIZER=DIR takes the tokenizer from a model folder (default: the bundled SmolLM2); WHEELS=DIR unpacks the
# wheels there onto PYTHONPATH first (a machine without a package index); RUN_T caps each run in seconds.
set -u
O=${1:?usage: gpu_check.sh OUT [SIZES] [OVERRIDES]}; SIZES=${2:-"0.5b 135m"}; EXTRA=${3:-}
cd "$(dirname "$0")/.."
mkdir -p "$O"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
if [ -n "${WHEELS:-}" ]; then
  mkdir -p /tmp/gpu-check-site
  for w in "$WHEELS"/*.whl; do $PY -m zipfile -e "$w" /tmp/gpu-check-site; done
  export PYTHONPATH=/tmp/gpu-check-site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$O/env.txt" 2>&1
$PY -c "import torch, transformers, peft, bitsandbytes, faiss
print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__,
      'bitsandbytes', bitsandbytes.__version__, 'faiss', faiss.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')" \
  >> "$O/env.txt" 2>&1
cat "$O/env.txt"
TOK=()
[ -n "${TOKENIZER:-}" ] && TOK=(--tokenizer "$TOKENIZER")
for s in $SIZES; do
  M=/tmp/gpu-check-model-$s R=/tmp/gpu-check-run-$s
  rm -rf "$M" "$R"
  $PY benchmarks/random_model.py "$M" "$s" "${TOK[@]}" || exit 1
  # shellcheck disable=SC2086
  $PY -m advisor plan model.spec="$M" retrieval.embedder=hashing $EXTRA > "$O/plan_$s.txt" 2>&1
  echo "plan $s: rc=$?"; tail -4 "$O/plan_$s.txt"
  S0=$(date +%s)
  # shellcheck disable=SC2086
  timeout "${RUN_T:-1800}" $PY -m advisor run --yes --out "$R" model.spec="$M" retrieval.embedder=hashing $EXTRA \
    > "$O/run_$s.log" 2>&1
  echo "run $s: rc=$? in $(($(date +%s) - S0)) s"
  tar czf "$O/run_$s.tgz" -C /tmp --exclude='*.safetensors' --exclude='*.pt' --exclude='*.faiss' \
    --exclude='*.npy' "$(basename "$R")"
done
