"""``attrib explain-text``: options in, library calls, terminal output. No math here."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from attrib.cli.ui import UI

EPILOG = """\b
Examples:
  attrib explain-text "a gripping, beautifully acted film" \\
      --model distilbert-base-uncased-finetuned-sst-2-english --lm bert-base-uncased
  attrib explain-text --file reviews.txt --model ./my-classifier --lm ./my-bert -m olm -m unk -m ig
  attrib explain-text --file dev.csv --column sentence --label-column label --model ./clf --lm ./bert
Exit codes: 0 all texts explained, 1 some texts failed, 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("texts", nargs=-1)
@click.option("--model", "-M", "model_spec", required=True, metavar="SPEC",
              help="Hugging Face sequence classifier: hub id (online) or a local save_pretrained folder.")
@click.option("--lm", "lm_spec", default=None, metavar="SPEC",
              help="Masked LM for olm/olm_s: hub id or local folder [default: bert-base-uncased].")
@click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
              help="olm, olm_s, unk, delete, gradient, gradient_x_input, ig (repeatable; default olm, olm_s).")
@click.option("--file", "text_file", type=click.Path(dir_okay=False), help="Texts: one per line, or CSV/JSONL.")
@click.option("--column", help="CSV/JSONL column holding the text.")
@click.option("--label-column", help="CSV/JSONL column with each row's gold label (the explained class).")
@click.option("--target", default="pred", show_default=True, help="pred, a class index, or a label name.")
@click.option("--n-samples", default=100, show_default=True, type=click.IntRange(1), help="LM draws per word.")
@click.option("--n-steps", default=100, show_default=True, type=click.IntRange(1), help="IG steps.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1), help="Sentences per forward.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--trust-remote-code", is_flag=True, help="Allow the model repos' own code to run.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Run folder [default: attrib-runs/<time>].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here.")
@click.option("--json", "json_mode", is_flag=True, help="Print the results as one JSON object on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@click.option("--verbose", "-v", is_flag=True, help="More detail.")
def explain_text(texts, model_spec, lm_spec, methods, text_file, column, label_column, target, n_samples, n_steps,
                 seed, batch_size, device, trust_remote_code, out_dir, html_path, json_mode, quiet, verbose) -> None:
    """Explain a text classifier's predictions word by word (OLM, OLM-S, occlusion, gradients).

    TEXTS are given as arguments or with --file. Each word (punctuation is a word of its own) gets one
    relevance per method for the explained class; run.json holds everything, --html a coloured report.
    """
    ui = UI(quiet=quiet, verbose=verbose, json_mode=json_mode)
    classifier, lm, options, items = _setup(ui, list(texts), model_spec, lm_spec, methods, text_file, column,
                                            label_column, target, n_samples, n_steps, seed, batch_size, device,
                                            trust_remote_code)
    out = Path(out_dir or Path("attrib-runs") / time.strftime("text-%Y%m%d-%H%M%S"))
    record = _run(ui, classifier, lm, options, items, out)
    if html_path:
        from attrib.report.html import write_report

        write_report(out, html_path)
        ui.info(f"wrote {html_path}")
    if json_mode:
        ui.emit_json({"texts": [_json_entry(e) for e in record["texts"]], "correlations": record["correlations"],
                      "out_dir": str(out.resolve())})
    sys.exit(0 if all(e["status"] == "ok" for e in record["texts"]) else 1)


def _setup(ui, texts, model_spec, lm_spec, methods, text_file, column, label_column, target, n_samples, n_steps,
           seed, batch_size, device, trust_remote_code):
    """Validate everything before the work starts; usage errors exit 2."""
    from attrib.data.text import TextInputError, read_texts
    from attrib.explain import resolve_device
    from attrib.explain_text import NEEDS_LM, TextOptions, canonical_method
    from attrib.models import ModelError
    from attrib.models.text_models import load_masked_lm, load_text_classifier
    from attrib.targets import parse_class

    try:
        names = list(dict.fromkeys(canonical_method(m) for m in (methods or ("olm", "olm_s"))))
        items = read_texts(texts, text_file, column, label_column)
        if not items:
            raise ValueError("no texts: give them as arguments or with --file")
        dev = resolve_device(device)
        ui.info("loading models ...")
        classifier = load_text_classifier(model_spec, trust_remote_code=trust_remote_code, batch_size=batch_size,
                                          device=dev)
        lm = load_masked_lm(lm_spec, trust_remote_code=trust_remote_code, device=dev) if NEEDS_LM & set(names) \
            else None
        options = TextOptions(names, n_samples, n_steps, seed, parse_class(target, classifier.labels))
    except (ValueError, ModelError, TextInputError) as error:
        raise click.UsageError(str(error).strip('"')) from None
    ui.info(f"classifier: {classifier.name}; LM: {lm.name if lm else '—'}; methods: {', '.join(names)}; "
            f"{len(items)} texts")
    return classifier, lm, options, items


def _run(ui: UI, classifier, lm, options, items, out: Path) -> dict:
    from attrib.artifacts import atomic_write_json
    from attrib.evaluate.similarity import mean_pairwise_pearson
    from attrib.explain_text import run_explain_text
    from attrib.render.terminal import text_panel

    record = _record(classifier, lm, options)
    warned: set[str] = set()
    with ui.progress() as progress:
        task = progress.add_task("texts", total=len(items))

        def done(entry: dict) -> None:
            progress.advance(task)
            if entry["status"] != "ok":
                ui.error(entry["error"])
            else:
                ui.show(text_panel(entry))
                _warn_vanishing(ui, entry, warned)
            record["texts"].append(entry)
            atomic_write_json(out / "run.json", record)

        run_explain_text(classifier, lm, items, options, done)
    ok = [e["scores"] for e in record["texts"] if e["status"] == "ok"]
    record["correlations"] = mean_pairwise_pearson(ok)
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(out / "run.json", record)
    if len(options.methods) > 1 and ok:
        from attrib.render.terminal import correlation_table

        ui.show(correlation_table(record["correlations"], len(ok)))
    ui.info(f"{len(ok)}/{len(items)} texts explained; wrote {out}/run.json")
    return record


def _warn_vanishing(ui: UI, entry: dict, warned: set[str]) -> None:
    scores = entry["scores"].get("gradient")
    if scores and "gradient" not in warned and max(map(abs, scores)) < 1e-6 * max(entry["target_prob"], 1e-12):
        warned.add("gradient")
        ui.warn("gradient scores are ~0: summed over embedding dimensions, the gradient vanishes for models that "
                "LayerNorm their embeddings; use gradient_x_input or ig")


def _record(classifier, lm, options) -> dict:
    from attrib import __version__

    return {"kind": "explain_text", "attrib_version": __version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model": {"name": classifier.name, "labels": classifier.labels},
            "lm": lm.name if lm else None, "methods": options.methods, "n_samples": options.n_samples,
            "n_steps": options.n_steps, "seed": options.seed, "target": options.target, "texts": [],
            "correlations": {}, "score": "softmax probability of the target class"}


def _json_entry(entry: dict) -> dict:
    if entry["status"] != "ok":
        return {"text": entry["text"], "error": entry["error"]}
    return {"text": entry["text"], "words": entry["words"], "prediction": entry["prediction"],
            "target": entry["target"], "scores": entry["scores"]}
