"""Contrastive IG (`--versus runner-up`): one map of a logit difference against two maps subtracted.

    python bench/contrast.py        the four sample images, default model and IG rule, CPU (about 3 minutes)

Per image, side by side in one run: the predicted class against its runner-up, explained (a) as one contrast
(``versus="runner-up"``: the gradient of the difference, one backward per row) and (b) as two plain maps, one
per class, subtracted. Printed: passes and seconds of each, with (b)/(a); the contrast's completeness gap; the
relative L1 error of each against a fixed 200-node Gauss-Legendre map of the contrast; and the Pearson
correlation of the contrast map with the predicted class's plain map (channels summed): how different a question
"why this class rather than the runner-up" is from "why this class".
"""

from __future__ import annotations

import argparse
import time

import torch

import attrib


def _timed(model, x, **kwargs) -> tuple[attrib.Attribution, float]:
    start = time.perf_counter()
    result = attrib.attribute(model, x, "ig", **kwargs)
    return result, time.perf_counter() - start


def _l1(values: torch.Tensor, reference: torch.Tensor) -> float:
    return float((values - reference).abs().sum() / reference.abs().sum())


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.sum(0).flatten().double(), b.sum(0).flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def main() -> None:
    from attrib.data.images import SAMPLE_NAMES, load_sample
    from attrib.models import load_model

    torch.set_grad_enabled(True)
    model = load_model(None)
    module, labels = model.module.eval(), model.labels
    print(f"{'image':<10} {'predicted vs runner-up':<34} {'passes 1|2':>11} {'s 1|2':>12} {'2/1 s':>6} "
          f"{'gap':>6} {'L1 1|2':>12} {'r(plain)':>9}")
    ratios = []
    for name in SAMPLE_NAMES:
        x = model.preprocess(load_sample(name))[None]
        contrast, one = _timed(module, x, versus="runner-up")
        target, versus = contrast.target[0], contrast.versus[0]
        plain, first = _timed(module, x, target=target)
        other, second = _timed(module, x, target=versus)
        reference = attrib.attribute(module, x, "ig", target=target, versus=versus, rule="gausslegendre",
                                     n_steps=200).values[0]
        two = plain.passes + other.passes
        ratios.append((first + second) / one)
        pair = f"{labels[target].split(',')[0]} vs {labels[versus].split(',')[0]}"
        print(f"{name:<10} {pair:<34} {contrast.passes:>5}|{two:<5} {one:>5.1f}|{first + second:<6.1f} "
              f"{ratios[-1]:>6.2f} {float(contrast.completeness_gap[0]):>6.2%} "
              f"{_l1(contrast.values[0], reference):>5.3f}|{_l1(plain.values[0] - other.values[0], reference):<6.3f} "
              f"{_pearson(contrast.values[0], plain.values[0]):>9.2f}")
    print(f"two maps subtracted cost {min(ratios):.2f}-{max(ratios):.2f}x the contrast's time")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()  # --help, or a mistyped option: not the whole run
    main()
