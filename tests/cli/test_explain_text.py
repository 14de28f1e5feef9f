"""attrib explain-text: --json schema, files and columns, per-text errors, offline hub errors, HTML."""

import json
import os
from pathlib import Path

import numpy as np

from tests.cli.conftest import parse_json


def test_json_schema_and_run_folder(run_cli, text_models, tmp_path):
    result = run_cli("explain-text", "the movie was great", "a dull film", "-M", text_models["clf"], "--lm",
                     text_models["lm"], "-m", "olm", "-m", "olm_s", "-m", "unk", "--n-samples", "10",
                     "--out", tmp_path, "--json", "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    data = parse_json(result)
    assert set(data) == {"texts", "correlations", "correlation_texts", "top1", "confusions", "warnings", "out_dir"}
    assert data["top1"] is None and data["confusions"] == []  # no gold labels
    assert len(data["texts"]) == 2
    first = data["texts"][0]
    assert set(first) == {"name", "text", "status", "words", "prediction", "target", "target_from", "gold", "scores",
                          "gaps", "faithfulness", "cut"} and first["status"] == "ok" and first["gold"] is None
    assert first["cut"] is None and first["target_from"] == "prediction"
    assert [t["name"] for t in data["texts"]] == ["text 1", "text 2"] and data["warnings"] == []
    assert first["words"] == ["the", "movie", "was", "great"] and set(first["prediction"]) == {"index", "label", "prob"}
    assert set(first["scores"]) == {"olm", "olm_s", "unk"} and all(len(v) == 4 for v in first["scores"].values())
    assert set(data["correlations"]["olm"]) == {"olm_s", "unk"}
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["kind"] == "explain_text" and record["n_samples"] == 10
    html = (tmp_path / "r.html").read_text()
    assert "movie" in html and "Pearson" in html and "<script" not in html
    assert '<td dir="auto"' in html  # a right-to-left text (Arabic, Hebrew) is laid out as such


def test_empty_text_fails_alone_and_exits_1(run_cli, text_models, tmp_path):
    lines = tmp_path / "t.txt"
    lines.write_text("good\n")
    result = run_cli("explain-text", "  ", "<script>x</script> fine", "--file", lines, "-M", text_models["clf"],
                     "-m", "unk", "-m", "delete", "--out", tmp_path / "o", "--json", "--html", tmp_path / "r.html")
    assert result.exit_code == 1
    texts = parse_json(result)["texts"]
    assert texts[0] == {"name": "text 1", "text": "  ", "status": "error",
                        "error": "text 1: empty text (no words to explain)"}
    assert texts[2]["name"] == "t.txt:1"
    assert len(texts) == 3 and "scores" in texts[1] and "scores" in texts[2]
    html = (tmp_path / "r.html").read_text()
    assert "&lt;script&gt;x&lt;/script&gt; fine" in html and "<script>" not in html  # the text line, escaped


def test_a_text_that_names_a_file_is_warned_of(run_cli, text_models, tmp_path, monkeypatch):
    """`attrib explain-text reviews.csv` explained the words "reviews . csv" and said nothing."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_text("text\ngood\n")
    result = run_cli("explain-text", "reviews.csv", "a good film", "-M", text_models["clf"], "-m", "unk",
                     "--out", tmp_path / "o")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 0 and said.count("warning:") == 1
    assert "warning: 'reviews.csv' is explained as a text, though it names a file; to explain the texts in it, " \
        "use --file reviews.csv" in said


def test_options_this_run_does_not_use_are_warned_of(run_cli, text_models, tmp_path):
    """--lm without an LM method, and --column / --label-column without --file, were silently ignored."""
    result = run_cli("explain-text", "a good film", "-M", text_models["clf"], "-m", "unk", "--lm", text_models["lm"],
                     "--label-column", "label", "--out", tmp_path / "o")
    said = " ".join(result.stderr.split())
    assert result.exit_code == 0 and said.count("warning:") == 2
    assert f"warning: --lm {text_models['lm']} is not used: no method of unk draws from a language model " \
        "(olm, olm_s do)" in said
    assert "warning: --label-column label is not used: it names a column of --file's CSV or JSONL rows" in said


def test_a_bad_json_line_fails_alone_and_exits_1(run_cli, text_models, tmp_path):
    """One malformed line of a JSONL file stopped the whole run with a usage error."""
    rows = tmp_path / "t.jsonl"
    rows.write_text('{"text": "good fun"}\nnot json\n{"text": "a fine day"}\n')
    result = run_cli("explain-text", "--file", rows, "--column", "text", "-M", text_models["clf"], "-m", "unk",
                     "--out", tmp_path / "o", "--json")
    texts = parse_json(result)["texts"]
    assert result.exit_code == 1 and [t["name"] for t in texts] == ["t.jsonl:1", "t.jsonl:2", "t.jsonl:3"]
    assert "scores" in texts[0] and "scores" in texts[2]
    assert texts[1]["error"] == f"{rows}:2: not a JSON line (Expecting value)"


def test_the_summary_counts_texts_in_words(run_cli, text_models, tmp_path):
    result = run_cli("explain-text", "good fun", " ", "-M", text_models["clf"], "-m", "unk", "-m", "delete",
                     "--out", tmp_path / "o")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and f"1 of 2 texts explained; wrote {tmp_path / 'o'}/run.json" in said
    assert "(mean over 1 text where both vary)" in said
    one_word = run_cli("explain-text", "good fun", "fun", "great movie", "-M", text_models["clf"], "-m", "unk",
                       "-m", "delete", "--out", tmp_path / "p", "--json")
    assert parse_json(one_word)["correlation_texts"] == {"unk": {"delete": 2}, "delete": {"unk": 2}}


def test_each_method_names_its_strongest_words_with_scores(run_cli, text_models, tmp_path):
    """Off a terminal the colours are gone: the words alone said nothing about relevance."""
    result = run_cli("explain-text", "a dull and boring film", "-M", text_models["clf"], "-m", "unk",
                     "--out", tmp_path / "o")
    scores = json.loads((tmp_path / "o" / "run.json").read_text())["texts"][0]["scores"]["unk"]
    words = ["a", "dull", "and", "boring", "film"]
    top = sorted(range(5), key=lambda i: -abs(scores[i]))[:3]
    expected = ", ".join(f"{words[i]}={scores[i]:+.2g}" for i in top)
    assert result.exit_code == 0 and expected in " ".join(result.output.split())


def test_integrated_gradients_reports_its_completeness_gap_and_warns_over_5_percent(run_cli, text_models,
                                                                                       tmp_path):
    """The classifier with its weights scaled up is far from linear: 2 steps leave a gap of tens of percent."""
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification

    sharp = tmp_path / "sharp"
    shutil.copytree(text_models["clf"], sharp)
    model = AutoModelForSequenceClassification.from_pretrained(sharp)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(30 if parameter.ndim == 2 else 1)
    model.save_pretrained(sharp)
    texts = ["the movie was great fun", "a dull and boring film"]
    coarse = run_cli("explain-text", *texts, "-M", sharp, "-m", "ig", "-m", "unk", "--n-steps", "2",
                     "--out", tmp_path / "a", "--json")
    gaps = [t["gaps"] for t in parse_json(coarse)["texts"]]
    assert all(set(g) == {"integrated_gradients"} and g["integrated_gradients"] > 0.05 for g in gaps)
    warned = [line for line in coarse.stderr.splitlines() if "completeness gap" in line]
    assert len(warned) == 2 and warned[0].startswith("warning: text 1 / integrated_gradients: completeness gap")
    spent = run_cli("explain-text", texts[0], "-M", sharp, "-m", "ig", "--n-steps", "8", "--set", "rule=adaptive",
                    "--out", tmp_path / "c", "--json", "--html", tmp_path / "c.html")
    (note,) = parse_json(spent)["texts"][0]["faithfulness"]["integrated_gradients"]
    assert note.startswith("the adaptive rule spent its budget of 8 steps before reaching a gap within tol 1.0%")
    assert f"warning: text 1 / integrated_gradients: {note}" in spent.stderr
    assert "integrated_gradients: the adaptive rule spent its budget of 8 steps" in (tmp_path / "c.html").read_text()
    fine = run_cli("explain-text", *texts, "-M", sharp, "-m", "ig", "--n-steps", "64", "--out", tmp_path / "b",
                   "--html", tmp_path / "b.html")
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert all(t["gaps"]["integrated_gradients"] < 0.01 for t in record["texts"]) and "warning" not in fine.stderr
    html = (tmp_path / "b.html").read_text()
    assert "completeness gap" in fine.stdout and "completeness gap" in html
    assert record["methods"][0]["unused"] == ["blur_sigma_frac", "match_steps", "start_steps", "tol"]
    assert "<code>rule=gausslegendre</code>" in html and "tol=" not in html  # the report leaves out unused options


def test_gold_labels_from_a_csv_column(run_cli, text_models, tmp_path):
    table = tmp_path / "d.csv"
    table.write_text("sentence,label\ngreat fun,positive\nboring,negative\nok,nonsense\n")
    result = run_cli("explain-text", "--file", table, "--column", "sentence", "--label-column", "label",
                     "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "o", "--json")
    texts = parse_json(result)["texts"]
    assert result.exit_code == 1 and [t.get("target") for t in texts[:2]] == [1, 0]
    assert [t.get("target_from") for t in texts[:2]] == ["gold label"] * 2
    assert "gold label: unknown target label 'nonsense'" in texts[2]["error"]
    result = run_cli("explain-text", "--file", table, "--column", "sentence", "--label-column", "label",
                     "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "p")
    lines = result.output.splitlines()  # a log's lines: each message and each text's header unbroken
    assert "error: d.csv:4: gold label: unknown target label 'nonsense' (use pred, a class index or a label " \
        "name: negative, positive)" in lines  # a model with few classes names them
    assert "d.csv:3: predicted " in "\n".join(lines)
    assert any(line.endswith("explaining positive (its gold label)") for line in lines)
    hits = sum(t["prediction"]["index"] == t["target"] for t in texts[:2])
    assert parse_json(run_cli("explain-text", "--file", table, "--column", "sentence", "--label-column", "label",
                              "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "q", "--json"))["top1"] == \
        {"correct": hits, "of": 2, "accuracy": round(hits / 2, 4)}
    assert f"3 texts explained; top-1 accuracy {hits / 2:.1%} of 2 against the gold labels" in result.output


def _predicted(run_cli, clf, tmp_path, n: int) -> tuple[list[str], Path, list[int]]:
    """n texts, the file holding them and the classifier's predictions for them."""
    texts = [f"word{i} fun" if i % 2 else f"boring {i}" for i in range(n)]
    plain = tmp_path / "t.txt"
    plain.write_text("\n".join(texts) + "\n")
    found = parse_json(run_cli("explain-text", "--file", plain, "-M", clf, "-m", "unk", "--out", tmp_path / "p",
                               "--json"))["texts"]
    return texts, plain, [t["prediction"]["index"] for t in found]


def test_gold_labels_in_another_order_than_the_models_are_warned_of(run_cli, text_models, tmp_path):
    """GLUE numbers MNLI's entailment 0, roberta-large-mnli's class 0 is contradiction: gold labels in another
    order make every map explain a class the text is not, and the classifier no better than chance on them."""
    texts, plain, predicted = _predicted(run_cli, text_models["clf"], tmp_path, 50)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("s,l\n" + "".join(f"{t},{1 - p}\n" for t, p in zip(texts, predicted)))
    result = run_cli("explain-text", "--file", swapped, "--column", "s", "--label-column", "l",
                     "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "o", "--json", "--html",
                     tmp_path / "o.html")
    warning = ("top-1 accuracy 0.0% on 50 inputs against the classes the gold labels give is no better than "
               "chance (1/2 = 50.0%): do they follow the model's class order? The maps explain those classes")
    assert result.exit_code == 0 and warning in " ".join(result.stderr.split())
    assert parse_json(result)["warnings"] == [warning]
    html = (tmp_path / "o.html").read_text()
    assert "<td>0.0% of 50 inputs against their gold labels</td>" in html
    assert f"warning: {warning}".replace("'", "&#39;") in html
    assert "warning" not in run_cli("explain-text", "--file", plain, "-M", text_models["clf"], "-m", "unk",
                                    "--out", tmp_path / "q").stderr  # no gold labels, nothing judged


def test_only_wrong_explains_the_texts_the_classifier_gets_wrong(run_cli, text_models, tmp_path):
    """--only wrong: the texts whose prediction is not their gold label are explained; the others cost one forward
    pass, are recorded with their prediction and count in the accuracy."""
    texts, plain, predicted = _predicted(run_cli, text_models["clf"], tmp_path, 6)
    gold = [p if i < 4 else 1 - p for i, p in enumerate(predicted)]  # the last two: wrong
    table = tmp_path / "g.csv"
    table.write_text("s,l\n" + "".join(f"{t},{g}\n" for t, g in zip(texts, gold)))
    command = ["explain-text", "--file", table, "--column", "s", "--label-column", "l", "-M", text_models["clf"],
               "-m", "unk", "--json"]
    result = run_cli(*command, "--only", "wrong", "--out", tmp_path / "o", "--html", tmp_path / "o.html")
    out = parse_json(result)
    assert result.exit_code == 0, result.output
    assert [t["status"] for t in out["texts"]] == ["excluded"] * 4 + ["ok"] * 2
    assert all("scores" not in t and t["prediction"]["index"] == t["target"] for t in out["texts"][:4])
    assert [t["target"] for t in out["texts"][4:]] == gold[4:] and all(t["scores"]["unk"] for t in out["texts"][4:])
    assert out["top1"] == {"correct": 4, "of": 6, "accuracy": round(4 / 6, 4)}  # every text counts
    html = (tmp_path / "o.html").read_text()
    assert "only the texts classified wrong: 2 of 6 (4 left out)" in html
    assert [f"“{t}”" in html for t in texts] == [False] * 4 + [True] * 2
    right = parse_json(run_cli(*command, "--only", "right", "--out", tmp_path / "r"))
    assert [t["status"] for t in right["texts"]] == ["ok"] * 4 + ["excluded"] * 2
    assert "(6 already done)" in run_cli(*command, "--only", "wrong", "--out", tmp_path / "o").stderr
    switched = run_cli(*command, "--only", "right", "--out", tmp_path / "o")  # what --only decides is redone
    assert "(0 already done)" not in switched.stderr and "already done" not in switched.stderr
    assert [t["status"] for t in parse_json(switched)["texts"]] == ["ok"] * 4 + ["excluded"] * 2
    why = parse_json(run_cli(*command, "--only", "wrong", "--target", "pred", "--out", tmp_path / "w"))["texts"]
    assert [(t["status"], t["target"], t["target_from"], t["gold"]) for t in why[4:]] == \
        [("ok", p, "prediction", g) for p, g in zip(predicted[4:], gold[4:])]  # what it took them for
    assert [t["gold"] for t in why] == gold
    fixed = parse_json(run_cli(*command, "--target", "negative", "--out", tmp_path / "n"))
    assert {(t["target"], t["target_from"]) for t in fixed["texts"]} == {(0, "--target")}  # --target wins
    assert fixed["top1"] == {"correct": 4, "of": 6, "accuracy": round(4 / 6, 4)}  # judged by the gold labels
    table.write_text(table.read_text().replace(f"{texts[0]},{gold[0]}", f"{texts[0]},{1 - gold[0]}"))
    relabelled = run_cli(*command, "--only", "right", "--out", tmp_path / "o")  # a gold label edited: redone
    assert "(5 already done)" in relabelled.stderr and parse_json(relabelled)["texts"][0]["status"] == "excluded"
    plain_only = run_cli("explain-text", "--file", plain, "-M", text_models["clf"], "--only", "wrong", "--out",
                         tmp_path / "x")
    assert plain_only.exit_code == 2 and not (tmp_path / "x").exists()
    assert "--only wrong judges each prediction against the input's true class" in plain_only.output


def test_usage_errors_are_one_line(run_cli, text_models, tmp_path):
    (tmp_path / "blank.txt").write_text("\n  \n")
    cases = [(["hi", "-M", text_models["clf"], "-m", "lime"], "unknown text method 'lime'"),
             (["-M", text_models["clf"], "-m", "unk"], "no texts: give them as arguments or with --file"),
             (["--file", tmp_path / "blank.txt", "-M", text_models["clf"], "-m", "unk"],
              f"no texts: {tmp_path / 'blank.txt'} holds none"),
             (["hi", "-M", text_models["clf"], "-m", "unk", "--target", "neutral"], "unknown target label"),
             (["hi", "-M", "org/not-cached-model", "-m", "unk"], "pass a local folder"),
             (["hi", "-M", text_models["clf"]], "pass a local folder"),  # default LM bert-base-uncased, offline
             (["hi", "-M", text_models["lm"], "-m", "unk"],  # an LM's head is not a classifier's: never random
              "is not a sequence classifier checkpoint: it has no weights for bert.pooler.dense.bias"),
             (["hi", "-M", text_models["clf"], "--lm", text_models["clf"]],
              "is not a masked language model checkpoint: it has no weights for cls.predictions"),
             (["hi", "-M", "timm:resnet18", "-m", "unk"], "'timm:resnet18' names a timm model (for `attrib explain`"),
             (["hi", "-M", text_models["clf"], "-m", "ig", "--set", "baseline=blur"],  # each text failed alone
              "(the blur baseline blurs images); text embeddings (tokens, dim) are not"),
             (["hi", "-M", text_models["clf"], "-m", "ig", "--set", "baseline=black"],  # each text failed alone
              "(the black baseline is a picture); text embeddings (tokens, dim) are not"),
             (["hi", "-M", text_models["clf"], "--lm", "sample:synthetic-standard"],
              "names a sample image model (for `attrib explain`, `sanity` or `diffroar`), not a masked language model"),
             (["hi", "-M", "default", "-m", "unk"], "'default' names the built-in image model (for `attrib explain`"),
             (["hi", "-M", "tv:resnet18", "-m", "unk"], "'tv:resnet18' names a torchvision model"),
             (["hi", "-M", "nets.py:Net", "-m", "unk"], "'nets.py:Net' names your code's image model"),
             (["hi", "-M", text_models["clf"], "-m", "unk", "--address", "127.0.0.1:1"],
              "--address, CPU and GPU shares and worker counts apply to --executor ray only"),
             (["hi", "-M", text_models["clf"], "-m", "unk", "--executor", "ray", "--device", "cuda"],
              "with --executor ray the workers' device follows --gpus-per-worker (cpu here), not --device cuda")]
    for args, message in cases:
        result = run_cli("explain-text", *args, "--out", tmp_path / "x")
        assert result.exit_code == 2, (args, result.output)
        assert any(message in line for line in result.output.splitlines()), (args, result.output)  # unbroken
        assert "Traceback" not in result.output


def test_vanishing_embedding_gradient_is_warned(run_cli, text_models, tmp_path):
    result = run_cli("explain-text", "the movie was great", "-M", text_models["clf"], "-m", "gradient", "-m", "ig",
                     "--n-steps", "8", "--out", tmp_path, "--html", tmp_path / "r.html")
    assert result.exit_code == 0 and "gradient scores are ~0" in result.output
    (kept,) = json.loads((tmp_path / "run.json").read_text())["warnings"]  # for a reader of the report alone
    assert kept.startswith("gradient scores are ~0") and f"warning: {kept}" in (tmp_path / "r.html").read_text()


def test_text_past_the_token_limit_is_cut_at_a_word_and_warned(run_cli, text_models, tmp_path):
    from transformers import AutoTokenizer

    long = " ".join(["the movie was great"] * 30)  # 120 words, one token each; the models read 64 tokens
    result = run_cli("explain-text", long, "a dull film", "-M", text_models["clf"], "--lm", text_models["lm"],
                     "-m", "olm", "-m", "ig", "--n-samples", "4", "--n-steps", "4", "--out", tmp_path, "--json",
                     "--html", tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    first, second = parse_json(result)["texts"]
    cut = first["cut"]
    assert cut["words"] == 120 and cut["tokens"] == 64 and second["cut"] is None
    assert len(first["words"]) == cut["explained"] and all(len(s) == cut["explained"] for s in first["scores"].values())
    tokenizer = AutoTokenizer.from_pretrained(text_models["clf"])
    count = lambda n: len(tokenizer(" ".join(long.split()[:n]))["input_ids"])  # noqa: E731
    assert count(cut["explained"]) <= 64 < count(cut["explained"] + 1)  # every word that fits, and no more
    assert f"explained its first {cut['explained']} of 120 words" in result.stderr
    assert "only its first" in (tmp_path / "r.html").read_text()
    record = json.loads((tmp_path / "run.json").read_text())
    for text in record["texts"]:
        del text["cut"]  # as attrib wrote text runs before it cut texts
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert run_cli("report", tmp_path, "-o", tmp_path / "old.html").exit_code == 0


def test_a_text_the_model_fails_on_fails_alone(run_cli, text_models, tmp_path, monkeypatch):
    from attrib.models.text_models import TextClassifier

    real = TextClassifier.scores

    def flaky(self, texts):
        if any("boom" in t for t in texts):
            raise RuntimeError("CUDA out of memory (simulated)\nsecond line")
        return real(self, texts)

    monkeypatch.setattr(TextClassifier, "scores", flaky)
    result = run_cli("explain-text", "a boom film", "the movie was great", "-M", text_models["clf"], "-m", "unk",
                     "--out", tmp_path, "--json")
    assert result.exit_code == 1, result.output
    first, second = parse_json(result)["texts"]
    assert first["error"] == "text 1: CUDA out of memory (simulated)" and "scores" in second


def test_a_text_classifier_given_to_image_commands_points_to_explain_text(run_cli, text_models, images, tmp_path):
    for command in ("explain", "sanity"):
        result = run_cli(command, images / "im0.png", "-M", text_models["clf"], "--out", tmp_path / command)
        assert result.exit_code == 2 and "is a bert model" in result.output
        assert "explain it with `attrib explain-text`, check it with `attrib sanity-text`" in \
            " ".join(result.output.split())
    from transformers import ViTConfig, ViTForImageClassification

    ViTForImageClassification(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32)).save_pretrained(tmp_path / "vit")
    for args, message in ((["-M", tmp_path / "vit", "-m", "unk"], "cannot load it as a sequence classifier (an "
                           "image classifier? explain it with `attrib explain`)"),
                          (["-M", text_models["clf"], "--lm", tmp_path / "vit"], "cannot load it as a masked language "
                           "model (--lm takes a masked language model")):
        result = run_cli("explain-text", "hi", *args, "--out", tmp_path / "t")
        assert result.exit_code == 2 and "is a vit model" in result.output and message in result.output


def test_set_gives_a_method_its_options_and_refuses_bad_ones(run_cli, text_models, tmp_path):
    common = ["great fun", "-M", text_models["clf"], "-m", "sg", "-m", "ig", "--n-steps", "50",
              "--set", "sg.n_samples=3", "--set", "noise_frac=0.3", "--json"]
    result = run_cli("explain-text", *common, "--set", "ig.n_steps=7", "--out", tmp_path / "a", "--html",
                     tmp_path / "a.html")
    assert result.exit_code == 0
    html = (tmp_path / "a.html").read_text()
    assert "integrated_gradients (<code>n_steps=7</code>," in html  # what ran, not --n-steps
    configs = {m["method"]: m["config"] for m in json.loads((tmp_path / "a" / "run.json").read_text())["methods"]}
    assert configs["smoothgrad"]["n_samples"] == 3 and configs["smoothgrad"]["noise_frac"] == 0.3
    assert configs["integrated_gradients"]["n_steps"] == 7  # --set wins over --n-steps
    a = parse_json(result)["texts"][0]["scores"]
    result = run_cli("explain-text", *common, "--set", "ig.n_steps=8", "--out", tmp_path / "b")
    b = parse_json(result)["texts"][0]["scores"]
    assert a["smoothgrad"] == b["smoothgrad"] and a["integrated_gradients"] != b["integrated_gradients"]
    for bad, message in ((["--set", "bogus=1"], "unknown option 'bogus'"),
                         (["--set", "ig.n_steps=0"], "n_steps must be a positive integer, got 0")):
        result = run_cli("explain-text", "great fun", "-M", text_models["clf"], "-m", "ig", *bad, "--out",
                         tmp_path / "c")
        assert result.exit_code == 2 and message in result.output and not (tmp_path / "c").exists()


def test_ctrl_c_keeps_the_texts_explained_so_far(run_cli, text_models, tmp_path, monkeypatch):
    from attrib.models.text_models import TextClassifier

    real = TextClassifier.scores

    def interrupted(self, texts):
        if any("stop" in t for t in texts):
            raise KeyboardInterrupt
        return real(self, texts)

    monkeypatch.setattr(TextClassifier, "scores", interrupted)
    result = run_cli("explain-text", "great fun", "a dull film", "stop here", "good", "-M", text_models["clf"],
                     "-m", "unk", "--out", tmp_path / "o")
    assert result.exit_code == 130
    said = " ".join(result.output.split())
    assert f"interrupted; the texts explained so far are in {tmp_path / 'o'}/run.json: the same command goes on " \
        "from there" in said
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert [t["text"] for t in record["texts"]] == ["great fun", "a dull film"] and "finished" not in record
    scored = []
    monkeypatch.setattr(TextClassifier, "scores", lambda self, texts: scored.extend(texts) or real(self, texts))
    command = ["explain-text", "great fun", "a dull film", "stop here", "good", "-M", text_models["clf"], "-m", "unk"]
    again = run_cli(*command, "--out", tmp_path / "o")
    assert again.exit_code == 0 and "4 of 4 texts explained (2 already done)" in again.stderr
    assert scored and not any("fun" in t or "dull" in t for t in scored)  # the first two were not scored again
    fresh = run_cli(*command, "--out", tmp_path / "fresh")

    def texts(folder):
        return [{k: v for k, v in t.items() if k != "seconds"}
                for t in json.loads((folder / "run.json").read_text())["texts"]]

    assert fresh.exit_code == 0 and texts(tmp_path / "o") == texts(tmp_path / "fresh")
    other = run_cli(*command, "--seed", "1", "--out", tmp_path / "o")
    assert "held a run with other settings (seed); starting it over" in " ".join(other.stderr.split())
    assert "already done" not in other.stderr
    assert "(4 already done)" in run_cli(*command, "--seed", "1", "--out", tmp_path / "o").stderr
    assert "already done" not in run_cli(*command, "--seed", "1", "--force", "--out", tmp_path / "o").stderr
    record = json.loads((tmp_path / "o" / "run.json").read_text())  # edited out of shape: explained again
    record["texts"][0], record["texts"][1] = 5, {k: v for k, v in record["texts"][1].items() if k != "prediction"}
    (tmp_path / "o" / "run.json").write_text(json.dumps(record))
    edited = run_cli(*command, "--seed", "1", "--out", tmp_path / "o")  # was: unexpected AttributeError
    assert edited.exit_code == 0 and "4 of 4 texts explained (2 already done)" in edited.stderr, edited.output


def test_the_text_report_of_a_long_file_is_capped(run_cli, text_models, tmp_path):
    out = tmp_path / "o"
    assert run_cli("explain-text", "good", "bad", "fine film", "-M", text_models["clf"], "-m", "unk", "--out", out,
                   "-q").exit_code == 0
    assert run_cli("report", out, "-o", tmp_path / "r.html", "--max-inputs", "2").exit_code == 0
    html = (tmp_path / "r.html").read_text()
    assert "Showing the first 2 of 3 texts" in html and html.count("<h3") == 2
    assert run_cli("report", out, "-o", tmp_path / "all.html", "--max-inputs", "0").exit_code == 0
    all_html = (tmp_path / "all.html").read_text()
    assert all_html.count("<h3") == 3 and "Showing the first" not in all_html


def test_text_pairs_from_arguments_and_a_table(run_cli, text_models, tmp_path):
    """An NLI-style classifier reads each text with its pair; both texts' words are explained and shown."""
    result = run_cli("explain-text", "the movie was great", "a dull film", "--pair", "<b>the cast</b> is great",
                     "--pair", "boring", "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "a", "--json",
                     "--html", tmp_path / "a.html")
    assert result.exit_code == 0, result.output
    first, second = parse_json(result)["texts"]
    assert first["pair"] == "<b>the cast</b> is great" and first["pair_start"] == 4
    assert first["words"][4:] == ["<", "b", ">", "the", "cast", "<", "/", "b", ">", "is", "great"]
    assert second["pair_start"] == 3 and len(second["scores"]["unk"]) == 4
    html = (tmp_path / "a.html").read_text()
    assert "paired with “&lt;b&gt;the cast&lt;/b&gt; is great”" in html and "<b>the cast" not in html
    assert html.count("the pair's words follow") == 2
    shown = run_cli("explain-text", "the movie was great", "--pair", "the cast", "-M", text_models["clf"], "-m", "unk",
                    "--out", tmp_path / "b")
    assert "the movie was great ‖ the cast" in shown.stdout
    table = tmp_path / "nli.csv"
    table.write_text("premise,hypothesis\ngreat fun,a good film\n" + "great fun " * 20 + "," + "great fun " * 20
                     + "\n")
    rows = run_cli("explain-text", "--file", table, "--column", "premise", "--pair-column", "hypothesis",
                   "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "c", "--json")
    ok, long = parse_json(rows)["texts"]
    assert rows.exit_code == 1 and ok["pair"] == "a good film" and ok["pair_start"] == 2
    assert long["error"] == "nli.csv:3: the text and its pair are 83 tokens together and the models read at most 64; " \
        "shorten them" and long["pair"].startswith("great fun")


def test_pair_options_that_cannot_apply_are_one_line(run_cli, text_models, tmp_path):
    result = run_cli("explain-text", "a", "b", "--pair", "x", "-M", text_models["clf"], "-m", "unk",
                     "--out", tmp_path / "a")
    assert result.exit_code == 2 and "Error: 1 pair for 2 texts given as arguments: give one --pair per text, in " \
        "order" in result.output
    ignored = run_cli("explain-text", "a", "--pair-column", "h", "-M", text_models["clf"], "-m", "unk",
                      "--out", tmp_path / "b")
    assert ignored.exit_code == 0 and "--pair-column h is not used: it names a column of --file's CSV or JSONL " \
        "rows" in ignored.output


def test_texts_from_standard_input(text_models, tmp_path):
    """`... | attrib explain-text --file -` read a file named "-" ("file not found")."""
    from click.testing import CliRunner

    from attrib.cli import main

    def run(data: str, *args):
        return CliRunner().invoke(main, ["explain-text", "--file", "-", "-M", text_models["clf"], "-m", "unk",
                                         "--json", *map(str, args)], input=data, catch_exceptions=False)

    lines = run("the movie was great\n\na dull film\n", "--out", tmp_path / "a")
    assert lines.exit_code == 0 and [t["name"] for t in parse_json(lines)["texts"]] == ["stdin:1", "stdin:3"]
    rows = run('{"t": "great fun", "h": "a good film"}\n{"t": "bad"}\n', "--column", "t", "--pair-column", "h",
               "--out", tmp_path / "b")
    ok, bad = parse_json(rows)["texts"]
    assert rows.exit_code == 1 and ok["pair"] == "a good film" and bad["error"] == "stdin:2: no column 'h' in this row"
    table = run("s,l\ngreat fun,positive\n", "--column", "s", "--label-column", "l", "--out", tmp_path / "c")
    (text,) = parse_json(table)["texts"]
    assert (text["name"], text["target_from"]) == ("stdin:2", "gold label")


def test_texts_from_a_pipe_such_as_process_substitution(run_cli, text_models, tmp_path):
    """--file <(zcat reviews.gz) names a pipe (/dev/fd/63): it was refused as no file; a pipe with a table is
    read as stdin's is (its kind from its first character)."""
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)

    def write(data: str) -> threading.Thread:
        def run() -> None:
            with open(pipe, "w") as out:  # waits for the reader
                out.write(data)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    writer = write("the movie was great\na dull film\n")
    lines = run_cli("explain-text", "--file", pipe, "-M", text_models["clf"], "-m", "unk", "--json", "--out",
                    tmp_path / "a")
    writer.join(timeout=10)
    assert lines.exit_code == 0 and [t["name"] for t in parse_json(lines)["texts"]] == [f"{pipe}:1", f"{pipe}:2"]
    writer = write('{"t": "great fun"}\n')
    rows = run_cli("explain-text", "--file", pipe, "--column", "t", "-M", text_models["clf"], "-m", "unk", "--json",
                   "--out", tmp_path / "b")
    writer.join(timeout=10)
    assert rows.exit_code == 0 and [t["text"] for t in parse_json(rows)["texts"]] == ["great fun"]


def test_standard_input_from_a_terminal_is_refused(monkeypatch):
    import io

    import pytest

    from attrib.data.images import read_input_list
    from attrib.data.text import read_texts
    from attrib.errors import UsageError

    terminal = io.TextIOWrapper(io.BytesIO(b""))
    monkeypatch.setattr(terminal, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("sys.stdin", terminal)
    with pytest.raises(UsageError, match=r"^--file -: standard input is a terminal; pipe the input in \(\.\.\. \| "
                                         r"attrib \.\.\. --file -\)$"):
        read_texts([], "-")
    with pytest.raises(UsageError, match="^--inputs-from -: standard input is a terminal"):
        read_input_list("-")


def test_labels_file_names_the_classifiers_classes(run_cli, text_models, tmp_path):
    """Many fine-tuned classifiers name their classes LABEL_0, LABEL_1 only: gold labels by name could not be
    read, and every prediction was shown as LABEL_1. explain-text had no --labels, as explain has."""
    (tmp_path / "names.txt").write_text("bad\ngood\n")
    table = tmp_path / "d.csv"
    table.write_text("s,l\ngreat fun,good\nboring,bad\n")
    result = run_cli("explain-text", "--file", table, "--column", "s", "--label-column", "l", "-M", text_models["clf"],
                     "-m", "unk", "--labels", tmp_path / "names.txt", "--out", tmp_path / "o", "--json")
    texts = parse_json(result)["texts"]
    assert result.exit_code == 0 and [t["target"] for t in texts] == [1, 0]
    assert {t["prediction"]["label"] for t in texts} <= {"bad", "good"}
    assert json.loads((tmp_path / "o" / "run.json").read_text())["model"]["labels"] == ["bad", "good"]
    (tmp_path / "three.txt").write_text("bad\nmeh\ngood\n")
    wrong = run_cli("explain-text", "hi", "-M", text_models["clf"], "-m", "unk", "--labels", tmp_path / "three.txt",
                    "--out", tmp_path / "w")
    assert wrong.exit_code == 2 and f"labels {tmp_path / 'three.txt'}: 3 names for a model with 2 classes" in \
        " ".join(wrong.output.split())


def test_versus_explains_a_class_against_another(run_cli, text_models, tmp_path):
    """--versus: each score explains p(a) - p(b). With two classes that is 2 p(a) - 1, so every method's scores
    (occlusion, IG; OLM-S's spread likewise) are exactly twice the plain ones."""
    texts, plain, predicted = _predicted(run_cli, text_models["clf"], tmp_path, 4)
    gold = [p if i < 2 else 1 - p for i, p in enumerate(predicted)]  # the last two: wrong
    table = tmp_path / "g.csv"
    table.write_text("s,l\n" + "".join(f"{t},{g}\n" for t, g in zip(texts, gold)))
    command = ["explain-text", "--file", table, "--column", "s", "--label-column", "l", "-M", text_models["clf"],
               "-m", "unk", "-m", "ig", "--json"]
    alone = parse_json(run_cli(*command, "--target", "pred", "--out", tmp_path / "a"))["texts"]
    result = run_cli(*command, "--target", "pred", "--versus", "runner-up", "--out", tmp_path / "v", "--html",
                     tmp_path / "v.html")
    contrast = parse_json(result)["texts"]
    for one, two in zip(alone, contrast):
        assert (two["target"], two["versus"]) == (one["target"], 1 - one["target"])
        for method in ("unk", "integrated_gradients"):
            assert np.allclose(two["scores"][method], 2 * np.array(one["scores"][method]), atol=1e-5)
    html = (tmp_path / "v.html").read_text()
    assert html.count(" against <b>") == 4
    assert "probability of the target class minus that of the other class" in html
    shown = run_cli(*command[:-1], "--target", "pred", "--versus", "runner-up", "--out", tmp_path / "v")
    label = ["negative", "positive"][1 - alone[0]["target"]]
    assert f"against {label} ({contrast[0]['versus_prob']:.3f})" in shown.stdout
    assert "(4 already done)" in shown.stderr  # the same settings: reused
    assert "held a run with other settings (versus)" in \
        " ".join(run_cli(*command, "--target", "pred", "--out", tmp_path / "v").stderr.split())
    why = parse_json(run_cli(*command, "--target", "pred", "--versus", "gold", "--only", "wrong", "--out",
                             tmp_path / "w"))["texts"]
    assert [(t["status"], t.get("versus")) for t in why] == [("excluded", None)] * 2 + \
        [("ok", g) for g in gold[2:]]  # what it took them for, rather than what they are
    for args, message in ((["--versus", "gold"], "--versus gold contrasts the class explained with itself (gold)"),
                          (["--target", "pred", "--versus", "pred"], "with itself (pred)"),
                          (["--target", "negative", "--versus", "0"], "with itself (class 0)"),
                          (["--versus", "neutral"], "--versus: unknown target label 'neutral'")):
        failed = run_cli(*command, *args, "--out", tmp_path / "x")
        assert failed.exit_code == 2 and message in " ".join(failed.output.split()), args
    no_gold = run_cli("explain-text", "--file", plain, "-M", text_models["clf"], "-m", "unk", "--versus", "gold",
                      "--out", tmp_path / "x")
    assert no_gold.exit_code == 2 and "--versus gold contrasts with each text's gold label: give them with " \
        "--label-column" in " ".join(no_gold.output.split())


def test_a_classifier_or_lm_retrained_in_its_folder_starts_the_run_over(run_cli, text_models, tmp_path):
    """A local folder's weights are recorded by digest: the same folder holding other weights is another model,
    so its earlier results are not reused as if they were this model's."""
    import shutil

    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

    clf, lm = tmp_path / "clf", tmp_path / "lm"
    shutil.copytree(text_models["clf"], clf)
    shutil.copytree(text_models["lm"], lm)
    command = ["explain-text", "great fun", "-M", clf, "--lm", lm, "-m", "olm", "--set", "n_samples=2",
               "--out", tmp_path / "o"]
    assert run_cli(*command).exit_code == 0
    assert "(1 already done)" in run_cli(*command).stderr
    for folder, kind in ((clf, AutoModelForSequenceClassification), (lm, AutoModelForMaskedLM)):
        retrained = kind.from_pretrained(folder)
        with torch.no_grad():
            next(retrained.parameters()).add_(0.5)
        retrained.save_pretrained(folder)
        again = run_cli(*command)
        changed = "model" if folder == clf else "lm_weights"
        assert f"held a run with other settings ({changed})" in " ".join(again.stderr.split())
        assert "already done" not in again.stderr
