"""Integrated Gradients: fixed rules vs the adaptive rule, against a fine reference.

    python bench/ig_adaptive.py              the four sample images (default model) and two random-weight
                                             timm architectures (2 images each at 128 px); about 12 minutes
    python bench/ig_adaptive.py --holdout    six other scikit-image pictures that were never used to design
                                             or tune the rule: GL-200 and the default only; about 10 minutes
    python bench/ig_adaptive.py --oracle [--holdout]
                                             where the default rule stops against where a perfect stop would
                                             (the first round whose map is as accurate as GL-200's, the rule's
                                             refinement carried on past its own stop when needed), and how far
                                             the rule's two error estimates are from the truth

For each image and rule: passes (forward + input-backward rows), the completeness gap, and the relative L1 error
of the map against a 2048-node trapezoid reference (same target: the class predicted at the image); for the
adaptive rule also its own estimate of that error.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import torch

import attrib
from attrib.methods import adaptive

FIXED = [("gausslegendre", 32), ("gausslegendre", 50), ("gausslegendre", 100), ("gausslegendre", 200),
         ("trapezoid", 50), ("trapezoid", 200)]
ADAPTIVE = [("adaptive (default)", {}), ("adaptive tol 0.02", {"tol": 0.02}),
            ("adaptive tol 0.005", {"tol": 0.005}), ("adaptive match_steps=100", {"match_steps": 100}),
            ("adaptive match_steps=0 (gap only)", {"match_steps": 0})]
REFERENCE_NODES = 2048


def cases() -> list[tuple[str, torch.nn.Module, torch.Tensor, list[str]]]:
    import timm

    from attrib.data.images import SAMPLE_NAMES, load_sample
    from attrib.models import load_model

    model = load_model(None)
    out = [("efficientnet_lite0 (ImageNet)", model.module, torch.stack([model.preprocess(load_sample(n))
                                                                       for n in SAMPLE_NAMES]), list(SAMPLE_NAMES))]
    for name in ("resnet18", "mobilenetv3_small_100"):
        torch.manual_seed(0)
        net = timm.create_model(name, pretrained=False).eval()
        out.append((f"{name} (random weights)", net, torch.randn(2, 3, 128, 128,
                                                                  generator=torch.Generator().manual_seed(1)),
                    ["noise-0", "noise-1"]))
    return out


HOLDOUT = ("stereo_motorcycle", "camera", "clock", "coins", "hubble_deep_field", "immunohistochemistry")


def holdout_cases() -> list[tuple[str, torch.nn.Module, torch.Tensor, list[str]]]:
    import skimage.data
    from PIL import Image

    from attrib.data.images import to_rgb
    from attrib.models import load_model

    model = load_model(None)
    images = []
    for name in HOLDOUT:
        array = getattr(skimage.data, name)()
        images.append(model.preprocess(to_rgb(Image.fromarray(array[0] if isinstance(array, tuple) else array))))
    return [("efficientnet_lite0 (ImageNet), hold-out images", model.module, torch.stack(images), list(HOLDOUT))]


def error(values: torch.Tensor, reference: torch.Tensor) -> list[float]:
    return [float((v - r).abs().sum() / r.abs().sum()) for v, r in zip(values, reference)]


def main(holdout: bool = False) -> None:
    fixed, adaptive = ([("gausslegendre", 200)], [("adaptive (default)", {})]) if holdout else (FIXED, ADAPTIVE)
    for title, module, x, names in holdout_cases() if holdout else cases():
        target = attrib.predict(module, x).argmax(1).tolist()
        start = time.perf_counter()
        ref = attrib.attribute(module, x, "ig", target=target, rule="trapezoid", n_steps=REFERENCE_NODES)
        print(f"\n## {title}: reference {REFERENCE_NODES}-node trapezoid ({time.perf_counter() - start:.0f} s), "
              f"its gaps {', '.join(f'{g:.2%}' for g in ref.completeness_gap.tolist())}", flush=True)
        print(f"| rule | {' | '.join(names)} | median passes |\n|---|{'---|' * len(names)}---|")
        for rule, n in fixed:
            res = attrib.attribute(module, x, "ig", target=target, rule=rule, n_steps=n)
            row(f"{rule}-{n}", [n] * len(x), res, ref)
        for label, kwargs in adaptive:
            res = attrib.attribute(module, x, "ig", target=target, **kwargs)
            row(label, res.extras["steps"].tolist(), res, ref, res.extras["map_error"].tolist())


def row(label: str, passes: list[int], res, ref, estimates: list[float] | None = None) -> None:
    cells = [f"{p} / {g:.2%} / {e:.4f}" for p, g, e in zip(passes, res.completeness_gap.tolist(),
                                                          error(res.values, ref.values))]
    if estimates:  # the adaptive rule's own estimate of its map error
        cells = [f"{c} (est. {m:.4f})" for c, m in zip(cells, estimates)]
    print(f"| {label} | {' | '.join(cells)} | {statistics.median(passes):g} |", flush=True)


def oracle(holdout: bool = False) -> None:
    print("| picture | GL-200's error | rule: passes / error | its estimate / true error "
          "| its estimate of GL-200's error / true | perfect stop: passes |\n|---|---|---|---|---|---|")
    _, module, x, names = (holdout_cases() if holdout else cases())[0]
    target = attrib.predict(module, x).argmax(1).tolist()
    ref = attrib.attribute(module, x, "ig", target=target, rule="trapezoid", n_steps=REFERENCE_NODES).values
    gl = error(attrib.attribute(module, x, "ig", target=target, rule="gausslegendre", n_steps=200).values, ref)
    shipped_step = adaptive.step
    for i, name in enumerate(names):
        log, stop = [], []  # per round: (nodes, true error, own estimate, GL-200 estimate); the rule's own stop

        def step(path: adaptive.Path, tol: float, max_nodes: int) -> list[float]:
            ours, theirs = path.errors()
            current, norm = path.map(), path.map_norm()
            log.append((len(path.nodes), float((current - ref[i]).abs().sum() / ref[i].abs().sum()),
                        math.sqrt(sum(ours)) / norm, math.sqrt(theirs) / norm))
            picks = shipped_step(path, tol, max_nodes)
            if not picks and path.state == "converged" and log[-1][1] > gl[i]:  # carry on to GL-200's error
                stop[:] = stop or [log[-1]]
                path.state = "refining"
                picks = adaptive.to_split(path, max_nodes - len(path.nodes), False, ours, 0.95 * sum(ours))
            return picks

        adaptive.step = step
        try:
            attrib.attribute(module, x[i:i + 1], "ig", target=target[i])
        finally:
            adaptive.step = shipped_step
        nodes, true, own, theirs = stop[0] if stop else log[-1]
        perfect = next((n for n, t, *_ in log if t <= gl[i]), None)
        print(f"| {name} | {gl[i]:.4f} | {nodes} / {true:.4f} | {own / true:.2f} | {theirs / gl[i]:.2f} "
              f"| {perfect} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holdout", action="store_true", help="the six hold-out pictures")
    parser.add_argument("--oracle", action="store_true", help="where the rule stops against a perfect stop")
    args = parser.parse_args()
    if args.oracle:
        sys.exit(oracle(holdout=args.holdout))
    print("cells: passes / completeness gap / relative L1 error of the map against the reference "
          "(adaptive: and the rule's own estimate of it)")
    main(holdout=args.holdout)
