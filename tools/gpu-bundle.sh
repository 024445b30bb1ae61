#!/usr/bin/env bash
# Build, here, everything tools/gpu-check.sh runs on a GPU machine that can build nothing and
# reach nothing: the ptv2 binary and the GPU test executables with both GPU backends (wgpu and
# CUDA, `just test-gpu`'s build), the parity fixtures, MiniLM-L6, CUDA's libdevice.10.bc (for
# cubecl-cuda's LLVM compiler where the machine has no CUDA toolkit), the paper sweeps with their
# tasks' data (for their time estimates) and the Vulkan loader
# packages (for a machine whose NVIDIA driver ships its Vulkan ICD but not the loader libraries).
# The executables link LLVM statically: they go stripped and xz-compressed (gpu-check.sh unpacks
# them), and the bundle is cut into parts of at most 60 MiB, one transfer each.
#
#   tools/gpu-bundle.sh [BUNDLE_DIR]   (default: gpu-bundle; the GPU build the first time, then
#                                       about 4 min: strip, xz, split; 264 MB in 5 parts)
#   on the GPU machine, the parts carried there: cat NAME.part-* | tar -x; NAME/gpu-check.sh NAME OUT
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-gpu-bundle}"
rm -rf "$bundle" && mkdir -p "$bundle/cache/models" "$bundle/debs" "$bundle/bin"
# One build, the one `just test-gpu` makes (tools/gpu-cargo.sh: the same features and
# environment, so nothing is built twice): the ptv2 binary and the test executables, their paths
# from cargo's own report.
tools/gpu-cargo.sh test --release -p ptv2-models -p ptv2-harness \
  --test parity --test gpu --test precision --test cuda --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("parity", "gpu", "precision", "ptv2"):
        print(m["target"]["name"], m["executable"])' |
  while read -r name exe; do cp "$exe" "$bundle/bin/$name"; done
for exe in ptv2 gpu parity precision; do
  [ -x "$bundle/bin/$exe" ] || { echo "gpu-bundle: build failed: no $exe"; exit 1; }
done
rm -rf "$bundle/fixtures" && cp -r models/tests/fixtures "$bundle/fixtures"
# What the paper sweeps' time estimates read (`ptv2 sweep NAME --dry-run`): the sweep files and
# their tasks' data (22 MB; carried to the machine, never committed).
cp -r experiments "$bundle/experiments"
data="${PTV2_DATA:-../shared/data}"
for part in ner/conll2003 superglue squad/v1.1; do
  mkdir -p "$bundle/data/$part" && cp -r "$data/$part/." "$bundle/data/$part/"
done
rm -rf "$bundle/data/ner/conll2003/original-iob1"
minilm="$("$bundle/bin/ptv2" fetch minilm-l6)"
cp -r "$minilm" "$bundle/cache/models/minilm-l6"
cp -r "$(tools/cuda-llvm.sh --cuda-path)" "$bundle/cuda"
cp tools/gpu-check.sh "$bundle/"
if command -v apt-get >/dev/null; then
  (cd "$bundle/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
     >/dev/null 2>&1) || echo "gpu-bundle: could not download the Vulkan loader packages (no apt mirror?)"
fi
# Symbols are most of the executables' size; LLVM most of the rest, and it compresses well.
strip "$bundle"/bin/*
ls -la "$bundle/bin"
xz -T0 -6 "$bundle"/bin/*
ls -la "$bundle/bin"
rm -f "$bundle".part-*
tar -C "$(dirname "$bundle")" -c "$(basename "$bundle")" | split -b 60M -d - "$bundle.part-"
ls -la "$bundle".part-*
echo "gpu-bundle: $bundle ready ($(du -sh "$bundle" | cut -f1)); on the GPU machine: cat $bundle.part-* | tar -x; $bundle/gpu-check.sh $bundle OUT_DIR"
