#!/usr/bin/env bash
# Build, here, everything tools/gpu-check.sh runs on a GPU machine that can build nothing and
# reach nothing: the ptv2 binary and the two GPU test executables with the wgpu feature, the
# parity fixtures, MiniLM-L6, and the Vulkan loader packages (for a machine whose NVIDIA driver
# ships its Vulkan ICD but not the loader libraries).
#
#   tools/gpu-bundle.sh [BUNDLE_DIR]      (default: gpu-bundle; ~25 min the first time on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-gpu-bundle}"
mkdir -p "$bundle/cache/models" "$bundle/debs"
# One build, the one `just test-gpu` makes (the same features, so nothing is built twice): the
# ptv2 binary and the test executables, their paths from cargo's own report.
cargo test --release -p ptv2-models -p ptv2-harness -F ptv2-harness/wgpu \
  --test parity --test gpu --test gpu_train --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("parity", "gpu", "ptv2"):
        print(m["target"]["name"], m["executable"])' |
  while read -r name exe; do cp "$exe" "$bundle/$name"; done
[ -x "$bundle/ptv2" ] && [ -x "$bundle/gpu" ] && [ -x "$bundle/parity" ] || { echo "gpu-bundle: build failed"; exit 1; }
rm -rf "$bundle/fixtures" && cp -r models/tests/fixtures "$bundle/fixtures"
minilm="$("$bundle/ptv2" fetch minilm-l6)"
rm -rf "$bundle/cache/models/minilm-l6" && cp -r "$minilm" "$bundle/cache/models/minilm-l6"
cp tools/gpu-check.sh "$bundle/"
# Symbols are most of the executables' size.
strip "$bundle/ptv2" "$bundle/gpu" "$bundle/parity" 2>/dev/null || true
if command -v apt-get >/dev/null; then
  (cd "$bundle/debs" && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
     >/dev/null 2>&1) || echo "gpu-bundle: could not download the Vulkan loader packages (no apt mirror?)"
fi
ls -la "$bundle"
echo "gpu-bundle: $bundle ready; on the GPU machine: $bundle/gpu-check.sh $bundle OUT_DIR"
