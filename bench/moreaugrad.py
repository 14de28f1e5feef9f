"""MoreauGrad presets: cost (passes, seconds) and agreement of "fast" with "paper".

    python bench/moreaugrad.py                 # 4 sample images on the default model + 20 digits
    python bench/moreaugrad.py --images 1      # fewer natural images (each paper run: minutes on a CPU)
    python bench/moreaugrad.py --ceiling       # also a second paper run (another seed): the noise ceiling

Agreement is measured on channel-summed |.| maps: top-10%-pixel intersection and Spearman, averaged over the
four sample images on the default model (EfficientNet-Lite0) and over 20 test images of a small CNN trained here
on scikit-learn's digits. Target: fast costs <= 10% of paper's passes, intersection >= 0.85, Spearman >= 0.9.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import attrib
from attrib.evaluate.similarity import magnitude_map, spearman, topk_intersection


def digits_cnn(seed: int = 0, epochs: int = 30):
    """A small CNN trained on scikit-learn's digits (8x8, 1 channel), and 20 test images."""
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1400], order[1400:]
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(32 * 16, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.split(train[torch.randperm(len(train))], 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
            opt.step()
    net.eval()
    accuracy = float((net(x[test]).argmax(1) == y[test]).float().mean())
    return net, x[test[:20]], accuracy


def sample_images(n: int):
    from attrib.data.images import SAMPLE_NAMES, load_sample
    from attrib.models import load_model

    model = load_model()
    x = torch.stack([model.preprocess(load_sample(name)) for name in SAMPLE_NAMES[:n]])
    return model.module, x


def run_preset(module, x, method: str, preset: str, seed: int, cache: Path | None, tag: str):
    """(values, passes per input, seconds); paper runs are cached on disk (they take minutes)."""
    path = cache / f"{tag}-{method}-{preset}-{seed}.npz" if cache and preset == "paper" else None
    if path is not None and path.is_file():
        with np.load(path) as saved:
            return saved["values"], float(saved["passes"]), float(saved["seconds"])
    start = time.perf_counter()
    res = attrib.attribute(module, x, method, preset=preset, seed=seed)
    out = (res.values.numpy(), res.passes / len(x), time.perf_counter() - start)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, values=out[0], passes=out[1], seconds=out[2])
    return out


def compare(module, x, method: str, ceiling: bool, cache: Path | None, tag: str) -> dict:
    runs = {}
    for label, preset, seed in [("paper", "paper", 0), ("fast", "fast", 0)] + ([("paper2", "paper", 1)]
                                                                                if ceiling else []):
        runs[label] = run_preset(module, x, method, preset, seed, cache, tag)
        print(f"  {method} {label}: {runs[label][1]:.0f} passes/input, {runs[label][2]:.1f} s", flush=True)
    out = {"passes_paper": runs["paper"][1], "passes_fast": runs["fast"][1],
           "seconds_paper": runs["paper"][2], "seconds_fast": runs["fast"][2]}
    for other in [k for k in runs if k != "paper"]:
        maps = [(magnitude_map(p), magnitude_map(f)) for p, f in zip(runs["paper"][0], runs[other][0])]
        out[f"{other}_topk"] = float(np.mean([topk_intersection(p, f) for p, f in maps]))
        out[f"{other}_spearman"] = float(np.mean([spearman(p, f) for p, f in maps]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--methods", default="moreaugrad")
    parser.add_argument("--ceiling", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / ".cache",
                        help="where paper-preset results are kept between runs ('' to disable)")
    args = parser.parse_args()
    print(f"# bench/moreaugrad.py — torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{time.strftime('%Y-%m-%d')}")
    suites = []
    if not args.skip_digits:
        net, digits, accuracy = digits_cnn()
        print(f"digits CNN test accuracy {accuracy:.3f}")
        suites.append(("digits CNN, 20 test images", net, digits, "digits"))
    if args.images:
        module, x = sample_images(args.images)
        suites.append((f"EfficientNet-Lite0, {args.images} sample images", module, x, f"lite0x{args.images}"))
    print("| data | method | passes paper | passes fast | fast/paper cost | s paper | s fast | top-10% | "
          "Spearman |" + (" ceiling top-10% | ceiling Spearman |" if args.ceiling else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.ceiling else ""))
    cache = args.cache if str(args.cache) else None
    for name, module, x, tag in suites:
        for method in args.methods.split(","):
            r = compare(module, x, method, args.ceiling, cache, tag)
            line = (f"| {name} | {method} | {r['passes_paper']:.0f} | {r['passes_fast']:.0f} | "
                    f"{r['passes_fast'] / r['passes_paper']:.2f} | {r['seconds_paper']:.1f} | "
                    f"{r['seconds_fast']:.1f} | {r['fast_topk']:.3f} | {r['fast_spearman']:.3f} |")
            if args.ceiling:
                line += f" {r['paper2_topk']:.3f} | {r['paper2_spearman']:.3f} |"
            print(line, flush=True)


if __name__ == "__main__":
    main()
