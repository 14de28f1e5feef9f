"""``attrib explain``: options in, library calls, terminal output. No math here."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from attrib.cli.options import model_options
from attrib.cli.ui import UI

EPILOG = """\b
Examples:
  attrib explain                                  the four built-in samples, IG, default model
  attrib explain cat.jpg dogs/ 'shots/**/*.png'   files, folders (recursive) and globs
  attrib explain cat.jpg -m ig -m sg --set n_steps=100 --set sg.noise_frac=0.2
  attrib explain cat.jpg -M timm:resnet50 --weights resnet50.safetensors --target "tabby cat"
  attrib explain cat.jpg -m eg --background refs/ --html report.html
Exit codes: 0 all inputs explained, 1 some inputs failed, 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("inputs", nargs=-1)
@model_options
@click.option("--trust-remote-code", is_flag=True, help="Hugging Face: allow the model repo's own code to run.")
@click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
              help="Method name or alias (repeatable; default ig). See `attrib methods`.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Method option (repeatable); METHOD.KEY=VALUE for one method only.")
@click.option("--target", default="pred", show_default=True, help="pred, a class index, or a label name.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="Predictions shown.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of all random draws.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: attrib-runs/<time>].")
@click.option("--background", type=click.Path(exists=True, file_okay=False),
              help="Folder of reference images for expected_gradients [default: built-in set].")
@click.option("--magnitude", is_flag=True,
              help="Draw sum over channels of |attribution| (as the MoreauGrad paper) instead of signed maps.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@click.option("--json", "json_mode", is_flag=True, help="Print the results as one JSON object on stdout.")
@click.option("--force", is_flag=True, help="Redo inputs already done in --out.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@click.option("--verbose", "-v", is_flag=True, help="More detail.")
def explain(inputs, model_spec, weights, no_pretrained, trust_remote_code, methods, settings, target, top_k, seed,
            device, precision, out_dir, background, magnitude, html_path, json_mode, force, quiet,
            verbose) -> None:
    """Explain image classifiers' predictions with attribution methods.

    INPUTS are image files, folders or globs; with none, the built-in sample images are explained.
    Each input x method gets an overlay and a heatmap PNG; raw values go to attributions.npz and
    everything else to run.json in the run folder.
    """
    ui = UI(quiet=quiet, verbose=verbose, json_mode=json_mode)
    setup = _setup(ui, model_spec, weights, no_pretrained, trust_remote_code, methods, settings, target,
                   background, dict(top_k=top_k, seed=seed, precision=precision, force=force, magnitude=magnitude,
                                    device=device))
    out = Path(out_dir or Path("attrib-runs") / time.strftime("%Y%m%d-%H%M%S"))
    record = _run(ui, setup, list(inputs), out)
    if html_path:
        _write_html(ui, out, html_path)
    if json_mode:
        ui.emit_json(json_summary(record, out))
    failed = [r for r in record["inputs"] if r["status"] != "ok"]
    sys.exit(1 if failed else 0)


def _setup(ui, model_spec, weights, no_pretrained, trust_remote_code, methods, settings, target, background,
           run_options: dict):
    """Validate everything that can be wrong before any input runs; usage errors exit 2."""
    from attrib.data.images import InputError
    from attrib.explain import ExplainOptions, method_kwargs, resolve_device
    from attrib.methods import METHODS
    from attrib.methods.options import parse_overrides
    from attrib.models import ModelError, load_model
    from attrib.targets import parse_class

    try:
        names = list(dict.fromkeys(METHODS.canonical(m) for m in (methods or ("ig",))))
        configs = parse_overrides(names, list(settings))
        dev = resolve_device(run_options.pop("device"))
        ui.info("loading model ...")
        model = load_model(model_spec, weights=weights, pretrained=not no_pretrained,
                           trust_remote_code=trust_remote_code)
        if model.kind != "image":
            raise ValueError(f"{model.name} takes {model.kind} inputs, not images; evaluate it with "
                             "`attrib diffroar` or `attrib sanity` on its data set")
        options = ExplainOptions(names, configs, parse_class(target, model.labels), device=dev, **run_options)
        if "expected_gradients" in names:
            _add_background(ui, options, model, background, options.seed)
        for name in names:
            METHODS[name].make_config(**method_kwargs(name, options))
    except (ValueError, KeyError, ModelError, InputError) as error:
        raise click.UsageError(str(error).strip('"')) from None
    ui.info(f"model: {model.name}; methods: {', '.join(names)}; device: {dev}")
    return model, options


def _add_background(ui, options, model, folder, seed) -> None:
    from attrib.data.backgrounds import default_background, folder_background

    if folder:
        options.background, options.background_name = folder_background(folder, model.preprocess)
    else:
        options.background, options.background_name = default_background(model.preprocess, seed)
    ui.info(f"expected_gradients background: {options.background_name}")


def _run(ui: UI, setup, inputs: list[str], out: Path) -> dict:
    from attrib.artifacts import RunDir
    from attrib.data.images import expand_inputs
    from attrib.explain import Events, rows_per_input, run_explain
    from attrib.render.terminal import input_table

    model, options = setup
    sources = expand_inputs(inputs)
    run = RunDir.open(out)
    with ui.progress() as progress:
        batch = progress.add_task("inputs", total=len(sources))
        rows = progress.add_task("passes", total=rows_per_input(options), visible=False)

        def started(index: int, name: str) -> None:
            progress.update(batch, description=f"[{index + 1}/{len(sources)}] {name}")
            progress.update(rows, completed=0, visible=True)

        def done(entry: dict) -> None:
            progress.advance(batch)
            if entry["status"] != "ok":
                ui.error(entry["error"])
            elif entry.get("skipped"):
                ui.detail(f"{entry['name']}: already done in {out} (use --force to redo)")
            ui.show(input_table(entry))

        events = Events(started, done, lambda n: progress.advance(rows, n), ui.warn)
        record = run_explain(model, sources, options, run, events)
    ok = sum(r["status"] == "ok" for r in record["inputs"])
    ui.info(f"{ok}/{len(record['inputs'])} inputs explained; wrote {out}/run.json, {out}/attributions.npz "
            f"and {out}/images/")
    return record


def _write_html(ui: UI, out: Path, html_path: str) -> None:
    from attrib.report.html import write_report

    write_report(out, html_path)
    ui.info(f"wrote {html_path}")


def json_summary(record: dict, out: Path) -> dict:
    """The --json object: the run's facts with file paths made absolute."""
    def files(entry: dict) -> list[dict]:
        return [{"method": a["method"], "target": a["target"], "target_label": a.get("target_label"),
                 "completeness_gap": a["completeness_gap"], "seconds": a["seconds"],
                 "overlay": str(out / a["overlay"]), "heatmap": str(out / a["heatmap"])}
                for a in entry.get("attributions", [])]

    inputs = [{"path": r["path"] or r["name"], "status": r["status"], "error": r["error"],
               "predictions": r.get("predictions", []), "attributions": files(r)} for r in record["inputs"]]
    return {"inputs": inputs, "out_dir": str(out), "model": record["model"]["name"],
            "methods": record["methods"], "seed": record["seed"], "device": record["device"],
            "background": record["background"]}
