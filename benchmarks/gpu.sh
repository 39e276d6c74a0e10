#!/usr/bin/env bash
# One short, prepared GPU check (H100/H200): the CUDA tests, then throughput with fp32
# and bf16, a batch-size sweep and the engine efficiency against the raw ceiling.
#
#   bash benchmarks/gpu.sh                 # from the repository root, on the GPU machine
#
# The device image has torch, xarray and numpy but not dask, distributed, rioxarray or
# odc-stac: build wheels here first (pip wheel --no-deps -w wheels/ <those packages> .)
# and carry wheels/ with the run; this script installs them offline when present.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -d wheels ]; then
    python -m pip install -q --no-index --no-deps --find-links wheels wheels/*.whl
fi
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU here'; print(torch.cuda.get_device_name())"
out=${OUT:-benchmarks/results}
python -m pytest -q -p no:cacheprovider tests/test_scale.py -k "cuda or chunked_equals_whole"
python benchmarks/throughput.py --device cuda --size 2048 --chunks 1024 2048 \
    --dtypes float32 bfloat16 --batch-sizes 4 16 --workers \
    --out "$out/throughput_gpu.md"
