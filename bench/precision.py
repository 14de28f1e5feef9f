"""How far reduced-precision maps are from exact ones, on the CPU (autocast emulates fp16 and bf16 there: the
rounding is the same as a card's, the speed is not).

    python bench/precision.py        # about a minute on a 2-core CPU

The embedded EfficientNet-Lite0 on chelsea and coffee, each explaining its predicted class: one plain gradient
and IG with 16 Gauss-Legendre nodes from the zero baseline, in fp32, fp16 autocast (unscaled and with the score
scaled by 1024 before the backward, as a loss scaler would, to rule out underflow) and bf16 autocast. Each
cell: relative L2 distance to the same computation in float64.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from PIL import Image
from skimage import data

from attrib.models import load_model

SETTINGS = {"fp32": (None, 1.0), "fp16": (torch.float16, 1.0), "fp16, score x1024": (torch.float16, 1024.0),
            "bf16": (torch.bfloat16, 1.0)}


def gradient(model, x: torch.Tensor, cls: int, dtype=None, scale: float = 1.0) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        y = model(x)
    (g,) = torch.autograd.grad(y[:, cls].float().sum() * scale, x)
    return g.double() / scale


def integrated_gradients(model, x: torch.Tensor, cls: int, dtype=None, scale: float = 1.0,
                         nodes: int = 16) -> torch.Tensor:
    a, w = np.polynomial.legendre.leggauss(nodes)
    points = torch.cat([x * float(t) for t in (a + 1) / 2])
    weights = torch.tensor(w / 2, dtype=torch.float64)[:, None, None, None]
    return (gradient(model, points, cls, dtype, scale) * weights).sum(0, keepdim=True) * x.double()


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def main() -> None:
    torch.manual_seed(0)
    model = load_model("default")
    m32 = model.module.eval()
    m64 = copy.deepcopy(m32).double()
    print("| image | precision | one gradient | IG-16 |")
    print("|---|---|---|---|")
    for name in ("chelsea", "coffee"):
        x = model.preprocess(Image.fromarray(getattr(data, name)()))[None]
        cls = int(m32(x).argmax())
        exact = gradient(m64, x.double(), cls), integrated_gradients(m64, x.double(), cls)
        for label, (dtype, scale) in SETTINGS.items():
            ours = gradient(m32, x, cls, dtype, scale), integrated_gradients(m32, x, cls, dtype, scale)
            print(f"| {name} | {label} | {relative(ours[0], exact[0]):.4f} | {relative(ours[1], exact[1]):.4f} |",
                  flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()  # --help, or a mistyped option: not the whole run
    main()
