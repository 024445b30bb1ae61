# ptv2 tasks. `tools/just RECIPE` installs just on first use; plain `just RECIPE` if you have it.

set shell := ["bash", "-euo", "pipefail", "-c"]

# cargo's own progress shows while it builds (the first build: 15–35 minutes on 2 cores).
ptv2 := "cargo run --release -p ptv2-harness --"
# The GPU build (both GPU backends in one binary, burn-cuda's LLVM from PyPI): tools/gpu-cargo.sh.
gpu_cargo := "tools/gpu-cargo.sh"

# List the recipes.
default:
    @just --list

# The main job on the embedded default model (MiniLM-L6, fetched on first use).
demo:
    {{ptv2}} encode --model minilm-l6 \
        --text "Deep prompt tuning adds keys and values to every layer." --pair "Is the backbone trained?" \
        --text "The backbone stays frozen." --pair "Only the prefix and the head are trained." \
        --out reports/demo/encode.json

# Every test: unit tests, parity with transformers, error handling, end-to-end runs. Two tests are
# ignored by the plain run and run after it where they can: the PyTorch replay (where $PTV2_PYTHON,
# else python3, has torch, transformers and peft) and the full-disk test (as root).
test:
    cargo test --release --workspace
    @py="${PTV2_PYTHON:-python3}"; if "$py" -c "import torch, transformers, peft, safetensors" 2>/dev/null; \
      then echo "test: the PyTorch replay and PEFT-native tests (ignored above) run with $py"; \
           PTV2_PYTHON="$py" cargo test --release -p ptv2-harness --test replay -- --ignored; \
      else echo "test: $py cannot import torch, transformers, peft: the PyTorch replay and PEFT-native tests stay ignored (set PTV2_PYTHON)"; fi
    @if [ "$(id -u)" = 0 ]; then echo "test: the full-disk test (ignored above) runs as root"; \
           cargo test --release -p ptv2-harness --test bad_inputs -- --ignored; \
      else echo "test: not root: the full-disk test (mounts a tmpfs) stays ignored"; fi
    @if [ "${PTV2_GPU_TESTS:-0}" = 1 ]; then {{just_executable()}} test-gpu; \
      else echo "test: the GPU tests (wgpu) are skipped: PTV2_GPU_TESTS=1 runs them (just test-gpu)"; fi

# Formatting as rustfmt writes it, and clippy with every warning an error (CI runs this before the
# tests). Clippy runs with the GPU features, a superset of the default build's code (no code is
# compiled only without them), so the wgpu/CUDA paths are linted too: 2.5 min more than the default
# features' check from a warm target, measured.
lint:
    cargo fmt --all --check
    {{gpu_cargo}} clippy --workspace --all-targets -- -D warnings

# The GPU code path on burn's wgpu backend: on lavapipe (Debian's mesa-vulkan-drivers, software
# Vulkan) where there is no GPU. Parity with transformers, train steps against the CPU backend, a
# checkpoint across backends, the half-precision backbone, `ptv2 train --device wgpu` end to end,
# and `--device cuda`'s one-line error without a driver. Built with CUDA too (build-cuda's build):
# CI builds the CUDA backend here.
test-gpu:
    @ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || { echo "test-gpu: no Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1)"; exit 1; }
    {{gpu_cargo}} test --release -p ptv2-models -p ptv2-harness \
      --test gpu --test parity --test gpu_train --test precision --test cuda -- --test-threads 1

# Replay a finished run in PyTorch + transformers + PEFT and print both side by side
# (PTV2_PYTHON: a Python with torch, transformers==4.46.3, peft==0.11.1).
replay RUN *ARGS:
    {{ptv2}} replay {{RUN}} {{ARGS}}

# Build the ptv2 binary (target/release/ptv2).
build:
    cargo build --release -p ptv2-harness

# Run any ptv2 command, e.g. `just ptv2 encode --text hi --out h.json`.
ptv2 *ARGS:
    {{ptv2}} {{ARGS}}

# Run a sweep (experiments/NAME.toml), e.g. `just sweep smoke`; extra flags go to `ptv2 sweep`.
sweep NAME *ARGS:
    {{ptv2}} sweep {{NAME}} {{ARGS}}

# Rebuild a sweep's tables, charts and report from its runs, without training.
report NAME:
    {{ptv2}} report {{NAME}}

# The nightly regression: the smoke sweep, then its scores against the committed baseline.
nightly:
    {{ptv2}} sweep smoke --quiet
    {{ptv2}} check smoke --baseline experiments/baselines/smoke.csv --tolerance 0.02

# The Slurm path against a real single-node Slurm on this machine (root, Debian 12): start it,
# submit the smoke sweep as a job array, wait, check the merged table, stop the daemons.
test-slurm:
    #!/usr/bin/env bash
    set -euo pipefail
    started=no
    if ! sinfo -h >/dev/null 2>&1; then tools/slurm/up.sh; started=yes; fi
    trap '[ $started = yes ] && tools/slurm/down.sh' EXIT
    reports=$(mktemp -d)
    {{ptv2}} slurm smoke --reports "$reports" --wait
    {{ptv2}} check smoke --reports "$reports" --baseline experiments/baselines/smoke.csv --tolerance 0.02
    ls "$reports/smoke/slurm"

# Train one run, e.g. `just train --task rte --method pt2 --prompt-len 16 --lr 1e-2 --out runs/rte-pt2`.
train *ARGS:
    {{ptv2}} train {{ARGS}}

# Benchmark FT/PT/PT2 (train step, eval throughput, peak RSS, checkpoint size, GFLOP/s against a
# GEMM micro-benchmark) on MiniLM-L6 and a tiny model; PyTorch side by side when PTV2_PYTHON
# (default python3) has torch + transformers; reports/bench/bench.md, .csv and bench.png/.svg.
bench *ARGS:
    {{ptv2}} bench {{ARGS}}

# Load-test `ptv2 serve` on loopback: three PT2 runs (SST-2, RTE, WNUT-17 on MiniLM-L6) served
# (a) with mixed-task batches, (b) one task a batch, and (c) three FT runs side by side. Trains the
# six small runs first (1 epoch on 200 examples; scores do not matter here) unless present.
bench-serve *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    runs=reports/bench-serve/runs
    for task in sst2 rte wnut17; do
      for method in pt2 ft; do
        [ -f "$runs/$task-$method/checkpoint.safetensors" ] && continue
        lr=$([ "$method" = ft ] && echo 5e-5 || echo 1e-2)
        {{ptv2}} train --task "$task" --method "$method" --prompt-len 16 --lr "$lr" --epochs 1 \
          --max-train 200 --max-eval 64 --max-len 128 --out "$runs/$task-$method"
      done
    done
    {{ptv2}} bench-serve --pt2 "$runs/sst2-pt2,$runs/rte-pt2,$runs/wnut17-pt2" \
      --ft "$runs/sst2-ft,$runs/rte-ft,$runs/wnut17-ft" {{ARGS}}

# Build ptv2 with the CUDA and wgpu backends (`--device cuda`, `--device wgpu`): no GPU and no CUDA
# toolkit needed. burn-cuda's LLVM 23 comes from PyPI (tools/cuda-llvm.sh, 92 MB, once) instead of
# GitHub. The same build as `just test-gpu`'s, so each reuses the other's crates.
build-cuda:
    {{gpu_cargo}} build --release -p ptv2-harness

# Regenerate the PyTorch reference fixtures (needs torch + transformers; not part of the tests).
fixtures python="python3":
    {{python}} tools/reference/make_fixtures.py --minilm "$({{ptv2}} fetch minilm-l6)" --out models/tests/fixtures
    {{python}} tools/reference/make_deberta_fixtures.py --out models/tests/fixtures
