"""``attrib explain-text``: options in, the explain-text job, terminal output. No math here."""

from __future__ import annotations

from pathlib import Path

import click

from attrib.cli.common import (LABELS_OPTION, Command, Common, View, common_options, executor_options, pair_options,
                               run_job, show_confusions, text_model_options)
from attrib.cli.ui import UI
from attrib.errors import counted

EPILOG = """\b
Examples:
  attrib explain-text "a gripping, beautifully acted film" \\
      --model distilbert-base-uncased-finetuned-sst-2-english --lm bert-base-uncased
  attrib explain-text --file reviews.txt --model ./my-classifier --lm ./my-bert -m olm -m unk -m ig
  attrib explain-text --file dev.csv --column sentence --label-column label --model ./clf --lm ./bert
  attrib explain-text --file dev.csv --column sentence --label-column label --model ./clf --only wrong
  grep -i acting reviews.txt | attrib explain-text --file - --model ./clf -m unk --json
  attrib explain-text "A man plays a guitar." --pair "A person makes music." --model roberta-large-mnli
  attrib explain-text --file mnli.jsonl --column premise --pair-column hypothesis --model ./nli --lm ./bert
  attrib explain-text --file reviews.csv --column text --model ./clf --lm ./bert --executor ray --address auto
Exit codes: 0 all texts explained, 1 some texts failed, 2 usage error."""
INTERRUPTED = "{stopped}; the texts explained so far are in {out}/run.json: {again} goes on from there"


@click.command(cls=Command, epilog=EPILOG)
@click.argument("texts", nargs=-1)
@text_model_options
@click.option("--file", "text_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Texts: one per line, or CSV/JSONL (or a JSON array of objects), also .gz, .bz2 or .xz, or "
                   "Parquet (with pyarrow); - reads standard input.")
@click.option("--column", help="CSV/JSONL column holding the text [default: its column named text or sentence].")
@click.option("--label-column", help="CSV/JSONL column with each row's gold label (the explained class).")
@pair_options
@click.option("--target", help="The class to explain: pred, a class index, or a label name [default: each row's gold "
                               "label where --label-column gives one, else pred].")
@click.option("--only", type=click.Choice(["wrong", "right"]),
              help="With gold labels (--label-column) or --target: explain only the texts the classifier gets wrong "
                   "(right); the others are recorded with their prediction.")
@click.option("--versus", metavar="CLASS|runner-up|gold|pred",
              help="Explain the class against another: each score is then that of the difference of the two "
                   "classes' probabilities (why this class rather than that one). runner-up: each text's "
                   "highest-scoring other class; gold: its gold label; pred: its predicted class; or one class. "
                   "Where it is the class explained, the runner-up stands in.")
@click.option("--force", is_flag=True, help="Redo the texts an earlier run into --out explained.")
@LABELS_OPTION
@executor_options("worker")
@common_options
def explain_text(texts, text, text_file, column, label_column, pairs, pair_column, target, only, versus, force,
                 labels, executor, common: Common) -> None:
    """Explain a text classifier's predictions word by word (OLM, OLM-S, occlusion, gradients).

    TEXTS are given as arguments or with --file. Each word (punctuation is a word of its own) gets one
    relevance per method for the explained class; run.json holds everything, --html a coloured report. A
    classifier of text pairs (NLI, question answering) reads each text with its --pair or --pair-column, and
    the words of both are explained.
    """
    from attrib.jobs import explain_text as job

    options = job.Options(list(texts), text_file, column, label_column, list(pairs), pair_column, target, only, force,
                          versus, executor, **text, seed=common.seed, device=common.device, labels=labels)
    run_job(common, job, options, View(show=_summary, json=job.json_view, exit_code=job.exit_code,
                                       on_item=_show_text, interrupted=INTERRUPTED, resumes=True), prefix="text-")


def _show_text(ui: UI, entry: dict, totals: dict) -> None:
    from attrib.render.terminal import text_panel

    if entry.get("skipped"):
        ui.detail(f"{entry['name']}: already done (use --force to redo)")
    if entry["status"] == "ok":
        ui.show(text_panel(entry))
    elif entry["status"] == "excluded":
        judged = entry["target"] if entry.get("gold") is None else entry["gold"]
        how = "right" if entry["prediction"]["index"] == judged else "wrong"
        ui.detail(f"{entry['name']}: classified {how} ({entry['prediction']['label']}), so not explained (--only)")


def _summary(ui: UI, record: dict, out: Path) -> None:
    from attrib.render.terminal import correlation_table

    ok = [e for e in record["texts"] if e["status"] == "ok"]
    if len(record["methods"]) > 1 and ok:
        ui.show(correlation_table(record["correlations"], record["correlation_texts"]))
    top1 = record.get("top1")
    accuracy = f"; top-1 accuracy {top1['accuracy']:.1%} of {top1['of']} against the gold labels" if top1 else ""
    left = sum(e["status"] == "excluded" for e in record["texts"])
    excluded = f" ({left} classified {'right' if record.get('only') == 'wrong' else 'wrong'}: --only)" if left else ""
    done = record.get("already_done")
    excluded += f" ({done} already done)" if done else ""
    ui.info(f"{len(ok)} of {counted(len(record['texts']), 'text')} explained{excluded}{accuracy}; wrote "
            f"{out}/run.json")
    show_confusions(ui, record.get("confusions", []))
