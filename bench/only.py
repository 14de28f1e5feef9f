"""`attrib explain --truth FILE --only wrong`: what an input costs that --only leaves out, against one explained.

    python bench/only.py                  16 images, IG (the default method), default model, CPU (~3 min)
    python bench/only.py --n 64 --method gradient --device cuda

The images are scale.py's 256 x 256 JPEG crops of the four scikit-image samples. A first run (gradient, no
pictures) reads the model's predictions; from them three tables of true classes are written: every image
right, every other image wrong, every image wrong. Each is then run with `--only wrong --no-images` in a fresh
process, so that none, half and all of the images are explained; printed side by side: each run's wall seconds
and images explained, the seconds an explained image adds to one left out (all-wrong less all-right, per
image), and the half-wrong run against what that predicts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from scale import make_images, run_explain


def predictions(folder: Path, out: Path, device: str) -> dict[str, int]:
    """Each image's predicted class, by file name."""
    run_explain(folder, out, "gradient", device, ["--no-images"])
    entries = [json.loads(line) for line in (out / "inputs.jsonl").read_text().splitlines()]
    return {Path(e["path"]).name: e["predictions"][0]["index"] for e in entries}


def table(path: Path, predicted: dict[str, int], wrong_every: int | None) -> Path:
    """A table of true classes: the prediction, shifted by one for every ``wrong_every``-th image (None: none)."""
    rows = [f"{name},{(c + (wrong_every is not None and i % wrong_every == 0)) % 1000}\n"
            for i, (name, c) in enumerate(sorted(predicted.items()))]
    path.write_text("".join(rows))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--method", default="ig")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = make_images(root / "images", args.n)
        predicted = predictions(folder, root / "pred", args.device)
        rows = []
        for name, every in (("all right", None), ("half wrong", 2), ("all wrong", 1)):
            truth = table(root / f"{name.replace(' ', '_')}.csv", predicted, every)
            seconds, _ = run_explain(folder, root / name.replace(" ", "_"), args.method, args.device,
                                     ["--no-images", "--truth", str(truth), "--only", "wrong"])
            explained = args.n if every == 1 else 0 if every is None else (args.n + 1) // 2
            rows.append((name, seconds, explained))
    print(f"{args.n} images, {args.method}, {args.device}, --only wrong")
    print(f"{'truth table':<12} {'wall s':>8} {'explained':>10}")
    for name, seconds, explained in rows:
        print(f"{name:<12} {seconds:>8.1f} {explained:>10}")
    skipped, half, explained = (r[1] for r in rows)
    per_explained = (explained - skipped) / args.n
    print(f"per image explained, beyond one left out: {per_explained:.2f} s; the whole run with every image left "
          f"out: {skipped:.1f} s (start-up, model and {args.n} forward passes); all wrong / all right: "
          f"{explained / skipped:.1f}x; half wrong: {half:.1f} s (expected {skipped + per_explained * args.n / 2:.1f})")


if __name__ == "__main__":
    main()
