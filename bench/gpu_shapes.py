"""What a batch size met for the first time costs on a GPU, and which setting removes that cost.

    python bench/gpu_shapes.py                               # on the card
    python bench/gpu_shapes.py --device cpu --models resnet18 --size 64    # a dry run of the script

For each timm model (pretrained=False, 224 px), precision and setting, `gradient` calls, each timed: a first call
of 8 rows, then two row counts not met before (padding off: each is a new batch shape), then three row counts
that the engine's padding turns into one shape (of 32, 64, 128 or 256 rows, in turn). Settings: the engine's
default layout (attrib.engine._channels_last), channels_last, NCHW (both forced), cudnn.benchmark, and cuDNN
off. Each number is printed as it is measured, so a run cut short still says what it found. Seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

import attrib
import attrib.engine as engine_module

SETTINGS = ("default", "channels_last", "nchw", "benchmark", "no-cudnn")


@contextlib.contextmanager
def setting(name: str):
    default = engine_module.CHANNELS_LAST
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.enabled
    engine_module.CHANNELS_LAST = {"channels_last": True, "nchw": False}.get(name, default)
    torch.backends.cudnn.benchmark = name == "benchmark"
    torch.backends.cudnn.enabled = name != "no-cudnn"
    try:
        yield
    finally:
        engine_module.CHANNELS_LAST = default
        torch.backends.cudnn.benchmark, torch.backends.cudnn.enabled = flags


def timed(module, x: torch.Tensor, device: str, pad: bool, precision: str) -> str:
    engine_module._pads = lambda _: pad
    start = time.perf_counter()
    # it returns CPU tensors: the card has finished
    attrib.attribute(module, x, "gradient", target=0, device=device, precision=precision)
    return f"{time.perf_counter() - start:.2f}"


def shapes(name: str, device: str, which: str, i: int, size: int, precision: str) -> None:
    """Setting number ``i`` meets row counts, and a padded shape, that no earlier setting met."""
    import timm

    first, padded = 9 + 2 * i, 2 ** (5 + i % 4)
    module = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(padded, 3, size, size, generator=torch.Generator().manual_seed(0))
    print(f"| {name} | {precision} | {which} | ", end="", flush=True)
    with setting(which):
        print(timed(module, x[:8], device, False, precision), end=" | ", flush=True)
        for n in (first, first + 1):
            print(timed(module, x[:n], device, False, precision), end=" ", flush=True)
        print("|", end="", flush=True)
        for n in (padded - 3, padded - 2, padded - 1):
            print(" " + timed(module, x[:n], device, True, precision), end="", flush=True)
    print(" |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", default="efficientnet_lite0,resnet50")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()
    card = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"# bench/gpu_shapes.py — {card}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; seconds")
    print("| model | precision | setting | first call, 8 rows | two new row counts, no padding | three row counts "
          "padded to one new shape |")
    print("|---|---|---|---|---|---|")
    settings = args.settings.split(",")
    for name in args.models.split(","):
        for p, precision in enumerate(args.precisions.split(",")):
            for i, which in enumerate(settings):
                shapes(name, args.device, which, p * len(settings) + i, args.size, precision)


if __name__ == "__main__":
    main()
