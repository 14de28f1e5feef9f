"""attrib sanity-text: a text classifier's word scores checked by randomizing the classifier, and IG's gaps."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from attrib.methods import METHODS, TEXT, register_method
from tests.cli.conftest import parse_json

TEXTS = ["the movie was great and the acting was good", "a dull , boring film with bad jokes",
         "an excellent and moving story"]


@dataclass(frozen=True)
class _NoOptions:
    pass


@pytest.fixture
def word_length():
    """A text "method" blind to the classifier, as an edge detector is to an image model: each word's length."""
    @register_method("word_length_test", config=_NoOptions, inputs=TEXT, rows=lambda c: 0, cost="none",
                     summary="each word's length, whatever the classifier (a test control)")
    def method(ctx, config):
        lengths = torch.tensor([float(len(w.text)) for w in ctx.words])
        return lambda p, original: lengths[:, None].expand(-1, p.shape[1])

    yield "word_length_test"
    METHODS.remove("word_length_test")


def test_randomizing_the_classifier_fails_a_method_blind_to_it_and_passes_one_that_reads_it(run_cli, text_models,
                                                                                          tmp_path, word_length):
    result = run_cli("sanity-text", *TEXTS, "-M", text_models["clf"], "-m", "unk", "-m", word_length, "-m",
                     "gradient_x_input", "--tests", "randomization", "--json", "--out", tmp_path / "s", "--html",
                     tmp_path / "s.html")
    assert result.exit_code == 0, result.output
    verdicts = {v["method"]: v for v in parse_json(result)["verdicts"]}
    assert verdicts[word_length]["passed"] is False and "abs-Spearman stays 1.00" in verdicts[word_length]["reason"]
    assert verdicts["unk"]["passed"] is True and "depends on the model" in verdicts["unk"]["reason"]
    rows = parse_json(result)["randomization"]
    blind = [r for r in rows if r["method"] == word_length]
    assert blind and all(r["spearman_abs"] == 1.0 and r["spearman_signed"] == 1.0 for r in blind)
    layers = [r["layer"] for r in rows if r["method"] == "unk" and r["mode"] == "cascading"]
    assert layers == ["classifier (Linear)", "bert.pooler (BertPooler)", "bert.encoder.layer.0 (BertLayer)",
                      "bert.embeddings (BertEmbeddings)"]  # top down, every group of the tiny BERT
    record = json.loads((tmp_path / "s" / "run.json").read_text())
    assert record["kind"] == "sanity" and record["model"]["kind"] == "text" and record["inputs"] == \
        ["text 1", "text 2", "text 3"] and record["draw_seeds"] == [0, 1, 2]
    strip = record["text_strip"]  # the first text's scores as the layers go, coloured in the report
    assert strip["name"] == "text 1" and strip["words"] == TEXTS[0].split()
    assert [r["layer"] for r in strip["rows"]["unk"]] == ["original", *layers]
    assert strip["rows"][word_length][0]["scores"] == [float(len(w)) for w in strip["words"]]
    assert all(r["scores"] == strip["rows"][word_length][0]["scores"] for r in strip["rows"][word_length])
    html = (tmp_path / "s.html").read_text()
    assert "Sanity checks:" in html and "word scores for each classifier's predicted class" in html
    assert "The word scores of the first text (text 1) as the layers are randomized" in html
    assert html.count(">acting</span>") == 3 * 5  # three methods, the original and four layers
    assert (tmp_path / "s" / "randomization.png").is_file()


def test_the_gap_at_the_runs_steps_is_explain_texts(run_cli, text_models, tmp_path):
    """Completeness is IG's gap on the embeddings at several step counts; at the run's own it is the gap
    explain-text reports for the same texts (mean over them)."""
    checked = parse_json(run_cli("sanity-text", *TEXTS, "-M", text_models["clf"], "-m", "ig", "--n-steps", "5",
                                 "--tests", "completeness", "--json", "--out", tmp_path / "s"))
    rows = checked["completeness"]
    assert [(r["steps"], r["default"], r.get("set")) for r in rows] == [
        (5, True, True), (8, False, None), (16, False, None), (32, False, None), (64, False, None)]
    assert " at the 5 steps set (" in checked["verdicts"][0]["reason"]  # --n-steps 5 was not "its default"
    assert all(r["passes"] == r["steps"] for r in rows)
    explained = parse_json(run_cli("explain-text", *TEXTS, "-M", text_models["clf"], "-m", "ig", "--n-steps", "5",
                                   "--target", "pred", "--json", "--out", tmp_path / "e"))["texts"]
    mean = np.mean([t["gaps"]["integrated_gradients"] for t in explained])
    assert rows[0]["gap"] == pytest.approx(mean, rel=1e-4, abs=1e-7)
    assert [v["test"] for v in checked["verdicts"]] == ["completeness"]
    assert checked["randomization"] == [] and checked["robustness"] == []


def test_texts_that_cannot_be_checked_and_usage_errors_are_one_line(run_cli, text_models, tmp_path):
    some = run_cli("sanity-text", TEXTS[0], "   ", "-M", text_models["clf"], "-m", "unk", "--tests",
                   "randomization", "--max-layers", "2", "--repeats", "1", "--out", tmp_path / "s")
    assert some.exit_code == 1 and "error: text 2: empty text (no words to explain)" in some.stderr
    assert "1 text checked" in some.stderr
    assert json.loads((tmp_path / "s" / "run.json").read_text())["input_errors"] == \
        ["text 2: empty text (no words to explain)"]
    for args, message in ((["--tests", "robustness"], "unknown test 'robustness' (robustness perturbs an image by a "
                            "small norm: a text has no such perturbation); choose from randomization, completeness"),
                          (["--layers", "bert.nowhere"], "unknown layer 'bert.nowhere'; layers (bottom to top): "
                           "bert.embeddings, bert.encoder.layer.0, bert.pooler, classifier"),
                          (["-m", "gradient", "-m", "lime"], "unknown text method 'lime'"),
                          (["--versus", "gold"], "--versus gold: the sanity checks have no true classes"),
                          (["--versus", "pred"], "--versus pred contrasts the class explained with itself")):
        failed = run_cli("sanity-text", TEXTS[0], "-M", text_models["clf"], "-m", "unk", *args, "--out",
                         tmp_path / "x")
        assert failed.exit_code == 2 and message in " ".join(failed.output.split()), args
    nothing = run_cli("sanity-text", "  ", "-M", text_models["clf"], "-m", "unk", "--out", tmp_path / "y")
    assert nothing.exit_code == 2 and "no usable texts" in nothing.output
    one = run_cli("sanity-text", "great", "-M", text_models["clf"], "-m", "unk", "--tests", "randomization",
                  "--max-layers", "2", "--repeats", "1", "--out", tmp_path / "w")  # its map: one value, not zero
    verdict = json.loads((tmp_path / "w" / "run.json").read_text())["verdicts"][0]
    assert one.exit_code == 0 and verdict["passed"] is None and "(one value, as a one-word text's, or all zero" \
        in verdict["reason"]


def test_a_pair_classifiers_texts_are_checked_with_their_pairs(run_cli, text_models, tmp_path):
    """Each text is read with its --pair, and the words of both are scored: a pair that changes the scores
    changes what is compared."""
    command = ["sanity-text", TEXTS[0], TEXTS[1], "-M", text_models["clf"], "-m", "unk", "--tests", "randomization",
               "--max-layers", "2", "--repeats", "1", "--json"]
    alone = parse_json(run_cli(*command, "--out", tmp_path / "a"))["randomization"]
    paired = run_cli(*command, "--pair", "great fun", "--pair", "what a waste", "--out", tmp_path / "p")
    assert paired.exit_code == 0, paired.output
    assert [r["layer"] for r in parse_json(paired)["randomization"]] == [r["layer"] for r in alone]
    assert [r["spearman_abs"] for r in parse_json(paired)["randomization"]] != [r["spearman_abs"] for r in alone]
    one = run_cli(*command, "--pair", "great fun", "--out", tmp_path / "x")
    assert one.exit_code == 2 and "1 pair for 2 texts given as arguments" in one.output


def test_the_progress_bar_counts_every_text_explained(text_models, tmp_path):
    """One step per text explained: the clean scores, each randomized classifier's, and IG's at each step count."""
    from attrib.jobs import sanity_text
    from attrib.jobs.common import Events
    from attrib.runs import RunStore

    class Counted(Events):
        def __init__(self):
            self.total, self.done = {}, {}

        def task(self, key, description, total):
            self.total[key] = total

        def advance(self, key, n=1, description=None):
            self.done[key] = self.done.get(key, 0) + n

    events = Counted()
    options = sanity_text.Options(TEXTS[:2], model=text_models["clf"], methods=["unk", "ig"], max_layers=3,
                                  repeats=2, n_steps=4)
    record = sanity_text.run(options, RunStore(tmp_path / "s"), events)
    budgets = len({8, 16, 32, 64, 4})
    assert events.total["maps"] == events.done["maps"] == 2 * (1 + 3 * (2 + 1) + budgets)
    assert {r["draws"] for r in record["randomization"] if r["mode"] == "cascading"} == {2}


def test_versus_runner_up_doubles_a_two_class_classifiers_scores_and_keeps_every_similarity_and_gap(
        run_cli, text_models, tmp_path):
    """For two classes p(a) - p(b) = 2 p(a) - 1: each classifier's contrast with its runner-up scores every word
    twice as much as its predicted class alone, at every depth of randomization, and IG's similarities are
    unchanged (its gaps here, 1e-5 relative, are float32 rounding)."""
    runs = {}
    for name, extra in (("plain", []), ("contrast", ["--versus", "runner-up"])):
        result = run_cli("sanity-text", *TEXTS[:2], "-M", text_models["clf"], "-m", "unk", "-m", "ig", "--n-steps",
                         "16", "--max-layers", "2", "--repeats", "1", "--out", tmp_path / name, "--html",
                         tmp_path / f"{name}.html", *extra)
        assert result.exit_code == 0, result.output
        runs[name] = json.loads((tmp_path / name / "run.json").read_text())
    assert runs["contrast"]["versus"] == "runner-up"
    for method in ("unk", "integrated_gradients"):
        plain, contrast = (runs[k]["text_strip"]["rows"][method] for k in ("plain", "contrast"))
        assert [r["layer"] for r in plain] == [r["layer"] for r in contrast] and len(plain) == 3
        for a, b in zip(plain, contrast):  # occlusion's scores, about 1e-5 here, are differences of float32
            # probabilities near 0.5, each rounded to 6e-8
            assert np.allclose(np.multiply(a["scores"], 2), b["scores"], rtol=1e-4, atol=3e-7), (method, a, b)
    for key in ("spearman_abs", "spearman_signed"):  # IG's (occlusion's ranks can swap within the rounding)
        assert [r[key] for r in runs["plain"]["randomization"] if r["method"] == "integrated_gradients"] == \
            pytest.approx([r[key] for r in runs["contrast"]["randomization"]
                           if r["method"] == "integrated_gradients"], abs=1e-6)
    assert [r["steps"] for r in runs["contrast"]["completeness"]] == [8, 16, 32, 64]  # IG of the contrast's score
    assert "two classes&#39; probabilities" not in (tmp_path / "contrast.html").read_text()
    assert "each model's predicted class against its runner-up" in (tmp_path / "contrast.html").read_text()
