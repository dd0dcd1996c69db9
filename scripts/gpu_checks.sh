#!/usr/bin/env bash
# The book's checks that need a CUDA GPU, in one short run (about 3 minutes on an H200, after the
# nvcc build of a few seconds); for a machine with PyTorch, pytest and nvcc but not the notebook stack:
#
#     bash scripts/gpu_checks.sh [OUTDIR]      # OUTDIR (default results/) receives the logs and json
#
# 1. the CUDA kernels' and the GPU bank's tests (tests/test_pwl_cuda.py, test_infomax.py: '-k gpu');
# 2. the GPU rows of the benchmark (benchmarks/gpu_benchmarks.py: PWL / SiLU on the GPU);
# 3. the InfoMax design's estimated time with its banks on the GPU (benchmarks/infomax_benchmarks.py).
out=${1:-results}
mkdir -p "$out"
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 WANDB_MODE=disabled MPLBACKEND=Agg
python3 -c "import torch; from actfn import kernels; print(torch.__version__, torch.cuda.get_device_name(0), kernels.cuda_backend())" \
    2>&1 | tee "$out/gpu_path.log"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_pwl_cuda.py tests/test_infomax.py -k "gpu or plans" \
    2>&1 | tee "$out/gpu_tests.log" | tail -20
timeout 300 python3 benchmarks/gpu_benchmarks.py --out "$out/benchmarks_gpu.json" 2>&1 | tee "$out/gpu_bench.log"
timeout 400 python3 benchmarks/infomax_benchmarks.py --design-only 2>&1 | tee "$out/infomax_design.log"
