"""``attrib sanity``: a sanity-check report for a model and its attribution methods. No math here."""

from __future__ import annotations

from pathlib import Path

import click

from attrib.cli import completion
from attrib.cli.common import (IMAGE_SIZE_HELP, LABELS_OPTION, Command, Common, View, common_options, listed,
                               method_options, model_options, pair_options, run_job, text_model_options, wrote)
from attrib.cli.ui import UI
from attrib.errors import counted, duration

EPILOG = """\b
Examples:
  attrib sanity                                   embedded model, its sample images, four methods
  attrib sanity -M sample:blockdigits-standard    a sample model on 8 of its test images (+ data randomization)
  attrib sanity cat.jpg -M timm:resnet50 -m ig -m gradient --tests randomization --layers fc,layer4.1
  attrib sanity -M sample:blockdigits-robust --tests robustness --radii 5%,0.3 --norm linf  (5% of max |x_i|, and 0.3)
  attrib sanity -M sample:blockdigits-standard --versus runner-up    the maps of "why this digit rather than that one"
Maps are computed at a reduced budget (each method's own, e.g. ig 32 steps, smoothgrad 16 samples); --set wins.
IG's (EG's) completeness is reported at 8, 16, 32 and 64 steps (samples), at its default and at the budget --set
gives it, which the verdict is judged at (else at the default).
Exit codes: 0 report written, 1 some inputs could not be read, 2 usage error."""


VERSUS_OPTION = click.option(
    "--versus", metavar="CLASS|runner-up", help="Explain each model's predicted class against its runner-up or "
    "another class (where that is the class predicted: the runner-up), as explain's --versus does, and check those "
    "maps.")


def _list(ctx, param, value: tuple[str, ...]) -> list[str] | None:
    return listed(value) or None


def _radii(ctx, param, value: tuple[str, ...]) -> list[float | str] | None:
    """Numbers, or "N%" entries (of the inputs' median norm: resolved by the job, which sees the inputs)."""
    radii = listed(value)
    if not radii:
        return None
    try:
        numbers = [float(r.removesuffix("%")) for r in radii]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated radii like 0.5,1 or 2%,5%, "
                                 f"got {','.join(value)!r}") from None
    if not numbers or not all(0 < n < float("inf") for n in numbers):  # nan fails too
        raise click.BadParameter("radii must be positive and finite")
    return [r if r.endswith("%") else n for r, n in zip(radii, numbers)]


@click.command(cls=Command, epilog=EPILOG)
@click.argument("inputs", nargs=-1, shell_complete=completion.image_inputs)
@model_options
@method_options("gradient, ig, smoothgrad, moreaugrad")
@click.option("--tests", callback=_list, multiple=True, default=["randomization,robustness,completeness"],
              show_default=True, metavar="T1,T2", help="Which checks to run (comma-separated or repeated).")
@click.option("--layers", callback=_list, multiple=True, metavar="A,B",
              help="Layer groups to randomize (default: spread out; repeatable).")
@click.option("--max-layers", default=None, type=click.IntRange(2),
              help="Layer groups reported when --layers is not given [default: 4].")
@click.option("--radii", callback=_radii, multiple=True, metavar="R1,R2",
              help="Perturbation radii: absolute, or N% of the inputs' median norm (l2: |x|, linf: max |x_i|; "
              "repeatable) [default: 2%,5%].")
@click.option("--norm", type=click.Choice(["l2", "linf"]), default="l2", show_default=True,
              help="The norm the radii are measured in.")
@click.option("--dataset", "-d", metavar="NAME", help="Take inputs from this data set's test split.")
@click.option("--n", "n_inputs", default=None, type=click.IntRange(1),
              help="Check the first N inputs: examples of the data set [default: 8], or images given [default: all].")
@click.option("--image-size", type=click.IntRange(1), metavar="PX", help=IMAGE_SIZE_HELP)
@click.option("--repeats", type=click.IntRange(1),
              help="Draws of random weights and of noise; values are mean ± sd over them [default: 3].")
@VERSUS_OPTION
@common_options
def sanity(inputs, model_spec, weights, no_pretrained, labels, preprocess, methods, settings, tests, layers,
           max_layers, radii, norm, dataset, n_inputs, image_size, repeats, versus, common: Common) -> None:
    """Check whether attribution maps depend on the model, survive small perturbations, and add up.

    Three parts (--tests): model-parameter randomization (cascading and independent; data randomization for
    sample models), robustness to random and top-k-attack perturbations that keep the predicted label, and the
    completeness of IG / EG. Ends with one verdict per method and test, with the numbers behind it.
    """
    from attrib.jobs import sanity as job

    options = job.Options(list(inputs), model_spec, weights, not no_pretrained, list(methods) or
                          list(job.DEFAULT_METHODS), list(settings), tests, layers, max_layers, radii, norm, dataset,
                          n_inputs, image_size, repeats, common.seed, common.device, labels=labels, versus=versus,
                          preprocess=list(preprocess))
    run_job(common, job, options, View(show=_show, json=job.json_view, exit_code=job.exit_code), prefix="sanity-")


def _show(ui: UI, record: dict, out: Path) -> None:
    from attrib.render.terminal import sanity_tables

    for table in sanity_tables(record):
        ui.show(table)
    what = "text" if record["model"].get("kind") == "text" else "input"
    ui.info(f"{counted(len(record['inputs']), what)} checked in {duration(record['seconds'])}; "
            + wrote(out, "run.json", *record.get("plots", {}).values()))


TEXT_EPILOG = """\b
Examples:
  attrib sanity-text "a gripping, beautifully acted film" "a dull mess" -M ./sst2-classifier --lm ./bert
  attrib sanity-text --file dev.csv --column sentence --n 16 -M ./clf -m unk -m ig --tests randomization
The word scores are explain-text's, for each classifier's predicted class; the masked LM is not randomized.
IG's completeness is reported at 8, 16, 32 and 64 steps and at --n-steps (the verdict's).
Exit codes: 0 report written, 1 some texts could not be explained, 2 usage error."""


@click.command("sanity-text", cls=Command, epilog=TEXT_EPILOG)
@click.argument("texts", nargs=-1)
@text_model_options
@click.option("--file", "text_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Texts, as explain-text reads them (one per line, or a CSV/JSONL/JSON/Parquet table's --column).")
@click.option("--column", help="The column of --file holding the texts [default: its column named text or "
                                  "sentence].")
@pair_options
@click.option("--n", "n_inputs", type=click.IntRange(1),
              help="Check the first N texts [default: every text given as an argument, 8 of a file].")
@click.option("--tests", callback=_list, multiple=True, default=["randomization,completeness"], show_default=True,
              metavar="T1,T2", help="Which checks to run (comma-separated or repeated).")
@click.option("--layers", callback=_list, multiple=True, metavar="A,B",
              help="Layer groups of the classifier to randomize (default: spread out; repeatable).")
@click.option("--max-layers", default=None, type=click.IntRange(2),
              help="Layer groups reported when --layers is not given [default: 4].")
@click.option("--repeats", type=click.IntRange(1),
              help="Draws of random weights; values are mean ± sd over them [default: 3].")
@VERSUS_OPTION
@LABELS_OPTION
@common_options
def sanity_text(texts, text, text_file, column, pairs, pair_column, n_inputs, tests, layers, max_layers, repeats,
                versus, labels, common: Common) -> None:
    """Check whether a text classifier's word scores depend on the classifier, and whether IG's add up.

    Two parts (--tests): model-parameter randomization of the classifier's layers (cascading and independent),
    and IG's completeness on the input embeddings. Ends with one verdict per method and test, with the numbers
    behind it; --html writes the report attrib sanity writes for images.
    """
    from attrib.jobs import sanity_text as job

    options = job.Options(list(texts), text_file, column, list(pairs), pair_column, tests, layers, max_layers,
                          repeats, n_inputs, **text, seed=common.seed, device=common.device, labels=labels,
                          versus=versus)
    run_job(common, job, options, View(show=_show, json=job.json_view, exit_code=job.exit_code), prefix="sanity-")
