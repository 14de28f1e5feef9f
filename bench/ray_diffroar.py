"""DiffROAR locally vs on a Ray cluster, side by side on one machine (issue 14's GPU check).

    python bench/ray_diffroar.py                                  # on a GPU machine: --device cuda both ways
    python bench/ray_diffroar.py --device cpu --gpus-per-job 0 --model sample:synthetic-standard --methods gradient

Runs `attrib diffroar` (fresh run folders) with the local executor and then with `--executor ray` (a local
cluster; `--gpus-per-job` shares of the card, so several retrains share one GPU), and prints both wall times,
their ratio, and whether the results (accuracies and weights digests) agree.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(out: Path, args, extra: list[str]) -> float:
    command = [sys.executable, "-m", "attrib", "diffroar", "-M", args.model, "--device", args.device, "--out",
               str(out), "-q", *sum((["-m", m] for m in args.methods.split(",")), []), *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def results(out: Path) -> dict:
    return {p.name: {k: v for k, v in json.loads(p.read_text()).items() if k != "seconds"}
            for p in sorted((out / "jobs").glob("*.result.json"))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sample:blockdigits-robust")
    parser.add_argument("--methods", default="gradient,integrated_gradients,smoothgrad")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--gpus-per-job", default="0.25")
    parser.add_argument("--cpus-per-job", default="1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local = run(Path(tmp, "local"), args, [])
        ray = run(Path(tmp, "ray"), args, ["--executor", "ray", "--gpus-per-job", args.gpus_per_job,
                                           "--cpus-per-job", args.cpus_per_job])
        a, b = results(Path(tmp, "local")), results(Path(tmp, "ray"))
        same = sum(a[k]["accuracy"] == b.get(k, {}).get("accuracy") for k in a)
        digests = sum(a[k].get("weights_sha256") == b.get(k, {}).get("weights_sha256") for k in a)
    print(f"{args.model} on {args.device}: local {local:.1f} s, ray (--gpus-per-job {args.gpus_per_job}) "
          f"{ray:.1f} s, ratio {local / ray:.2f}x; {same}/{len(a)} accuracies and {digests}/{len(a)} weight "
          "digests equal (GPU training is not bit-reproducible unless deterministic algorithms are forced)")


if __name__ == "__main__":
    main()
