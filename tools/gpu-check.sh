#!/usr/bin/env bash
# The GPU checks in one prepared script that builds nothing (a bundle made by tools/gpu-bundle.sh
# on a build machine): encoder parity with transformers on the GPU backend, a PT2 and an FT train
# step against the CPU backend, a checkpoint across backends, then `ptv2 bench` per method at 128
# and 512 tokens on RoBERTa-large-sized random weights. Writes OUT/gpu-check.csv (one line per
# check and per bench row) and the logs. Runs here on lavapipe (slowly), and on any machine whose
# Vulkan driver wgpu finds (an NVIDIA GPU: the driver's ICD + the loader from BUNDLE/debs).
#
#   tools/gpu-check.sh BUNDLE [OUT]     PTV2_GPU_DEVICE=wgpu|vulkan (default wgpu)
#     bench size (defaults): PTV2_GPU_SEQ_LENS=128,512 PTV2_GPU_METHODS=ft,pt,pt2,lora
#                            PTV2_GPU_BATCH=16 PTV2_GPU_WARMUP=2 PTV2_GPU_STEPS=5 PTV2_GPU_VOCAB=50265
set -uo pipefail
bundle="$(cd "${1:?usage: gpu-check.sh BUNDLE [OUT]}" && pwd)"
out="${2:-gpu-check-out}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
device="${PTV2_GPU_DEVICE:-wgpu}"
export PTV2_FIXTURES="$bundle/fixtures" PTV2_CACHE="$bundle/cache"

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
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"

csv="$out/gpu-check.csv"
echo "check,status,seconds,detail" > "$csv"
check() {  # name, command...
  local name="$1"; shift
  local start=$(date +%s)
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  local detail
  detail="$(grep -E 'max abs diff|max gap|logit gap' "$out/$name.log" | sed "s/,/;/g; s/\"/'/g" | tr '\n' ' ' | cut -c1-600)"
  echo "$name,$([ $rc = 0 ] && echo pass || echo "FAIL rc $rc"),$(( $(date +%s) - start )),\"$detail\"" >> "$csv"
  echo "gpu-check: $name: $([ $rc = 0 ] && echo pass || echo FAIL) ($out/$name.log)"
}
check parity "$bundle/parity" minilm_on_wgpu --nocapture --test-threads 1
check train-steps "$bundle/gpu" --nocapture --test-threads 1

# RoBERTa-large's shape with random weights (no download): 24 layers, hidden 1024, 16 heads.
# PTV2_GPU_VOCAB: lavapipe binds at most 128 MiB per storage buffer, less than RoBERTa's
# 50,265 × 1024 word embeddings (206 MB); BERT-large's 30,522 (125 MB) fit.
mkdir -p "$out/roberta-large-random"
cat > "$out/roberta-large-random/config.json" <<JSON
{"model_type": "roberta", "vocab_size": ${PTV2_GPU_VOCAB:-50265}, "hidden_size": 1024, "num_hidden_layers": 24,
 "num_attention_heads": 16, "intermediate_size": 4096, "max_position_embeddings": 514,
 "type_vocab_size": 1, "layer_norm_eps": 1e-05, "pad_token_id": 1, "hidden_act": "gelu"}
JSON
check bench "$bundle/ptv2" bench --device "$device" \
  --models "config:$out/roberta-large-random/config.json" \
  --methods "${PTV2_GPU_METHODS:-ft,pt,pt2,lora}" --seq-lens "${PTV2_GPU_SEQ_LENS:-128,512}" \
  --batch-size "${PTV2_GPU_BATCH:-16}" --warmup "${PTV2_GPU_WARMUP:-2}" --steps "${PTV2_GPU_STEPS:-5}" \
  --out "$out/bench"
[ -f "$out/bench/bench.csv" ] && sed 's/^/bench-row,/' "$out/bench/bench.csv" >> "$csv"
cat "$csv"
! grep -q FAIL "$csv"
