#!/usr/bin/env bash
# The LLVM 23 that burn-cuda's build needs, from PyPI instead of GitHub. cubecl-cuda 0.11.3 links
# cubecl-llvm, whose build dependency tracel-llvm-bundler 23.1.0-4 downloads an LLVM bundle from
# GitHub releases unless $XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed exists;
# then cubecl-llvm only runs that prefix's bin/llvm-config --link-static. PyPI's mlc-llvm-static
# (a relocatable static LLVM 23.1.1; the extra-targets wheel adds NVPTX) is such a prefix.
#
# Installs both wheels into the ptv2 cache once, links the bundler's prefix to them, and prints the
# XDG_DATA_HOME to build with:  export XDG_DATA_HOME="$(tools/cuda-llvm.sh)"
# The bundler's directory and marker names are cubecl 0.11's: a cubecl upgrade may change them.
#
# `tools/cuda-llvm.sh --cuda-path` instead prints a CUDA_PATH holding nvvm/libdevice/libdevice.10.bc
# (484 KB, from PyPI's nvidia-cuda-nvcc-cu12 wheel): at run time cubecl-cuda's LLVM compiler links
# it for math functions (exp, erf, tanh, ...) where the GPU machine has no CUDA toolkit.
set -euo pipefail
cache="${PTV2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ptv2}"
version=23.1.1.post0
sdk="$cache/llvm-$version"
data="$cache/cuda-xdg"
prefix="$data/tracel/tracel-llvm-23.1.0-4"
python="${PTV2_PYTHON:-python3}"
if [ "${1:-}" = --cuda-path ]; then
  cuda="$cache/cuda-libdevice-12.2"
  if [ ! -f "$cuda/nvvm/libdevice/libdevice.10.bc" ]; then
    echo "tools/cuda-llvm.sh: fetching libdevice.10.bc (PyPI nvidia-cuda-nvcc-cu12 12.2, 21 MB) into $cuda" >&2
    wheels="$(mktemp -d)"
    "$python" -m pip download -q --no-deps --disable-pip-version-check -d "$wheels" "nvidia-cuda-nvcc-cu12==12.2.140" >&2
    mkdir -p "$cuda/nvvm/libdevice"
    "$python" - "$wheels"/nvidia_cuda_nvcc_cu12-*.whl "$cuda/nvvm/libdevice/libdevice.10.bc" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read("nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc")
with open(dest + ".partial", "wb") as f:
    f.write(data)
os.replace(dest + ".partial", dest)
PY
    rm -rf "$wheels"
  fi
  echo "$cuda"
  exit 0
fi
if [ ! -e "$sdk/.complete" ]; then
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    { echo "tools/cuda-llvm.sh: $python is older than 3.10 (mlc-llvm-static's llvm-config is a Python >= 3.10 script)" >&2; exit 1; }
  echo "tools/cuda-llvm.sh: installing LLVM $version (PyPI mlc-llvm-static, 92 MB) into $sdk" >&2
  rm -rf "$sdk.partial"
  "$python" -m pip install -q --no-deps --disable-pip-version-check --target "$sdk.partial" \
    "mlc-llvm-static==$version" "mlc-llvm-static-extra-targets==$version" >&2
  rm -rf "$sdk" && mv "$sdk.partial" "$sdk" && touch "$sdk/.complete"
fi
static="$sdk/mlc_llvm_static/static"
"$static/bin/llvm-config" --targets-built | grep -qw NVPTX ||
  { echo "tools/cuda-llvm.sh: $static has no NVPTX target (mlc-llvm-static-extra-targets missing?)" >&2; exit 1; }
# Made once: the bundler's build script watches the marker, so touching it again would rebuild
# cubecl-llvm and every crate above it.
if [ ! -e "$prefix/.tracel-llvm-installed" ]; then
  mkdir -p "$prefix"
  for dir in bin include lib share; do ln -sfn "$static/$dir" "$prefix/$dir"; done
  touch "$prefix/.tracel-llvm-installed"
fi
echo "$data"
