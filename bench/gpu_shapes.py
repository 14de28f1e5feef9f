"""What a batch shape never seen before costs on a GPU, with the engine's shape padding off and on.

    python bench/gpu_shapes.py                               # on the card
    python bench/gpu_shapes.py --device cpu --models resnet18 --size 64    # a dry run of the script

For each timm model (pretrained=False, 224 px): after a first call of 8 rows (timed), `gradient` calls at row counts
never seen before, each timed (padding off: each is a new shape; on: they share the padded shape); then IG's
default (adaptive) rule on a few images, whose rounds come in many sizes, timed on its first run and again.
"""

from __future__ import annotations

import argparse
import time

import torch

import attrib
import attrib.engine as engine_module


def timed(fn) -> float:
    start = time.perf_counter()
    fn()  # attribute() returns CPU tensors, so the card has finished
    return time.perf_counter() - start


def shapes(name: str, device: str, pad: bool, rows: list[int], images: int, size: int) -> None:
    """Print each timing as soon as it is measured (a run cut short still says what it found)."""
    import timm

    engine_module._pads = lambda _: pad
    module = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(max(rows + [8, images]), 3, size, size, generator=torch.Generator().manual_seed(int(pad)))
    print(f"| {name} | {'on' if pad else 'off'} | ", end="", flush=True)
    warm = timed(lambda: attrib.attribute(module, x[:8], "gradient", target=0, device=device))
    print(f"{warm:.2f} |", end="", flush=True)
    for n in rows:
        print(f" {timed(lambda n=n: attrib.attribute(module, x[:n], 'gradient', target=0, device=device)):.2f}",
              end="", flush=True)
    for _ in range(2):
        print(f" | {timed(lambda: attrib.attribute(module, x[:images], 'ig', target=0, device=device)):.1f}",
              end="", flush=True)
    print(" |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="efficientnet_lite0,resnet50")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"# bench/gpu_shapes.py — {card}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; seconds")
    print("| model | padding | first call, 8 rows | gradient at 9, 10, 11, 12 rows (each a row count not met "
          f"before) | IG default, {args.images} images, first run | again |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        for pad in (False, True):
            shapes(name, args.device, pad, [9, 10, 11, 12], args.images, args.size)


if __name__ == "__main__":
    main()
