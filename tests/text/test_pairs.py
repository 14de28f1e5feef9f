"""Text pairs (an NLI premise and its hypothesis): read by the models as a pair, each word edited in its own text,
the words of both explained."""

import json
import math

import pytest
import torch

from attrib.data.text import TextItem, read_texts, replace_word, split_words
from attrib.jobs.explain_text import Settings, explain_one
from attrib.models.text_models import load_masked_lm, load_text_classifier
from tests.text.test_olm import PointMassLM

PAIR = ("the movie was great", "the cast is great")


@pytest.fixture(scope="module")
def sharp(text_models):
    """The tiny classifier with its weights scaled up, so that one word moves its probabilities well above
    float32's resolution."""
    classifier = load_text_classifier(text_models["clf"])
    with torch.no_grad():
        for parameter in classifier.model.parameters():
            parameter.mul_(30 if parameter.ndim == 2 else 1)
    return classifier


def _p(classifier, first: str, second: str) -> torch.Tensor:
    """The classifier's probabilities of a pair, straight from its tokenizer and model."""
    batch = classifier.tokenizer(first, second, return_tensors="pt")
    assert (batch["token_type_ids"] == 1).sum() == len(classifier.tokenizer(second)["input_ids"]) - 1
    with torch.no_grad():
        return classifier.model(**batch).logits.softmax(-1)[0]


def test_a_pairs_words_carry_their_text_and_edits_stay_in_it():
    words = split_words(PAIR)
    assert [(w.text, w.segment) for w in words] == [("the", 0), ("movie", 0), ("was", 0), ("great", 0),
                                                      ("the", 1), ("cast", 1), ("is", 1), ("great", 1)]
    assert replace_word(PAIR, words[7], "") == ("the movie was great", "the cast is")
    assert replace_word(PAIR, words[3], "dull") == ("the movie was dull", "the cast is great")
    assert TextItem("t", "a", pair="b").input == ("a", "b") and TextItem("t", "a").input == "a"


class OverlapClassifier:
    """An NLI stub: p(entailment) = sigmoid(3 (hypothesis words found in the premise - those not found))."""

    labels = ["entailment", "other"]
    tokenizer = type("T", (), {"unk_token": "[UNK]", "mask_token": "[MASK]"})()

    def scores(self, pairs):
        rows = []
        for premise, hypothesis in pairs:
            found = [word in premise.split() for word in hypothesis.split()]
            p = 1 / (1 + math.exp(-3 * (sum(found) - (len(found) - sum(found)))))
            rows.append([p, 1 - p])
        return torch.tensor(rows, dtype=torch.float64)


def test_occlusion_finds_the_words_an_entailment_rests_on_in_both_texts():
    """"a man plays a guitar" / "a man sings": "man" in either text carries the entailment score; the premise's
    "a" does not (the other "a" is still there), nor do "plays", "guitar" or "sings" (unmatched either way)."""
    entry = explain_one(OverlapClassifier(), PointMassLM("[UNK]"), TextItem("t", "a man plays a guitar",
                                                                           pair="a man sings"), 0,
                        Settings(["unk", "delete", "olm"], n_samples=3, target=0))
    assert entry["scores"]["olm"] == entry["scores"]["unk"]  # an LM sure of one word is occlusion with it
    drop = 1 / (1 + math.exp(-3)) - 1 / (1 + math.exp(3))
    assert entry["scores"]["unk"] == pytest.approx([0, drop, 0, 0, 0, drop, drop, 0])
    half = 1 / (1 + math.exp(-3)) - 0.5  # a found word deleted from the hypothesis is no longer counted
    rise = 1 / (1 + math.exp(-3)) - 1 / (1 + math.exp(-6))  # deleting "sings" leaves only found words
    assert entry["scores"]["delete"] == pytest.approx([0, drop, 0, 0, 0, half, half, rise])


def test_a_pair_is_scored_as_a_pair_alone_or_in_a_batch(sharp):
    alone = sharp.scores([PAIR])[0]
    assert torch.allclose(alone, _p(sharp, *PAIR), atol=1e-6)
    joined = sharp.scores([" ".join(PAIR)])[0]  # one text: no second segment, so other scores
    assert (alone - joined).abs().max() > 1e-3
    batch = sharp.scores([("a dull film", "bad"), PAIR, ("great", "the movie was great and the cast is great")])
    assert torch.allclose(batch[1], alone, atol=1e-6)


def test_occlusion_of_a_pair_edits_each_word_in_its_own_text(sharp):
    entry = explain_one(sharp, None, TextItem("t", PAIR[0], pair=PAIR[1]), 0, Settings(["unk", "delete"]))
    assert entry["pair"] == PAIR[1] and entry["pair_start"] == 4 and entry["words"][4:] == ["the", "cast", "is",
                                                                                          "great"]
    target = entry["target"]
    original = _p(sharp, *PAIR)[target]
    unk = [("the movie was great", "[UNK] cast is great"), ("the movie was great", "the [UNK] is great")]
    deleted = [("the movie was", "the cast is great"), ("the movie was great", "the cast is")]
    for method, edited, words in (("unk", unk, (4, 5)), ("delete", deleted, (3, 7))):
        expected = [float(original - _p(sharp, *pair)[target]) for pair in edited]
        assert [entry["scores"][method][i] for i in words] == pytest.approx(expected, abs=1e-5)
    assert entry["scores"]["unk"][3] != pytest.approx(entry["scores"]["unk"][7], abs=1e-4)  # "great" twice


def test_gradients_of_a_pair_fall_on_the_words_of_each_text(sharp):
    """Each token is owned by the word of its own text: the same words in both texts get separate sums."""
    pair = ("great fun", "great fun")
    batch, owner = sharp.token_words(pair, split_words(pair))
    assert owner.tolist() == [-1, 0, 1, -1, 2, 3, -1]  # [CLS] great fun [SEP] great fun [SEP]
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    entry = explain_one(sharp, None, TextItem("t", *PAIR[:1], pair=PAIR[1]), 0,
                        Settings(["gradient_x_input", "integrated_gradients"], n_steps=64))
    assert entry["gaps"]["integrated_gradients"] < 0.01
    assert entry["scores"]["gradient_x_input"][3] != pytest.approx(entry["scores"]["gradient_x_input"][7])


def test_the_lm_masks_the_word_in_its_own_text_and_reads_the_pair(text_models):
    lm = load_masked_lm(text_models["lm"])
    words = split_words(PAIR)
    probs, _ = lm.word_distributions(PAIR, words)
    batch = lm.tokenizer("the movie was great", "the [MASK] is great", return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**batch).logits[0, batch["input_ids"][0].tolist().index(lm.tokenizer.mask_token_id)]
    logits[~lm._allowed[:len(logits)]] = float("-inf")
    assert torch.allclose(probs[5], logits.softmax(-1), atol=1e-6)


def test_a_pair_too_long_for_the_models_fails_alone(sharp):
    long = " ".join(["great fun"] * 20)  # 40 tokens a text; the tiny models read 64
    with pytest.raises(Exception, match=r"t: the text and its pair are 83 tokens together and the models read at "
                                        r"most 64; shorten them"):
        explain_one(sharp, None, TextItem("t", long, pair=long), 0, Settings(["unk"]))


@pytest.mark.parametrize("text, pair, empty", [("great fun", " ", "pair"), ("great fun", "\u200b", "pair"),
                                               ("", "great fun", "text")])
def test_a_pair_with_an_empty_text_fails_alone(sharp, text, pair, empty):
    with pytest.raises(Exception, match=rf"^t: empty {empty} \(no words\): a text and its pair need words each$"):
        explain_one(sharp, None, TextItem("t", text, pair=pair), 0, Settings(["unk"]))


def test_pairs_from_arguments_and_columns(tmp_path):
    items = read_texts(["a", "b"], pairs=["x", "y"])
    assert [(i.text, i.pair) for i in items] == [("a", "x"), ("b", "y")]
    with pytest.raises(Exception, match=r"^1 pair for 2 texts given as arguments: give one --pair per text"):
        read_texts(["a", "b"], pairs=["x"])
    rows = tmp_path / "nli.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in ({"premise": "p1", "hypothesis": "h1", "label": "entailment"},
                                                       {"premise": "p2"})) + "\n")
    first, second = read_texts([], str(rows), "premise", "label", pair_column="hypothesis")
    assert (first.text, first.pair, first.label, first.error) == ("p1", "h1", "entailment", None)
    assert second.error == "nli.jsonl:2: no column 'hypothesis' in this row"
    with pytest.raises(Exception, match=r"nli.jsonl: no pair column 'hyp'; columns: premise, hypothesis, label"):
        read_texts([], str(rows), "premise", pair_column="hyp")
    lines = tmp_path / "lines.txt"
    lines.write_text("p1\n")
    with pytest.raises(Exception, match=r"--pair-column names a column of CSV or JSONL rows"):
        read_texts([], str(lines), pair_column="hypothesis")
