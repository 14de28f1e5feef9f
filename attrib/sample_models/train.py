"""Train the sample models and write their weights and model cards into the package.

    python -m attrib.sample_models.train                      all four (about 3 minutes on a 2-core CPU)
    python -m attrib.sample_models.train blockdigits-robust   one of them
    python -m attrib.sample_models.train --out DIR            somewhere else (the package is left alone)

Training is seeded (the recipe's seed), so a rerun on the same machine gives the same weights.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from attrib.runs.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from attrib.sample_models import RECIPES, SampleRecipe, data_card, factory, weights_dir
from attrib.training import PGD, accuracy, init_seeded, robust_accuracy, train

EVAL_PGD_STEPS = 20


def train_sample(recipe: SampleRecipe, out: Path, log=print) -> dict:
    """Train one sample model, evaluate it, write NAME.safetensors + NAME.json into ``out``; return the card."""
    from safetensors.torch import save

    from attrib.data.datasets import load_dataset

    data = load_dataset(recipe.dataset, seed=recipe.seed)
    start = time.perf_counter()
    model = train(init_seeded(factory(recipe), recipe.seed), data.train_x, data.train_y, recipe.recipe,
                  seed=recipe.seed, on_epoch=lambda e: log(f"  {recipe.name}: epoch {e + 1}/{recipe.recipe.epochs}"))
    seconds = time.perf_counter() - start
    attack = PGD(recipe.attack_eps, "linf", EVAL_PGD_STEPS, recipe.recipe.lower, recipe.recipe.upper)
    card = {
        "name": recipe.name, "description": recipe.description, "dataset": recipe.dataset,
        "dataset_args": {"seed": recipe.seed}, "n_train": len(data.train_y), "n_test": len(data.test_y),
        "architecture": recipe.architecture, "arch_kwargs": recipe.arch_kwargs, "recipe": recipe.recipe.to_dict(),
        "seed": recipe.seed, "test_accuracy": round(accuracy(model, data.test_x, data.test_y), 4),
        "robust_accuracy": round(robust_accuracy(model, data.test_x, data.test_y, attack, seed=recipe.seed), 4),
        "robust_attack": {"norm": "linf", "eps": recipe.attack_eps, "steps": EVAL_PGD_STEPS, "restarts": 1},
        "train_seconds": round(seconds, 1), "command": f"python -m attrib.sample_models.train {recipe.name}",
        "torch": torch.__version__, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "trained": time.strftime("%Y-%m-%d"), **data_card(data),
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / f"{recipe.name}.safetensors", save(state))
    atomic_write_json(out / f"{recipe.name}.json", card)
    return card


def model_card(cards: list[dict]) -> str:
    """The Markdown model card for all samples."""
    lines = ["# attrib sample models", "", "Made by `python -m attrib.sample_models.train` (seeded; see the recipes in",
             "`attrib/sample_models/__init__.py`). Accuracies are on the data set's test split; robust accuracy is",
             f"under an l_inf PGD attack ({EVAL_PGD_STEPS} steps, step 2.5 eps / steps, one random start).", "",
             "| model | data | training | test acc | robust acc (eps) | seed | train time |",
             "|---|---|---|---|---|---|---|"]
    for c in cards:
        r = c["recipe"]
        how = "standard" if r["eps"] == 0 else f"PGD {r['norm']} eps {r['eps']}, {r['pgd_steps']} steps"
        cells = [f"sample:{c['name']}", f"{c['dataset']} ({c['n_train']} train / {c['n_test']} test)",
                 f"{how}, {r['epochs']} epochs, Adam lr {r['lr']}, batch {r['batch_size']}", f"{c['test_accuracy']:.3f}",
                 f"{c['robust_accuracy']:.3f} ({c['robust_attack']['eps']})", str(c["seed"]), f"{c['train_seconds']} s"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Architectures: `blockdigits_cnn` (conv 8 - pool - conv 16 - pool - fc 64 - fc 10, ReLU) and",
              "`synthetic_mlp` (10 - 100 ReLU - 2), in `attrib/sample_models/architectures.py`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attrib.sample_models.train", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"samples to train (default all: {', '.join(RECIPES)})")
    parser.add_argument("--out", type=Path, help="output folder (default: the installed package's weights/)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown sample {unknown[0]!r}; choose from {', '.join(RECIPES)}")
    out = args.out or Path(str(weights_dir()))
    for name in args.names or list(RECIPES):
        card = train_sample(RECIPES[name], out)
        print(f"{name}: test accuracy {card['test_accuracy']:.3f}, robust accuracy {card['robust_accuracy']:.3f} "
              f"at eps {card['robust_attack']['eps']} ({card['train_seconds']} s)", flush=True)
    import json

    cards = [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.stem in RECIPES]
    atomic_write_text(out / "MODEL_CARD.md", model_card(cards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
