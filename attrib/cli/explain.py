"""``attrib explain``: options in, the explain job, terminal output. No math here."""

from __future__ import annotations

from pathlib import Path

import click

from attrib.cli import completion
from attrib.cli.common import RESUMES, Command, Common, View, common_options, executor_options, method_options, \
    model_options, run_job, show_confusions, wrote
from attrib.cli.ui import UI
from attrib.errors import counted, duration

EPILOG = """\b
Examples:
  attrib explain                                  the four built-in samples, IG, default model
  attrib explain cat.jpg dogs/ 'shots/**/*.png'   files, folders (recursive) and globs
  attrib explain val.tar -M timm:resnet50 --target LOC_val_solution.csv   the images in a .tar or .zip
  attrib explain cat.jpg -m ig -m sg --set n_steps=100 --set sg.noise_frac=0.2
  attrib explain cat.jpg -M timm:resnet50 --weights resnet50.safetensors --target "tabby cat"
  attrib explain imagenet/val/ -M timm:resnet50 --target folder      each image's class: its folder (n01440764/)
  attrib explain val/ -M timm:resnet50 --target LOC_val_solution.csv  each image's class from a table
  attrib explain val/ -M timm:resnet50 --truth folder --only wrong    why it got those wrong: their predictions
  attrib explain val/ -M timm:resnet50 --truth folder --only wrong --versus truth   ... rather than their classes
  find shots -name '*.jpg' -newer last.txt | attrib explain --inputs-from -     a list of inputs, one per line
  attrib explain cat.jpg -m eg --background refs/ --html report.html
  attrib explain photos/ --no-images --executor ray --address auto --gpus-per-worker 0.5
Exit codes: 0 all inputs explained, 1 some inputs failed, 2 usage error."""


@click.command(cls=Command, epilog=EPILOG)
@click.argument("inputs", nargs=-1, shell_complete=completion.image_inputs)
@model_options
@click.option("--trust-remote-code", is_flag=True, help="Hugging Face: allow the model repo's own code to run.")
@method_options("ig")
@click.option("--target", default="pred", show_default=True, metavar="CLASS|truth|folder|FILE",
              help="The class to explain: pred, a class index, a label name, or truth (each image's class as "
                   "--truth gives it); folder or FILE: short for --truth folder|FILE --target truth.")
@click.option("--truth", metavar="folder|FILE",
              help="Each image's true class, to judge the predictions by (top-1 accuracy, confusions, --only): "
                   "folder: the one each image's folder names (a label, an index or an ImageNet WordNet id, as "
                   "in ImageFolder layouts); or a .csv, .tsv, .txt or .json file naming each image's class.")
@click.option("--only", type=click.Choice(["wrong", "right"]),
              help="With the true classes given (--truth, or --target folder, FILE or a class): explain only the "
                   "inputs the model classifies wrong (right); the others are recorded with their predictions.")
@click.option("--versus", metavar="CLASS|runner-up|truth|pred",
              help="Explain the class against another: the maps then explain the difference of the two logits (why "
                   "this class rather than that one; overlays signed). runner-up: each input's highest-scoring "
                   "other class; truth: its true class (--truth); pred: its predicted class; or one class. Where "
                   "it is the class explained, the runner-up stands in.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="Predictions shown.")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16"]), default="fp32", show_default=True,
              help="fp32: true float32 (TF32 off); tf32: TF32 tensor cores allowed (GPU); bf16: autocast, for speed "
              "(its maps were about half off the exact ones on the default model, in L2).")
@click.option("--background", type=click.Path(exists=True, file_okay=False),
              help="Folder of reference images for expected_gradients [default: built-in set].")
@click.option("--view", type=click.Choice(["blend", "negative", "magnitude", "mask", "signed"]),
              help="Overlay style: blend (positive evidence over a dimmed image), negative, magnitude (sum |a|, "
                   "heatmaps too), mask (top 20% of the image), signed [default: blend; with --versus: signed]. Into an "
                   "earlier --out, its done inputs are drawn again from their saved maps.")
@click.option("--magnitude", is_flag=True, help="Same as --view magnitude (as the MoreauGrad paper draws maps).")
@click.option("--force", is_flag=True, help="Redo inputs already done in --out.")
@click.option("--no-images", is_flag=True, help="Write arrays and records only (no PNGs): for large runs.")
@click.option("--inputs-from", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="More inputs, one per line, or NUL-ended as find -print0 writes them (- reads standard "
                   "input): a list too long for the command line.")
@click.option("--limit", type=click.IntRange(1), help="Explain at most this many inputs.")
@click.option("--batch-size", type=click.IntRange(1), help="Images per engine call [default: sized to the engine].")
@click.option("--workers", type=click.IntRange(1), help="Threads decoding images ahead [default: min(4, CPUs)].")
@executor_options("worker")
@common_options
def explain(inputs, model_spec, weights, no_pretrained, labels, preprocess, trust_remote_code, methods, settings,
            target, truth, only, versus, top_k, precision, background, view, magnitude, force, no_images, inputs_from,
            limit, batch_size, workers, executor, common: Common) -> None:
    """Explain image classifiers' predictions with attribution methods.

    INPUTS are image files, folders (searched recursively, leaving out hidden files and attrib's own run
    folders), globs, or .zip / .tar archives (read in place); with none, the built-in sample images are
    explained.
    Each input x method gets an overlay and a heatmap PNG; raw values go to arrays/<input>.npz and
    everything else to run.json in the run folder.
    """
    from attrib.jobs import explain as job

    if magnitude and view not in (None, "magnitude"):
        raise click.UsageError(f"--magnitude is --view magnitude: it contradicts --view {view}")
    if no_images and (view or magnitude):
        raise click.UsageError("--no-images draws no pictures: --view and --magnitude have nothing to style")
    options = job.Options(list(inputs), model_spec, weights, not no_pretrained, trust_remote_code,
                          list(methods) or ["integrated_gradients"], list(settings), target, top_k, common.seed,
                          common.device, precision, background, "magnitude" if magnitude else view, force,
                          not no_images, limit, batch_size, workers, executor, labels=labels,
                          inputs_from=inputs_from, only=only, truth=truth, versus=versus,
                          preprocess=list(preprocess))
    run_job(common, job, options, View(show=_summary, json=job.json_view, exit_code=job.exit_code,
                                       on_item=_show_input, interrupted=RESUMES, resumes=True))


TABLES_UP_TO = 20  # inputs; larger runs show errors, the progress bar and the summary (-v: every table)


def _show_input(ui: UI, entry: dict, totals: dict) -> None:
    from attrib.render.terminal import input_table

    if entry.get("skipped"):
        ui.detail(f"{entry['name']}: already done (use --force to redo)")
    if entry["status"] == "excluded":
        best = entry["predictions"][0]
        how = "right" if best["index"] == entry.get("given") else "wrong"
        ui.detail(f"{entry['name']}: classified {how} ({best['label']}), so not explained (--only)")
    if entry["status"] == "ok" and (ui.verbose or (totals.get("inputs") or 0) <= TABLES_UP_TO):
        ui.show(input_table(entry))  # a failed input's one line is the job's error event


def _summary(ui: UI, record: dict, out: Path) -> None:
    s = record["summary"]
    skipped = f", {s['skipped']} already done" if s["skipped"] else ""
    if record.get("only"):
        right = "right" if record["only"] == "wrong" else "wrong"
        skipped += f", {s.get('excluded', 0)} not explained (classified {right}; --only {record['only']})"
    ui.info(f"{s['done']} explained{skipped}, {s['failed']} failed of {counted(s['inputs'], 'input')} "
            f"in {duration(s['seconds'])} "
            f"({s['images_per_second']:.2f} images/s); " + _top1(s)
            + wrote(out, "run.json", "inputs.jsonl", "arrays/", "images/", "overview.png"))
    show_confusions(ui, record["summary"].get("confusions", []))


def _top1(summary: dict) -> str:
    """The top-1 accuracy against the classes given by folders or a table, when they were."""
    top1 = summary.get("top1")
    return f"top-1 accuracy {top1['accuracy']:.1%} of {top1['of']} against their true classes; " if top1 else ""
