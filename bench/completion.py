"""How long Tab takes: each completion the first time (nothing kept: the registries import torch) and again (the
lists read back from the completion cache), side by side, in fresh processes as the shell starts them.

    python bench/completion.py [--repeats 3]

Prints the best wall time of each over the repeats, and the ratio. Run on a quiet machine (`uptime` < 0.5).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CASES = [("methods", "attrib explain -m i", 3), ("method options", "attrib explain -m sg --set n", 5),
         ("timm's models", "attrib explain -M timm : res", 5), ("data sets", "attrib diffroar -d b", 3),
         ("sample images (no torch)", "attrib explain sa", 2)]
PROGRAM = "from attrib.cli import main; main(prog_name='attrib')"


def tab(words: str, current: int, cache: str) -> float:
    env = {**os.environ, "_ATTRIB_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(current),
           "XDG_CACHE_HOME": cache}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - start
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"{words!r} offered nothing: {done.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| completion | first Tab s | later Tab s | first / later |\n|---|---|---|---|")
    for label, words, current in CASES:
        first, later = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as cache:  # nothing kept yet
                first.append(tab(words, current, cache))
                later.append(tab(words, current, cache))
        print(f"| {label} (`{words}`) | {min(first):.2f} | {min(later):.2f} | {min(first) / min(later):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
