"""OLM, OLM-S and occlusion: the paper's invariants with stub LMs, batching, seeds, and a keyword classifier."""

import math

import pytest
import torch

from attrib.data.text import TextItem, replace_word, split_words
from attrib.jobs.explain_text import Settings as TextOptions, explain_one
from attrib.methods.olm import olm, olm_s, sample_counts
from attrib.models.text_models import load_masked_lm, load_text_classifier

TEXT = "the movie was great , and the cast is great"


class PointMassLM:
    """All probability on one replacement per word: the word itself, or a fixed word."""

    def __init__(self, word=None):
        self.word = word

    def word_distributions(self, text, words):
        vocab = [self.word or w.text for w in words] if self.word is None else [self.word]
        probs = torch.eye(len(words)) if self.word is None else torch.ones(len(words), 1)
        return probs, vocab


class KeywordClassifier:
    """p(positive) rises with each "great"; counts the sentences it scores."""

    labels = ["negative", "positive"]
    tokenizer = type("T", (), {"unk_token": "[UNK]", "mask_token": "[MASK]"})()

    def __init__(self):
        self.scored = []

    def scores(self, texts):
        self.scored.extend(texts)
        pos = torch.tensor([1 / (1 + math.exp(1.5 - 3 * t.split().count("great"))) for t in texts])
        return torch.stack([1 - pos, pos], 1)


@pytest.fixture(scope="module")
def tiny(text_models):
    return load_text_classifier(text_models["clf"]), load_masked_lm(text_models["lm"])


def _scores(classifier, lm, methods, text=TEXT, **kwargs):
    return explain_one(classifier, lm, TextItem("t", text), 0, TextOptions(list(methods), **kwargs))["scores"]


def test_point_mass_on_the_original_word_gives_zero(tiny):
    classifier, _ = tiny
    scores = _scores(classifier, PointMassLM(), ["olm", "olm_s"], n_samples=7)
    assert scores["olm"] == [0.0] * len(split_words(TEXT)) and scores["olm_s"] == [0.0] * len(split_words(TEXT))


def test_point_mass_on_another_word_is_occlusion_with_it(tiny):
    classifier, _ = tiny
    scores = _scores(classifier, PointMassLM("dull"), ["olm", "olm_s"], n_samples=5)
    words = split_words(TEXT)
    p = classifier.scores([TEXT] + [replace_word(TEXT, w, "dull") for w in words])
    target = int(p[0].argmax())
    expected = (p[0, target] - p[1:, target]).tolist()
    assert scores["olm"] == pytest.approx(expected, abs=1e-7)
    assert scores["olm_s"] == pytest.approx([0.0] * len(words), abs=1e-7)


def test_relevances_summed_over_classes_are_zero(tiny):
    classifier, lm = tiny
    methods = ["olm", "unk", "delete"]
    neg = _scores(classifier, lm, methods, n_samples=20, target=0)
    pos = _scores(classifier, lm, methods, n_samples=20, target=1)
    for m in methods:
        assert [a + b for a, b in zip(neg[m], pos[m])] == pytest.approx([0.0] * len(neg[m]), abs=1e-6)


def test_olm_formulas_and_counts():
    probs = torch.softmax(torch.randn(4, 30, generator=torch.Generator().manual_seed(0)), 1)
    counts = sample_counts(probs, 50, seed=3, text_index=2)
    assert all(sum(c.values()) == 50 for c in counts) and counts == sample_counts(probs, 50, 3, 2)
    assert counts != sample_counts(probs, 50, 4, 2)
    p0 = torch.tensor([0.3, 0.7])
    cand = [torch.tensor([[0.5, 0.5], [0.1, 0.9]])]
    c = [torch.tensor([3, 1])]
    assert olm(p0, cand, c)[0].tolist() == pytest.approx([0.3 - 0.4, 0.7 - 0.6])
    assert olm_s(cand, c)[0].tolist() == pytest.approx([math.sqrt(0.75 * 0.1 ** 2 + 0.25 * 0.3 ** 2)] * 2)


def test_results_do_not_depend_on_batch_size_and_follow_the_seed(tiny):
    classifier, lm = tiny
    methods = ["olm", "olm_s", "unk", "delete"]
    classifier.batch_size = 64
    big = _scores(classifier, lm, methods, n_samples=30, seed=1)
    classifier.batch_size = 3
    small = _scores(classifier, lm, methods, n_samples=30, seed=1)
    classifier.batch_size = 64
    for m in methods:
        assert small[m] == pytest.approx(big[m], abs=1e-6)
    assert _scores(classifier, lm, ["olm"], n_samples=30, seed=1)["olm"] == big["olm"]
    assert _scores(classifier, lm, ["olm"], n_samples=30, seed=2)["olm"] != big["olm"]


def test_keyword_classifier_puts_great_on_top(tiny):
    _, lm = tiny
    classifier = KeywordClassifier()
    entry = explain_one(classifier, lm, TextItem("t", "a truly great film with a fine cast"), 0,
                        TextOptions(["olm", "olm_s", "unk", "delete"], n_samples=100))
    assert entry["target_label"] == "positive"
    for method in ("olm", "unk", "delete"):  # OLM-S is a spread: "truly" := "great" can vary p as much
        scores = entry["scores"][method]
        assert entry["words"][max(range(len(scores)), key=scores.__getitem__)] == "great", method


def test_identical_candidates_are_scored_once(tiny):
    _, lm = tiny
    classifier = KeywordClassifier()
    entry = explain_one(classifier, lm, TextItem("t", TEXT), 0, TextOptions(["olm", "olm_s", "unk", "delete"],
                                                                           n_samples=100))
    assert len(classifier.scored) == len(set(classifier.scored)) == entry["candidates"]
    assert len(classifier.scored) < 1 + len(entry["words"]) * (100 + 2)


def test_gradient_x_input_is_summed_over_dimensions_and_subwords(tiny):
    classifier, _ = tiny
    text = "unbelievably great"  # "unbelievably" splits into several pieces in the tiny vocabulary
    words = split_words(text)
    scores = _scores(classifier, None, ["gradient_x_input"], text=text, target=1)["gradient_x_input"]
    batch, owner = classifier.token_words(text, words)
    embeddings, forward = classifier.embedding_forward(batch)
    e = embeddings.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(forward(e).softmax(-1)[0, 1], e)
    per_token = (grad * embeddings)[0].sum(-1)
    expected = [float(per_token[owner == i].sum()) for i in range(len(words))]
    assert (owner == 0).sum() > 1 and scores == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_the_tightest_token_limit_of_classifier_and_lm_decides_the_cut(tiny):
    from attrib.models.text_models import words_within

    classifier, lm = tiny
    text = " ".join(["great fun"] * 40)  # 80 words, one token each
    words = split_words(text)
    assert (classifier.max_tokens, lm.max_tokens) == (64, 64)  # the configs' position tables (no tokenizer limit)
    assert words_within([classifier], text, words) == 62  # [CLS] + 62 words + [SEP]
    lm.max_tokens = 20
    try:
        assert words_within([classifier, lm], text, words) == 18
        assert words_within([classifier, lm], "great fun", split_words("great fun")) == 2
    finally:
        lm.max_tokens = 64


def test_roberta_reads_positions_after_its_padding_row_and_draws_whole_words(tmp_path):
    """RoBERTa numbers positions from padding_idx + 1: a table of 66 rows holds 64 positions. Reading the config's
    66 failed every text past 64 tokens ("index 66 is out of bounds")."""
    from tests.text_fixtures import build_roberta_models

    paths = build_roberta_models(tmp_path)
    classifier, lm = load_text_classifier(paths["clf"]), load_masked_lm(paths["lm"])
    assert (classifier.max_tokens, lm.max_tokens) == (64, 64)
    text = " ".join(["great fun"] * 40)  # 80 words, one token each
    entry = explain_one(classifier, lm, TextItem("t", text), 0, TextOptions(["olm", "unk", "delete"], n_samples=5))
    assert entry["cut"] == {"words": 80, "explained": 62, "tokens": 64} and len(entry["scores"]["olm"]) == 62
    allowed = [lm.string(i) for i in range(len(lm.tokenizer)) if lm._allowed[i]]
    assert "great" in allowed and all(word and " " not in word for word in allowed)  # "Ġgreat" read as a word


def test_a_sentencepiece_vocabulary_draws_whole_words(tmp_path):
    """DeBERTa-v3, ALBERT and XLM-R mark word starts with "▁": only such pieces replace a word, read without it."""
    from tests.text_fixtures import build_deberta_models

    paths = build_deberta_models(tmp_path)
    classifier, lm = load_text_classifier(paths["clf"]), load_masked_lm(paths["lm"])
    pieces = lm.tokenizer.convert_ids_to_tokens(list(range(len(lm.tokenizer))))
    allowed = [p for p, ok in zip(pieces, lm._allowed.tolist()) if ok]
    assert allowed and all(p.startswith("▁") and len(p) > 1 for p in allowed)
    assert all(lm.string(i) == p[1:] for i, (p, ok) in enumerate(zip(pieces, lm._allowed.tolist())) if ok)
    entry = explain_one(classifier, lm, TextItem("t", "the movie was great"), 0,
                        TextOptions(["olm", "unk", "integrated_gradients"], n_samples=5))
    assert entry["status"] == "ok" and all(len(v) == 4 for v in entry["scores"].values())
    assert entry["gaps"]["integrated_gradients"] < 0.01


def test_an_lm_without_whole_words_is_refused_in_one_line(tmp_path):
    from transformers import BertTokenizerFast

    from attrib.models.base import ModelError
    from attrib.models.text_models import MaskedLM

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##a", "##b"]))
    tokenizer = BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    with pytest.raises(ModelError, match="no entry of its vocabulary can replace a whole word"):
        MaskedLM(None, tokenizer, "pieces-only")


@pytest.mark.parametrize("spec", ["hf:", "", "  "])
def test_a_text_model_spec_naming_nothing_says_so(spec):
    from attrib.models.base import ModelError

    with pytest.raises(ModelError, match="names no model: give a sequence classifier as a Hugging Face hub id"):
        load_text_classifier(spec)


def test_a_classifier_with_nan_weights_is_refused_in_one_line(tmp_path, text_models):
    import shutil

    from transformers import BertForSequenceClassification

    from attrib.models.base import ModelError

    broken = tmp_path / "broken"
    shutil.copytree(text_models["clf"], broken)
    model = BertForSequenceClassification.from_pretrained(broken)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("inf")
    model.save_pretrained(broken)
    with pytest.raises(ModelError, match=r"has NaN or infinite weights \(classifier\.weight\)"):
        load_text_classifier(str(broken))


@pytest.mark.parametrize("extra,kind", [({"num_labels": 1, "problem_type": "regression"}, "output"),
                                        ({"num_labels": 3, "problem_type": "multi_label_classification"}, "sigmoid")])
def test_heads_read_as_they_are_meant(tmp_path, text_models, extra, kind):
    """A one-output model's softmax is 1 whatever the text (every word would score 0); a multi-label model's
    classes are independent sigmoids."""
    from transformers import BertForSequenceClassification

    from attrib.jobs import explain_text
    from attrib.runs import RunStore

    torch.manual_seed(0)
    base = BertForSequenceClassification.from_pretrained(text_models["clf"])
    config = base.config
    config.update({"id2label": {i: f"c{i}" for i in range(extra["num_labels"])},
                   "label2id": {f"c{i}": i for i in range(extra["num_labels"])}, **extra})
    BertForSequenceClassification(config).eval().save_pretrained(tmp_path / "m")
    __import__("transformers").AutoTokenizer.from_pretrained(text_models["clf"]).save_pretrained(tmp_path / "m")
    classifier = load_text_classifier(str(tmp_path / "m"))
    assert classifier.score_kind == kind
    with torch.no_grad():
        logits = classifier.model(**classifier.encode([TEXT])).logits
    expected = logits if kind == "output" else logits.sigmoid()
    assert torch.allclose(classifier.scores([TEXT]), expected, atol=1e-6)
    options = explain_text.Options([TEXT], model=str(tmp_path / "m"), lm=text_models["lm"],
                                   methods=["unk", "gradient_x_input"])
    record = explain_text.run(options, RunStore(tmp_path / "run"))
    entry = record["texts"][0]
    assert record["score"].startswith("output" if kind == "output" else "sigmoid probability")
    assert entry["status"] == "ok" and entry["target_prob"] == pytest.approx(float(expected[0, entry["target"]]))
    if kind == "output":  # softmax over one output: every score was exactly 0
        assert max(abs(v) for v in entry["scores"]["unk"]) > 1e-6
        assert max(abs(v) for v in entry["scores"]["gradient_x_input"]) > 1e-6


TEXTS = ["the movie was great and the acting was good", "bad film", "great fun ! i loved it"]


def test_a_decoder_classifier_without_a_pad_token_is_batched_and_explained(tmp_path, text_models):
    """GPT-2's tokenizer has no pad token and its classifier refuses batches without config.pad_token_id: every
    text failed ("Asking to pad but the tokenizer does not have a padding token")."""
    from tests.text_fixtures import build_gpt2_classifier

    classifier = load_text_classifier(build_gpt2_classifier(tmp_path))
    alone = torch.cat([classifier.scores([t]) for t in TEXTS])
    assert torch.allclose(classifier.scores(TEXTS), alone, atol=1e-6)  # each text read at its own last token
    entry = explain_one(classifier, load_masked_lm(text_models["lm"]), TextItem("t", TEXTS[0]), 0,
                        TextOptions(["olm", "integrated_gradients"], n_samples=5))
    assert entry["status"] == "ok" and len(entry["scores"]["olm"]) == len(entry["scores"]["integrated_gradients"]) == 9
    assert entry["gaps"]["integrated_gradients"] < 0.01


def test_batches_are_padded_on_the_right_whatever_the_tokenizer_says(tmp_path, text_models):
    """Left padding (Llama's and Qwen's default) shifted a shorter text's positions: its score in a batch
    differed from its score alone (by 0.0014 on this model)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_models["clf"], padding_side="left")
    classifier = load_text_classifier(text_models["clf"])
    classifier = type(classifier)(classifier.model, tokenizer, "left-padded")
    alone = torch.cat([classifier.scores([t]) for t in TEXTS])
    assert torch.allclose(classifier.scores(TEXTS), alone, atol=1e-6)
