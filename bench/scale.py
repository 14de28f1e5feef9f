"""`attrib explain` on many images: wall time, images/s and peak memory as the number of images grows.

    python bench/scale.py                       gradient on 10/40/160/1000 images, IG on 10/40 (CPU, ~6 min)
    python bench/scale.py --device cuda --method ig --sizes 100,1000 --no-images   on a GPU
    python bench/scale.py --sizes 40,160,640 --ig-sizes '' --rerun   reruns into the same folder too

With --rerun each size is run twice more into its folder: as it was (every input already done: the time to check
them) and in --view magnitude (every input drawn again from the folder's maps, no model pass).

Images are 256 x 256 JPEG crops of the four scikit-image samples (seeded), explained by the default model in a
fresh `attrib explain` process each (its peak RSS, from getrusage). Printed side by side: seconds, images/s,
the marginal seconds per image between consecutive sizes, their ratio, and the method's own cost per image in a
batch of 32 (`attrib.attribute`, after a warm-up), so that the overhead of decoding, rendering and writing shows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_images(folder: Path, n: int, seed: int = 0) -> Path:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = [getattr(data, name)() for name in ("chelsea", "coffee", "rocket", "astronaut")]
    rng = np.random.default_rng(seed)
    for i in range(n):
        photo = photos[i % 4]
        top, left = (int(rng.integers(0, s - 256)) for s in photo.shape[:2])
        Image.fromarray(photo[top:top + 256, left:left + 256]).save(folder / f"img{i:05d}.jpg", quality=90)
    return folder


def run_explain(folder: Path, out: Path, method: str, device: str, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one `attrib explain` process."""
    command = [sys.executable, "-c", TIMED, sys.executable, "-m", "attrib", "explain", str(folder), "-m", method,
               "--device", device, "--out", str(out), "-q", *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    seconds, kbytes = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(kbytes) / 1024


# What /usr/bin/time -f "%e %M" prints (wall seconds, the child's peak RSS in KiB), where that program is missing.
TIMED = """import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
print(f"{time.perf_counter() - start:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def batch_cost(method: str, device: str) -> float:
    """Seconds per image of the method alone (best of 3 after a warm-up on the same batch, so that a GPU has met
    its shapes): on a batch of about 64 rows on the CPU, and of `attrib explain`'s largest batch on a GPU."""
    import torch

    import attrib
    from attrib.jobs.explain import MAX_BATCH
    from attrib.models import load_model

    model = load_model(None)
    spec = attrib.METHODS[method]
    rows = 64 if device == "cpu" else 1 << 14
    n = min(MAX_BATCH, max(2, rows // spec.rows(spec.make_config())))
    x = torch.randn(n, 3, 224, 224)
    attrib.attribute(model.module, x, method, device=device)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        attrib.attribute(model.module, x, method, device=device)
        best = min(best, time.perf_counter() - start)
    return best / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,40,160,1000")
    parser.add_argument("--ig-sizes", default="10,40", help="sizes for integrated_gradients ('' to skip)")
    parser.add_argument("--method", default="gradient")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-images", action="store_true")
    parser.add_argument("--rerun", action="store_true", help="time reruns into each folder too")
    args = parser.parse_args()
    extra = ["--no-images"] if args.no_images else []
    plans = [(args.method, [int(s) for s in args.sizes.split(",")])]
    if args.ig_sizes and args.method != "integrated_gradients":
        plans.append(("integrated_gradients", [int(s) for s in args.ig_sizes.split(",")]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = make_images(root / "images", max(max(sizes) for _, sizes in plans))
        for method, sizes in plans:
            report(method, sizes, images, root, args.device, extra, args.rerun)


def report(method: str, sizes: list[int], images: Path, root: Path, device: str, extra: list[str],
           rerun: bool = False) -> None:
    own = batch_cost(method, device)
    print(f"\n{method} on {device}: the method alone costs {own:.3f} s per image in a batch")
    print(f"{'images':>7} {'seconds':>8} {'img/s':>7} {'peak MB':>8} {'marginal s/img':>15} {'vs previous':>12} "
          f"{'vs method alone':>16}" + (f" {'rerun s':>8} {'redraw s':>9}" if rerun else ""), flush=True)
    previous = None
    for n in sizes:
        subset = root / f"subset-{method}-{n}"
        subset.mkdir()
        for path in sorted(images.iterdir())[:n]:
            (subset / path.name).symlink_to(path)
        seconds, peak = run_explain(subset, root / f"out-{method}-{n}", method, device, extra)
        marginal = ratio = alone = ""
        if previous is not None:
            m = (seconds - previous[1]) / (n - previous[0])
            marginal, alone = f"{m:.3f}", f"{m / own:.2f}x"
            ratio = f"{m / previous[2]:.2f}x" if previous[2] else ""
            previous = (n, seconds, m)
        else:
            previous = (n, seconds, None)
        again = ""
        if rerun:  # the same command, then another --view: nothing computed, everything drawn again
            out = root / f"out-{method}-{n}"
            checked = run_explain(subset, out, method, device, extra)[0]
            drawn = run_explain(subset, out, method, device, [*extra, "--view", "magnitude"])[0]
            again = f" {checked:>8.1f} {drawn:>9.1f}"
        print(f"{n:>7} {seconds:>8.1f} {n / seconds:>7.2f} {peak:>8.0f} {marginal:>15} {ratio:>12} {alone:>16}"
              + again, flush=True)


if __name__ == "__main__":
    main()
