#!/usr/bin/env bash
# The GPU checks in one prepared script that builds nothing (a bundle made by tools/gpu-bundle.sh
# on a build machine), for each GPU backend: wgpu (Vulkan; lavapipe here) and CUDA. Per backend:
# encoder parity with transformers, a PT2 and an FT train step against the CPU backend, the
# half-precision backbone against f32 (models/tests/precision.rs), then `ptv2 bench` per method in
# f32 and in half precision at MiniLM's and RoBERTa-large's size (random weights of its shape).
# A backend that cannot start (no driver, no adapter) gets one `skipped` row per check, with the
# line ptv2 gave as the reason. Writes OUT/gpu-check.csv (one line per check: pass, FAIL or
# skipped, seconds, the measured gaps; then the bench rows) and one log per check. Last, per
# backend, one paper-scale run (PT2 on CoNLL-2003 for an epoch at RoBERTa-large's size, random
# weights) and the paper sweeps' (paper-ner, -superglue, -qa) hours priced by its f32 bench rows
# (`ptv2 sweep NAME --dry-run --bench`; OUT/DEVICE-estimate-NAME.log has each run's).
#
#   tools/gpu-check.sh BUNDLE [OUT]
#     PTV2_GPU_DEVICES="wgpu cuda"   the backends, in order
#     PTV2_GPU_HALF=bf16             the half precision benched beside f32 (f16 where bf16 is missing)
#     bench size (defaults): PTV2_GPU_SEQ_LENS=128,512 PTV2_GPU_METHODS=ft,pt,pt2,lora
#                            PTV2_GPU_BATCH=16 PTV2_GPU_WARMUP=2 PTV2_GPU_STEPS=5 PTV2_GPU_VOCAB=50265
#                            PTV2_GPU_LARGE=1 (0: MiniLM only and no paper run, e.g. on lavapipe)
#     paper run (defaults): PTV2_GPU_PAPER_TRAIN=14041 PTV2_GPU_PAPER_EVAL=3250 sentences
set -uo pipefail
bundle="$(cd "${1:?usage: gpu-check.sh BUNDLE [OUT]}" && pwd)"
out="${2:-gpu-check-out}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
export PTV2_FIXTURES="$bundle/fixtures" PTV2_CACHE="$bundle/cache"
# The executables travel xz-compressed (gpu-bundle.sh): unpacked once, beside the bundle.
for exe in "$bundle"/bin/*.xz; do
  [ -e "$exe" ] && xz -dkf "$exe" && chmod +x "${exe%.xz}"
done
bin="$bundle/bin"
# cubecl-cuda's LLVM compiler links CUDA's libdevice for math functions: the machine's toolkit
# where there is one, else the bundle's copy.
if [ -z "${CUDA_PATH:-}" ] && [ ! -f /usr/local/cuda/nvvm/libdevice/libdevice.10.bc ]; then
  export CUDA_PATH="$bundle/cuda"
fi
# The Vulkan loader where the machine lacks it: unpack the bundled packages, no install needed.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 && ls "$bundle"/debs/*.deb >/dev/null 2>&1; then
  root="$out/vulkan-root"
  for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$root"; done
  export LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
  for icd in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
             /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" && break
  done
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

csv="$out/gpu-check.csv"
echo "check,status,seconds,detail" > "$csv"
row() {  # name, status, seconds, detail
  echo "$1,$2,$3,\"$(echo "$4" | sed "s/,/;/g; s/\"/'/g" | tr '\n' ' ' | cut -c1-600)\"" >> "$csv"
  echo "gpu-check: $1: $2"
}
# One command as one row: its output in OUT/NAME.log, the row's detail what `filter` picks from
# it (a check's measured gaps; an estimate's last line, the summed hours).
run_row() {  # name, filter, command...
  local name="$1" filter="$2"; shift 2
  local start=$(date +%s)
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  row "$name" "$([ $rc = 0 ] && echo pass || echo "FAIL rc $rc")" $(( $(date +%s) - start )) \
    "$("$filter" "$out/$name.log")"
}
gaps() { grep -E 'max abs diff|max gap|logit gap|against f32|skipped' "$1"; }
hours() { tail -n 1 "$1" | sed 's/, from the bench rows.*//'; }
check() { run_row "$1" gaps "${@:2}"; }
estimate() { run_row "$1" hours "${@:2}"; }

# RoBERTa-large's shape with random weights (no download): 24 layers, hidden 1024, 16 heads.
# PTV2_GPU_VOCAB: lavapipe binds at most 128 MiB per storage buffer, less than RoBERTa's
# 50,265 × 1024 word embeddings (206 MB); BERT-large's 30,522 (125 MB) fit.
mkdir -p "$out/roberta-large-random"
cat > "$out/roberta-large-random/config.json" <<JSON
{"model_type": "roberta", "vocab_size": ${PTV2_GPU_VOCAB:-50265}, "hidden_size": 1024, "num_hidden_layers": 24,
 "num_attention_heads": 16, "intermediate_size": 4096, "max_position_embeddings": 514,
 "type_vocab_size": 1, "layer_norm_eps": 1e-05, "pad_token_id": 1, "hidden_act": "gelu"}
JSON
# The tokenizer the random RoBERTa-large-sized model reads text with (`random:DIR` takes a dir's
# config.json and tokenizer.json): MiniLM's WordPiece, whose 30,522 ids fit its vocabulary.
cp "$bundle/cache/models/minilm-l6/tokenizer.json" "$out/roberta-large-random/"

# One paper-scale run: PT2 on CoNLL-2003 at RoBERTa-large's size, the reference script's settings
# (batch 16, P 11, lr 3e-2, 256 tokens, random batches), one epoch of all 14,041 sentences;
# random weights, so the times count and the F1 does not. Its rates, and the GPU memory nvidia-smi
# saw at most while it ran, are one row.
paper_run() {  # device
  local device="$1" run="$out/$1-paper-run" sampler=""
  if [ "$device" = cuda ] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$run-gpu-mb.txt" &
    sampler=$!
  fi
  check "$device-paper-run" "$bin/ptv2" train --device "$device" --model "random:$out/roberta-large-random" \
    --data "$bundle/data" --task conll2003 --method pt2 --prompt-len 11 --lr 3e-2 --batch-size 16 \
    --max-len 256 --batching random --epochs 1 --max-train "${PTV2_GPU_PAPER_TRAIN:-14041}" \
    --max-eval "${PTV2_GPU_PAPER_EVAL:-3250}" --seed 11 --out "$run"
  [ -n "$sampler" ] && kill "$sampler"
  local metrics="$run/metrics.json" number
  number() { grep -o "\"$1\": *[0-9.e+-]*" "$metrics" | head -n 1 | sed 's/.*: *//'; }
  [ -f "$metrics" ] || return 0
  local rates="$(awk -v s="$(number train_steps_per_second)" -v r="$(number peak_rss_mb)" \
    'BEGIN {printf "%.3f steps/s = %.1f sentences/s (batch 16); peak RSS %.0f MB", s, s * 16, r}')"
  local gpu_mb="$(sort -n "$run-gpu-mb.txt" 2>/dev/null | tail -n 1)"
  [ -n "$gpu_mb" ] && rates="$rates; GPU memory at most $gpu_mb MB (nvidia-smi)"
  row "$device-paper-run-rates" pass "$(number wall_seconds | cut -d. -f1)" "$(number steps) steps at $rates"
}

models="minilm-l6"
[ "${PTV2_GPU_LARGE:-1}" = 1 ] && models="$models,config:$out/roberta-large-random/config.json"

for device in ${PTV2_GPU_DEVICES:-wgpu cuda}; do
  # Can the backend start? ptv2's one line says why not (no driver, no adapter, not built).
  if ! "$bin/ptv2" encode --device "$device" --text "a frozen backbone" --out "$out/probe-$device.json" \
       > "$out/probe-$device.log" 2>&1; then
    reason="$(tail -n 1 "$out/probe-$device.log")"
    for name in parity train-steps precision bench-f32 "bench-${PTV2_GPU_HALF:-bf16}" paper-run \
                estimate-paper-ner estimate-paper-superglue estimate-paper-qa; do
      row "$device-$name" skipped 0 "$reason"
    done
    continue
  fi
  export PTV2_GPU_DEVICE="$device"
  check "$device-parity" "$bin/parity" minilm_on_the_gpu --nocapture --test-threads 1
  check "$device-train-steps" "$bin/gpu" --nocapture --test-threads 1
  check "$device-precision" "$bin/precision" on_the_gpu --nocapture --test-threads 1
  for precision in f32 "${PTV2_GPU_HALF:-bf16}"; do
    check "$device-bench-$precision" "$bin/ptv2" bench --device "$device" --precision "$precision" \
      --models "$models" --methods "${PTV2_GPU_METHODS:-ft,pt,pt2,lora}" \
      --seq-lens "${PTV2_GPU_SEQ_LENS:-128,512}" --batch-size "${PTV2_GPU_BATCH:-16}" \
      --warmup "${PTV2_GPU_WARMUP:-2}" --steps "${PTV2_GPU_STEPS:-5}" --out "$out/bench-$device-$precision"
    bench="$out/bench-$device-$precision/bench.csv"
    [ -f "$bench" ] && sed "s/^/bench-row,/" "$bench" >> "$csv"
  done
  [ "${PTV2_GPU_LARGE:-1}" = 1 ] && paper_run "$device"
  # The paper sweeps' hours on this machine, priced by the f32 rows just measured (RoBERTa-large's
  # runs by its random-weights rows): `ptv2 sweep NAME --dry-run --bench`, one line per run.
  for sweep in paper-ner paper-superglue paper-qa; do
    estimate "$device-estimate-$sweep" "$bin/ptv2" sweep "$sweep" --experiments "$bundle/experiments" \
      --data "$bundle/data" --reports "$out/estimates" --bench "$out/bench-$device-f32" --dry-run
  done
done
cat "$csv"
! grep -q FAIL "$csv"
