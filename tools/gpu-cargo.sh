#!/usr/bin/env bash
# cargo for the GPU build, in one place (the Justfile's lint, test-gpu and build-cuda recipes and
# tools/gpu-bundle.sh call it): both GPU backends in one binary, so that CUDA and Vulkan share
# one build; burn-cuda's LLVM from PyPI (tools/cuda-llvm.sh, once) instead of GitHub; cudarc's
# CUDA 12.2 driver API (every H100/H200 driver has it; a newer driver serves older APIs; without
# it cudarc takes 13.4's).
#
#   tools/gpu-cargo.sh SUBCOMMAND [ARGS...]   e.g. tools/gpu-cargo.sh build --release -p ptv2-harness
set -euo pipefail
cd "$(dirname "$0")/.."
subcommand="${1:?usage: gpu-cargo.sh SUBCOMMAND [ARGS...]}"
shift
XDG_DATA_HOME="$(tools/cuda-llvm.sh)" CUDARC_CUDA_VERSION=12020 \
  exec cargo "$subcommand" -F ptv2-harness/wgpu,ptv2-harness/cuda "$@"
