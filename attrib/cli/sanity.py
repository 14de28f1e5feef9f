"""``attrib sanity``: a sanity-check report for a model and its attribution methods. No math here."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from attrib.cli.options import model_options
from attrib.cli.ui import UI

EPILOG = """\b
Examples:
  attrib sanity                                   embedded model, its sample images, four methods
  attrib sanity -M sample:blockdigits-standard    a sample model on 8 of its test images (+ data randomization)
  attrib sanity cat.jpg -M timm:resnet50 -m ig -m gradient --tests randomization --layers fc,layer4.1
  attrib sanity -M sample:blockdigits-robust --tests robustness --radii 0.5,1 --norm linf
Maps are computed at a reduced budget (ig 32 steps, smoothgrad 16 samples, moreaugrad 12 x 4); --set wins.
Exit codes: 0 report written, 1 some inputs could not be read, 2 usage error."""


def _list(ctx, param, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _radii(ctx, param, value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        radii = sorted({float(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated radii like 0.5,1, got {value!r}") from None
    if not radii or radii[0] <= 0:
        raise click.BadParameter("radii must be positive")
    return radii


@click.command(epilog=EPILOG)
@click.argument("inputs", nargs=-1)
@model_options
@click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
              help="Method (repeatable; default gradient, ig, smoothgrad, moreaugrad).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Method option, as in explain.")
@click.option("--tests", callback=_list, default="randomization,robustness,completeness", show_default=True,
              help="Which checks to run.")
@click.option("--layers", callback=_list, metavar="A,B", help="Layer groups to randomize (default: spread out).")
@click.option("--max-layers", default=3, show_default=True, type=click.IntRange(2),
              help="Layer groups reported when --layers is not given.")
@click.option("--radii", callback=_radii, metavar="R1,R2", help="Perturbation radii [default: 2%,5% of |x|].")
@click.option("--norm", type=click.Choice(["l2", "linf"]), default="l2", show_default=True)
@click.option("--dataset", "-d", metavar="NAME", help="Take inputs from this data set's test split.")
@click.option("--n", "n_inputs", default=8, show_default=True, type=click.IntRange(1), help="Inputs from --dataset.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: attrib-runs/<time>].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@click.option("--json", "json_mode", is_flag=True, help="Print the results as one JSON object on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@click.option("--verbose", "-v", is_flag=True, help="More detail.")
def sanity(inputs, model_spec, weights, no_pretrained, methods, settings, tests, layers, max_layers, radii, norm,
           dataset, n_inputs, seed, device, out_dir, html_path, json_mode, quiet, verbose) -> None:
    """Check whether attribution maps depend on the model, survive small perturbations, and add up.

    Three parts (--tests): model-parameter randomization (cascading and independent; data randomization for
    sample models), robustness to random and top-k-attack perturbations that keep the predicted label, and the
    completeness of IG / EG. Ends with one verdict per method and test, with the numbers behind it.
    """
    ui = UI(quiet=quiet, verbose=verbose, json_mode=json_mode)
    model, x, names, errors, config = _setup(ui, list(inputs), model_spec, weights, no_pretrained, methods,
                                             settings, tests, layers, max_layers, radii, norm, dataset, n_inputs,
                                             seed, device)
    out = Path(out_dir or Path("attrib-runs") / time.strftime("sanity-%Y%m%d-%H%M%S"))
    record = _run(ui, model, x, names, errors, config, out)
    if html_path:
        from attrib.report.html import write_report

        write_report(out, html_path)
        ui.info(f"wrote {html_path}")
    if json_mode:
        keys = ("randomization", "robustness", "completeness", "verdicts")
        ui.emit_json({**{k: record[k] for k in keys}, "out_dir": str(out.resolve())})
    sys.exit(1 if errors else 0)


def _setup(ui, inputs, model_spec, weights, no_pretrained, methods, settings, tests, layers, max_layers, radii,
           norm, dataset, n_inputs, seed, device):
    """Validate everything before the long work starts; usage errors exit 2."""
    from attrib.data.datasets import DatasetError
    from attrib.evaluate.sanity import TESTS, SanityConfig, default_radii, sanity_inputs, with_budget
    from attrib.explain import resolve_device
    from attrib.methods import METHODS
    from attrib.methods.options import parse_overrides
    from attrib.models import ModelError, load_model

    try:
        names = list(dict.fromkeys(METHODS.canonical(m) for m in (methods or ("gradient", "ig", "smoothgrad",
                                                                              "moreaugrad"))))
        unknown = [t for t in tests if t not in TESTS]
        if unknown:
            raise ValueError(f"unknown test {unknown[0]!r}; choose from {', '.join(TESTS)}")
        configs = with_budget(names, parse_overrides(names, list(settings)))
        ui.info("loading model and inputs ...")
        model = load_model(model_spec, weights=weights, pretrained=not no_pretrained)
        x, input_names, errors = sanity_inputs(model, inputs, dataset, n_inputs)
        for error in errors:
            ui.error(error)
        if len(x) == 0:
            raise ValueError("no usable inputs")
        _add_background(names, configs, model, x, seed)
        for name in names:
            METHODS[name].make_config(**configs[name])
        config = SanityConfig(names, configs, list(tests), layers, max_layers, radii or default_radii(x), norm,
                              seed=seed, device=resolve_device(device))
        if layers:
            from attrib.evaluate.randomization import layer_groups, select

            select(layer_groups(model.module), layers, None)
    except (ValueError, KeyError, ModelError, DatasetError) as error:
        raise click.UsageError(str(error).strip('"')) from None
    ui.info(f"model: {model.name}; {len(x)} inputs; methods: {', '.join(names)}; tests: {', '.join(tests)}; "
            f"radii: {', '.join(f'{r:g}' for r in config.radii)} ({norm})")
    return model, x, input_names, errors, config


def _add_background(names, configs, model, x, seed) -> None:
    """expected_gradients: the built-in references for image models, else the inputs themselves."""
    if "expected_gradients" not in names or "background" in configs["expected_gradients"]:
        return
    if model.kind == "image" and model.preprocess is not None and model.preprocess.channels == 3:
        from attrib.data.backgrounds import default_background

        configs["expected_gradients"]["background"] = default_background(model.preprocess, seed)[0]
    else:
        configs["expected_gradients"]["background"] = x


def _run(ui: UI, model, x, names, errors, config, out: Path) -> dict:
    from attrib.evaluate.sanity import Events, permuted_label_model, run_sanity, save_report

    start = time.perf_counter()
    permuted = None
    if "randomization" in config.tests and model.card.get("recipe"):
        ui.info("data randomization: training the sample's recipe on permuted labels ...")
        permuted = permuted_label_model(model, config.seed)
    with ui.progress() as progress:
        task = progress.add_task("sanity checks", total=None)
        events = Events(total=lambda n: progress.update(task, total=n),
                        advance=lambda what: progress.update(task, advance=1, description=f"sanity: {what}"))
        result = run_sanity(model, x, config, events, permuted)
    record = save_report(out, model, names, config, result, time.perf_counter() - start)
    _show(ui, record, out)
    return record


def _show(ui: UI, record: dict, out: Path) -> None:
    from attrib.render.terminal import sanity_tables

    for table in sanity_tables(record):
        ui.show(table)
    ui.info(f"{len(record['inputs'])} inputs checked in {record['seconds']:.0f} s; wrote {out}/run.json and plots")
