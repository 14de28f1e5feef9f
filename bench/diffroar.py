"""Time the README's DiffROAR demo: both blockdigits sample models, gradient + ig + smoothgrad + random,
k = 0.05..0.5, one seed, default epochs — from scratch (fresh run folders), one model after the other.

    python bench/diffroar.py            prints per-model wall time, the total, and the tables (target: < 10 min)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("sample:blockdigits-standard", "sample:blockdigits-robust")


def run(model: str, out: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run(["attrib", "diffroar", "-M", model, "--out", str(out), "--json"], check=True,
                          capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def main() -> int:
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            seconds, data = run(model, Path(tmp) / model.split(":")[1])
            total += seconds
            print(f"\n{model}: {seconds:.0f} s")
            ks = sorted({r["k"] for r in data["results"]})
            print("| method | " + " | ".join(f"k={k:g}" for k in ks) + " | null-block share |")
            print("|---|" + "---|" * (len(ks) + 1))
            for method in dict.fromkeys(r["method"] for r in data["results"]):
                cells = {r["k"]: r for r in data["results"] if r["method"] == method}
                row = [f"{cells[k]['diffroar']:+.3f} ({cells[k]['acc_top']:.3f}/{cells[k]['acc_bottom']:.3f})"
                       for k in ks]
                print(f"| {method} | " + " | ".join(row) + f" | {data['null_block_share'][method]:.3f} |")
    print(f"\ntotal {total:.0f} s ({total / 60:.1f} min; target < 10 min)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()  # --help, or a mistyped option: not the whole run
    sys.exit(main())
