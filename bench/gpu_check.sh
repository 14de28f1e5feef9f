#!/usr/bin/env bash
# Everything that needs a GPU, in one command (at most 9.5 minutes on one card; each step has its own limit):
#   bash bench/gpu_check.sh
# 1. the `gpu` tests: every command end to end with --device cuda, CPU/GPU agreement in fp32, the random
#    generator's numbers on the card equal to the CPU's;
# 2. bench/gpu.py: attrib vs captum vs the bound (resnet50, efficientnet_lite0, vit_base_patch16_224; fp32 and
#    bf16; IG-50 and SmoothGrad-50; batch 32), peak memory and allocator retries;
# 3. bench/scale.py on the card: `attrib explain` images/s for 100 and 500 images, IG, --no-images;
# 4. with RAY_BENCH=1 (and attrib[ray] installed; a few more minutes): bench/ray_diffroar.py, DiffROAR on
#    sample:blockdigits-robust locally vs on a local Ray cluster with --gpus-per-job 0.25.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PYTHON:-$(command -v python3 || command -v python)}
"$PY" -c "import torch, timm, transformers; assert torch.cuda.is_available(), 'no CUDA device here'
print(torch.cuda.get_device_name(0), 'torch', torch.__version__, 'timm', timm.__version__,
      'transformers', transformers.__version__)" || exit 2
status=0
timeout 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider || status=1
timeout 300 "$PY" bench/gpu.py --reps 1 || status=1
timeout 120 "$PY" bench/scale.py --device cuda --method integrated_gradients --sizes 100,500 --ig-sizes "" \
  --no-images || status=1
if [ "${RAY_BENCH:-0}" = 1 ]; then
  timeout 600 "$PY" bench/ray_diffroar.py || status=1
fi
exit $status
