"""``attrib diffroar``: evaluate attribution methods by remove-and-retrain (DiffROAR). No math here."""

from __future__ import annotations

from pathlib import Path

import click

from attrib.cli import completion
from attrib.cli.common import (IMAGE_SIZE_HELP, NO_PRETRAINED_HELP, PREPROCESS_OPTION, RESUMES, Command, Common, View,
                               common_options, executor_options, listed, method_options, run_job, wrote)
from attrib.cli.ui import UI
from attrib.errors import counted, duration

EPILOG = """\b
Examples:
  attrib diffroar                                        blockdigits-standard, gradient/ig/smoothgrad + random
  attrib diffroar -M sample:blockdigits-robust -m gradient -m ig --seeds 3
  attrib diffroar -M sample:synthetic-robust --dataset synthetic -m gradient --k 0.1 --seeds 3
  attrib diffroar -M timm:resnet18 --no-pretrained --dataset torchvision:CIFAR10 --data-dir ~/data --n-train 5000
  attrib diffroar ... --executor ray      each retrain a Ray task on a local cluster (or --address auto)
  attrib diffroar ... --executor ray --address HOST:PORT --gpus-per-job 0.25    four retrains per GPU
  attrib diffroar ... --plan-only        write the jobs; run them anywhere with
                                         python -m attrib.jobs.diffroar OUT/jobs/*.json
Rerunning the same command into the same --out resumes: finished retrains are kept.
Exit codes: 0 done, 1 some images of a folder data set could not be read (evaluated without them),
2 usage error."""


def _floats(ctx, param, value: tuple[str, ...]) -> list[float]:
    try:
        ks = [float(v) for v in listed(value)]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated fractions like 0.05,0.1, got {','.join(value)!r}") from None
    if not ks or any(not 0 < k <= 1 for k in ks):
        raise click.BadParameter("each k must be a fraction in (0, 1]")
    return sorted(set(ks))


def _classes(ctx, param, value: tuple[str, ...]) -> list[int | str] | None:
    """Class indices, or names (a folder's, CIFAR-10's "cat"), which the data set resolves."""
    if not value:
        return None
    return [int(v) if v.lstrip("-").isdigit() else v for v in listed(value)]


@click.command(cls=Command, epilog=EPILOG)
@click.option("--model", "-M", "model_spec", default="sample:blockdigits-standard", show_default=True,
              metavar="SPEC", shell_complete=completion.model_spec,
              help="Model under evaluation (sample:NAME, timm:NAME, torchvision:NAME or "
                   "your code's FILE.py:NAME[(ARGS)]; its architecture is retrained).")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Local state dict for a timm, torchvision, sample or your code's model.")
@click.option("--no-pretrained", is_flag=True, help=NO_PRETRAINED_HELP)
@click.option("--dataset", "-d", default=None, metavar="NAME", shell_complete=completion.dataset,
              help="blockdigits, blockdigits-top, synthetic, torchvision:NAME, folder:PATH (an ImageFolder tree, or "
                   "a .zip / .tar of one) [default: the sample model's own data set].")
@click.option("--classes", callback=_classes, multiple=True, metavar="I,J,...",
              help="Keep only these classes: indices or names (e.g. 0,1 or cat,dog; repeatable).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where torchvision data sets live.")
@click.option("--n-train", type=click.IntRange(1), help="Use at most this many training examples.")
@click.option("--n-test", type=click.IntRange(1), help="Use at most this many test examples.")
@click.option("--image-size", type=click.IntRange(1), metavar="PX", help=IMAGE_SIZE_HELP)
@PREPROCESS_OPTION
@method_options("gradient, ig, smoothgrad; random is always added")
@click.option("--k", "ks", multiple=True, default=["0.05,0.1,0.2,0.3,0.5"], show_default=True, callback=_floats,
              metavar="K1,K2", help="Fractions of coordinates kept (comma-separated or repeated).")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1), help="Retrains per (method, k, side).")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1), help="Epochs per retrain.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Retrain learning rate [default: model's].")
@click.option("--batch-size", type=click.IntRange(1), help="Retrain batch size [default: model's recipe].")
@click.option("--plan-only", is_flag=True, help="Compute attributions and write the job files, then stop.")
@executor_options("job")
@common_options
def diffroar(model_spec, weights, no_pretrained, dataset, classes, data_dir, n_train, n_test, image_size, preprocess,
             methods, settings, ks, seeds, epochs, lr, batch_size, plan_only, executor, common: Common) -> None:
    """Evaluate attribution methods by DiffROAR: retrain on the top-k vs the bottom-k coordinates.

    DiffROAR(method, k) = acc(top-k kept) - acc(bottom-k kept), each from a fresh model of the same
    architecture trained on masked data. > 0: the method ranks useful coordinates first; ~ 0: no better
    than the random control; < 0: it ranks them last.
    """
    from attrib.jobs import diffroar as job

    options = job.Options(model_spec, weights, not no_pretrained, dataset, classes, data_dir, n_train, n_test,
                          image_size, list(methods) or list(job.DEFAULT_METHODS), list(settings), ks, seeds, epochs, lr,
                          batch_size, common.seed, common.device, plan_only, executor, preprocess=list(preprocess))
    view = View(show=_plan_note if plan_only else _show, json=job.json_view,
                exit_code=job.exit_code, on_item=_job_done, interrupted=RESUMES, resumes=True)
    run_job(common, job, options, view, prefix="diffroar-")


def _job_done(ui: UI, result: dict, totals: dict) -> None:
    ui.detail(f"{result['job']['id']}: accuracy {result['accuracy']:.3f} ({duration(result['seconds'])})")


def _plan_note(ui: UI, record: dict, out: Path) -> None:
    """The plan's job files and what to do with them; the results when every job is already done."""
    if record["complete"]:
        _show(ui, record, out)
        return
    pending = record["jobs"] - record["jobs_done"]
    ui.info(f"wrote {record['jobs']} job files to {out}/jobs, {pending} still to run; run them with "
            f"`python -m attrib.jobs.diffroar {out}/jobs/*.json` (anywhere that sees the folder), then run this "
            "command again without --plan-only to collect the results")


def _show(ui: UI, record: dict, out: Path) -> None:
    from attrib.render.terminal import diffroar_table, share_table

    ui.show(diffroar_table(record))
    if record["null_block_share"]:
        ui.show(share_table(record["null_block_share"]))
    ui.info(f"model test accuracy {record['model_test_accuracy']:.3f}; {counted(record['jobs'], 'retrain')} took "
            f"{duration(record['retrain_seconds'])}; " + wrote(out, "run.json", record.get("plot", "")))
