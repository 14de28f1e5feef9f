"""``attrib diffroar``: evaluate attribution methods by remove-and-retrain (DiffROAR). No math here."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from attrib.cli.ui import UI

EPILOG = """\b
Examples:
  attrib diffroar                                        blockdigits-standard, gradient/ig/smoothgrad + random
  attrib diffroar -M sample:blockdigits-robust -m gradient -m ig --seeds 3
  attrib diffroar -M sample:synthetic-robust --dataset synthetic -m gradient --k 0.1 --seeds 3
  attrib diffroar -M timm:resnet18 --no-pretrained --dataset torchvision:CIFAR10 --data-dir ~/data --n-train 5000
  attrib diffroar ... --plan-only        write the jobs; run them anywhere with
                                         python -m attrib.evaluate.diffroar OUT/jobs/*.json
Rerunning the same command into the same --out resumes: finished retrains are kept.
Exit codes: 0 done, 2 usage error."""


def _floats(ctx, param, value: str) -> list[float]:
    try:
        ks = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated fractions like 0.05,0.1, got {value!r}") from None
    if not ks or any(not 0 < k <= 1 for k in ks):
        raise click.BadParameter("each k must be a fraction in (0, 1]")
    return sorted(set(ks))


def _ints(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated class indices like 0,1, got {value!r}") from None


@click.command(epilog=EPILOG)
@click.option("--model", "-M", "model_spec", default="sample:blockdigits-standard", show_default=True,
              metavar="SPEC", help="Model under evaluation (sample:NAME or timm:NAME; its architecture is retrained).")
@click.option("--weights", type=click.Path(dir_okay=False), help="Local state dict for a timm model.")
@click.option("--no-pretrained", is_flag=True, help="timm: random weights instead of downloading.")
@click.option("--dataset", "-d", default=None, metavar="NAME",
              help="blockdigits, blockdigits-top, synthetic, torchvision:NAME, folder:PATH "
                   "[default: the sample model's own data set].")
@click.option("--classes", callback=_ints, metavar="I,J,...", help="Keep only these classes (e.g. 0,1).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where torchvision data sets live.")
@click.option("--n-train", type=click.IntRange(1), help="Use at most this many training examples.")
@click.option("--n-test", type=click.IntRange(1), help="Use at most this many test examples.")
@click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
              help="Method to evaluate (repeatable; default gradient, ig, smoothgrad). random is always added.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Method option, as in explain.")
@click.option("--k", "ks", default="0.05,0.1,0.2,0.3,0.5", show_default=True, callback=_floats,
              help="Fractions of coordinates kept.")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(1), help="Retrains per (method, k, side).")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(1), help="Epochs per retrain.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Retrain learning rate [default: model's].")
@click.option("--batch-size", type=click.IntRange(1), help="Retrain batch size [default: model's recipe].")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of the attributions.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: attrib-runs/<time>].")
@click.option("--plan-only", is_flag=True, help="Compute attributions and write the job files, then stop.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@click.option("--json", "json_mode", is_flag=True, help="Print the results as one JSON object on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@click.option("--verbose", "-v", is_flag=True, help="More detail.")
def diffroar(model_spec, weights, no_pretrained, dataset, classes, data_dir, n_train, n_test, methods, settings,
             ks, seeds, epochs, lr, batch_size, seed, device, out_dir, plan_only, html_path, json_mode, quiet,
             verbose) -> None:
    """Evaluate attribution methods by DiffROAR: retrain on the top-k vs the bottom-k coordinates.

    DiffROAR(method, k) = acc(top-k kept) - acc(bottom-k kept), each from a fresh model of the same
    architecture trained on masked data. > 0: the method ranks useful coordinates first; ~ 0: no better
    than the random control; < 0: it ranks them last.
    """
    ui = UI(quiet=quiet, verbose=verbose, json_mode=json_mode)
    model, config = _setup(ui, model_spec, weights, no_pretrained, dataset, classes, data_dir, n_train, n_test,
                           methods, settings, ks, seeds, epochs, lr, batch_size, seed, device)
    out = Path(out_dir or Path("attrib-runs") / time.strftime("diffroar-%Y%m%d-%H%M%S"))
    record = _run(ui, model, config, out, plan_only)
    if plan_only:
        ui.info(f"wrote {record['jobs']} job files to {out}/jobs; run them with "
                f"`python -m attrib.evaluate.diffroar {out}/jobs/*.json`, then rerun this command to collect")
        sys.exit(0)
    _show(ui, record, out)
    if html_path:
        from attrib.report.html import write_report

        write_report(out, html_path)
        ui.info(f"wrote {html_path}")
    if json_mode:
        ui.emit_json({"model": record["model"]["name"], "dataset": record["dataset"]["name"],
                      "results": [{k: r[k] for k in ("method", "k", "diffroar", "std", "acc_top", "acc_bottom")}
                                  for r in record["results"]],
                      **({"null_block_share": record["null_block_share"]} if record["null_block_share"] else {}),
                      "out_dir": str(out.resolve())})


def _setup(ui, model_spec, weights, no_pretrained, dataset, classes, data_dir, n_train, n_test, methods, settings,
           ks, seeds, epochs, lr, batch_size, seed, device):
    """Validate everything before the long work starts; usage errors exit 2."""
    from attrib.data.datasets import DatasetError
    from attrib.evaluate.diffroar import CONTROL, DiffRoarConfig, DiffRoarError, check_compatible, dataset_of
    from attrib.explain import resolve_device
    from attrib.methods import METHODS
    from attrib.methods.options import parse_overrides
    from attrib.models import ModelError, load_model

    try:
        names = [m for m in dict.fromkeys(METHODS.canonical(m) for m in methods if m != CONTROL)] if methods \
            else ["gradient", "integrated_gradients", "smoothgrad"]
        configs = parse_overrides(names, list(settings))
        for name in names:
            METHODS[name].make_config(**{k: v for k, v in configs.get(name, {}).items()})
        ui.info("loading model and data ...")
        model = load_model(model_spec, weights=weights, pretrained=not no_pretrained)
        name = dataset or model.card.get("dataset")
        if name is None:
            raise ValueError(f"--dataset is required for {model.name} (it does not say what it was trained on)")
        spec = {"name": name, "seed": 0, "classes": classes, "data_dir": data_dir, "n_train": n_train,
                "n_test": n_test}
        check_compatible(model, dataset_of(spec))
        config = DiffRoarConfig(model_spec, spec, names, configs, ks, seeds, epochs, lr, batch_size, seed,
                                resolve_device(device))
    except (ValueError, KeyError, ModelError, DatasetError, DiffRoarError) as error:
        raise click.UsageError(str(error).strip('"')) from None
    model.module.to(config.device)
    ui.info(f"model: {model.name}; data: {name}; methods: {', '.join(config.all_methods)}; device: {config.device}")
    return model, config


def _run(ui: UI, model, config, out: Path, plan_only: bool) -> dict:
    from attrib.evaluate.diffroar import Events, run_diffroar

    with ui.progress() as progress:
        task = progress.add_task("", total=None, visible=False)

        def stage(name: str, total: int) -> None:
            progress.update(task, description=name, total=total, completed=0, visible=total > 0)

        def planned(n_jobs: int, pending: int, seconds: float) -> None:
            done = f" ({n_jobs - pending} already done in {out})" if pending < n_jobs else ""
            ui.info(f"{n_jobs} retrains = {len(config.all_methods)} methods x {len(config.ks)} k x 2 sides x "
                    f"{config.seeds} seeds{done}; {pending} to run, about {_duration(seconds)}")

        def job_done(result: dict) -> None:
            job = result["job"]
            ui.detail(f"{job['id']}: accuracy {result['accuracy']:.3f} ({result['seconds']} s)")

        events = Events(stage, lambda n: progress.advance(task, n), job_done)
        return run_diffroar(model, config, out, events, plan_only=plan_only, on_plan=planned)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _show(ui: UI, record: dict, out: Path) -> None:
    from attrib.render.terminal import diffroar_table, share_table

    ui.show(diffroar_table(record))
    if record["null_block_share"]:
        ui.show(share_table(record["null_block_share"]))
    off = [r for r in record["results"] if r["method"] == "random" and abs(r["diffroar"]) > 0.06]
    for r in off:
        ui.warn(f"the random control is {r['diffroar']:+.3f} at k = {r['k']:g}: retrain noise is large here; "
                "use more --seeds or --epochs before trusting differences of this size")
    ui.info(f"model test accuracy {record['model_test_accuracy']:.3f}; {record['jobs']} retrains took "
            f"{record['retrain_seconds']:.0f} s; wrote {out}/run.json and {out}/{record.get('plot', '')}")
