"""`attrib explain-text --file` on many texts: is the time per text flat as the file grows?

    python bench/text_scale.py                  unk on 200 / 800 / 3200 texts (CPU, ~1 min)
    python bench/text_scale.py --sizes 100,1000 --method olm
    python bench/text_scale.py --executor ray    the same on a local Ray cluster (loopback, 2 CPU workers)

Texts are 12 words drawn (seeded) from a small vocabulary; the classifier and masked LM are tiny BERTs built
offline by the tests' builder (tests/text_fixtures.py), so the numbers show attrib's own overhead per
text (scoring, records, writing), not a real model's cost. Each size runs in a fresh `attrib explain-text`
process. Printed side by side: seconds, texts/s, the marginal seconds per text between consecutive sizes and
their ratio to the first (1.0: linear).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/ builds the models
from tests.text_fixtures import build_text_models  # noqa: E402

WORDS = ("the movie was great and the acting was good a dull boring film with bad jokes fun loved it plot is "
         "thin but music fine what terrible waste of time an excellent moving story cast").split()


def run(texts: Path, out: Path, models: dict[str, str], method: str, executor: str) -> float:
    command = [sys.executable, "-m", "attrib", "explain-text", "--file", str(texts), "-M", models["clf"],
               "--lm", models["lm"], "-m", method, "--n-samples", "10", "--out", str(out), "-q",
               "--executor", executor]
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,800,3200")
    parser.add_argument("--method", default="unk")
    parser.add_argument("--executor", default="local", choices=("local", "ray"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = build_text_models(root, [" ".join(WORDS)] * 4, vocab_size=200)
        rows, first = [], None
        for n in sizes:
            texts = root / f"t{n}.txt"
            texts.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(n)) + "\n")
            rows.append((n, run(texts, root / f"out{n}", models, args.method, args.executor)))
        print(f"{'texts':>6} {'seconds':>8} {'texts/s':>8} {'marginal s/text':>16} {'ratio':>6}")
        for i, (n, seconds) in enumerate(rows):
            marginal = (seconds - rows[i - 1][1]) / (n - rows[i - 1][0]) if i else None
            first = first or marginal
            print(f"{n:>6} {seconds:>8.2f} {n / seconds:>8.1f} "
                  f"{'' if marginal is None else f'{marginal:.4f}':>16} "
                  f"{'' if marginal is None else f'{marginal / first:.2f}':>6}")


if __name__ == "__main__":
    main()
