#!/bin/sh
# GPU checks (issue 12), as one call on a GPU machine: sh benchmarks/gpu_check.sh [OUT_DIR]
#
# With TensorFlow installed (pip install -e ".[gpu]"): the engine itself, through the CLI:
#   the reference workload and the `base` preset on one GPU (float32 and mixed bfloat16),
#   MirroredStrategy over two logical GPUs made from one (same losses as one), and the
#   window's kind of inference in a second process while a GPU run trains (no OOM).
# Without TensorFlow (this project's lent GPU machines carry PyTorch and JAX only, and TF
#   2.21 with its CUDA 12 libraries is too large to carry there): the engine's own trainer on
#   the JAX and PyTorch backends (the base preset in bfloat16, a run resumed across them), nanoGPT
#   with torch.compile as the peer where its code is carried in .bench/nanoGPT, then the model
#   class through plain Keras on JAX (benchmarks/gpu_keras_jax.py) and fused attention. Wheels for
#   keras, keras-hub, namex and optree travel in .whl/ (see benchmarks/README.md).
set -u
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
PY=${PYTHON:-python3}
if $PY -c "import tensorflow" 2>/dev/null; then
    export DESKTOP_LLM_HOME=$(mktemp -d)
    C=resources/corpora/tinyshakespeare.txt
    common="--tokenizer-kind char --sample-tokens 0 --json"
    for mp in off bfloat16; do
        $PY -m desktop_llm train $C --preset small --steps 2000 --mixed-precision $mp --devices 1 $common \
            | grep -E '"(start|completed|failed)"' | tee "$OUT/gpu-small-$mp.jsonl" | tail -2
        $PY -m desktop_llm train $C --preset base --batch-size 64 --steps 500 --mixed-precision $mp --devices 1 \
            $common | grep -E '"(start|completed|failed)"' | tee "$OUT/gpu-base-$mp.jsonl" | tail -2
    done
    for d in 1 gpu:2; do
        $PY -m desktop_llm train $C --preset tiny --steps 40 --batch-size 12 --log-interval 2 --eval-interval 20 \
            --mixed-precision off --devices $d $common | grep '"step"' > "$OUT/gpu-mirror-$d.jsonl"
    done
    $PY - "$OUT" <<'EOF'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(f"{sys.argv[1]}/gpu-mirror-{d}.jsonl")] for d in ("1", "gpu:2"))
print(json.dumps({"mirrored_max_loss_difference": max(abs(x - y) for x, y in zip(a, b)), "steps": len(a)}))
EOF
    # The window's inference while a GPU run trains: both in one GPU's memory (memory growth).
    $PY -m desktop_llm train $C --preset base --batch-size 64 --steps 300 --devices 1 $common > "$OUT/gpu-shared-train.jsonl" &
    sleep 30
    $PY -m desktop_llm generate --prompt "ROMEO:" --max-tokens 200 --json | tail -1
    wait
    tail -1 "$OUT/gpu-shared-train.jsonl"
else
    echo "TensorFlow is not installed here: the engine's model through Keras on JAX instead."
    if [ -d .whl ]; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            && export PYTHONPATH=/tmp/site
    fi
    export DESKTOP_LLM_HOME=$(mktemp -d)
    C=resources/corpora/tinyshakespeare.txt
    common="--tokenizer-kind char --sample-tokens 0 --no-probes --json"
    # The engine's own trainer (issue 27): the base preset in bfloat16 on JAX and on PyTorch, and a
    # run that moves between them through its checkpoints (JAX -> torch -> JAX).
    for b in jax torch; do
        $PY -m desktop_llm train $C --preset base --batch-size 64 --steps 300 --log-interval 10 --eval-interval 300 \
            --mixed-precision bfloat16 --devices 1 --backend $b --name base-$b $common \
            | grep -E '"(start|step|completed|failed)"' > "$OUT/gpu-engine-base-$b.jsonl"; tail -1 "$OUT/gpu-engine-base-$b.jsonl"
    done
    $PY -m desktop_llm train $C --preset tiny --steps 60 --log-interval 10 --eval-interval 30 --backend jax \
        --name moved $common --control-stdin <<'STOP' > "$OUT/gpu-moved-1.jsonl"
stop
STOP
    RUN=$(grep -m1 '"start"' "$OUT/gpu-moved-1.jsonl" | sed 's/.*"run": "\([^"]*\)".*/\1/')
    $PY -m desktop_llm train --resume "$RUN" --backend torch $common --control-stdin <<'STOP' > "$OUT/gpu-moved-2.jsonl"
stop
STOP
    $PY -m desktop_llm train --resume "$RUN" --backend jax $common > "$OUT/gpu-moved-3.jsonl"; tail -1 "$OUT/gpu-moved-3.jsonl"
    # nanoGPT with torch.compile on the same GPU, as the peer (carry its code as .bench/nanoGPT)
    if [ -d .bench/nanoGPT ]; then
        (cd .bench/nanoGPT && $PY train.py config/train_shakespeare_char.py --compile=True --max_iters=300 \
            --eval_interval=300 --log_interval=10 --batch_size=64 --block_size=256 --dtype=bfloat16 2>&1 | tail -5) \
            > "$OUT/gpu-nanogpt-compile.txt"
    fi
    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false $PY benchmarks/gpu_keras_jax.py "$OUT/gpu-keras-jax.json"
    # fused causal attention vs XLA's, context 256..8192 (issue 13)
    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false $PY benchmarks/gpu_attention.py "$OUT/gpu-attention.json"
fi
