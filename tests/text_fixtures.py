"""Tiny offline text models: a WordPiece vocabulary trained here, a BERT masked LM and a BERT classifier from
small configs, saved with save_pretrained and loaded back by path."""

import pytest
import torch

CORPUS = ["the movie was great and the acting was good", "a dull , boring film with bad jokes",
          "great fun ! i loved it", "the plot is thin but the music is great", "not good , not bad , just fine",
          "what a terrible waste of time", "an excellent and moving story", "the cast is great"] * 4


def build_text_models(root, corpus=CORPUS, vocab_size=300):
    """A tiny BERT masked LM ("lm") and classifier ("clf", labels negative / positive) with a WordPiece vocabulary
    trained on ``corpus``, saved under ``root``; their folders by name."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertTokenizerFast

    trainer = BertWordPieceTokenizer(lowercase=True)
    trainer.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, limit_alphabet=100)
    trainer.save_model(str(root))
    tokenizer = BertTokenizerFast.from_pretrained(str(root))
    config = dict(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    paths = {}
    for name, cls, extra in (("lm", BertForMaskedLM, {}),
                             ("clf", BertForSequenceClassification,
                              {"num_labels": 2, "id2label": {0: "negative", 1: "positive"},
                               "label2id": {"negative": 0, "positive": 1}})):
        model = cls(BertConfig(**config, **extra)).eval()
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


def build_roberta_models(root, corpus=CORPUS, vocab_size=400, positions=64):
    """A tiny RoBERTa masked LM and classifier (byte-level BPE: word starts marked "Ġ"; a position table with a
    padding row, so ``positions`` + 2 rows) whose tokenizer sets no length limit; their folders by name."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification, RobertaTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    trainer.save_model(str(root))
    tokenizer = RobertaTokenizerFast.from_pretrained(str(root))
    return _save_pair(root, tokenizer, RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification,
                      max_position_embeddings=positions + 2, pad_token_id=1)


def _save_pair(root, tokenizer, config_class, lm_class, classifier_class, **config):
    """A tiny masked LM ("lm") and 2-class classifier ("clf") of one architecture, each saved with ``tokenizer``
    under ``root``; their folders by name."""
    config = dict(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, **config)
    torch.manual_seed(0)
    paths = {}
    for name, cls, extra in (("lm", lm_class, {}), ("clf", classifier_class, {"num_labels": 2})):
        cls(config_class(**config, **extra)).eval().save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


def build_gpt2_classifier(root, corpus=CORPUS, vocab_size=400):
    """A tiny GPT-2 sequence classifier saved under ``root`` as published GPT-2 checkpoints are: its tokenizer has
    no pad token and its config no pad_token_id (the end-of-text token, id 0, starts and ends texts)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2TokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, special_tokens=["<|endoftext|>"])
    trainer.save_model(str(root))
    tokenizer = GPT2TokenizerFast.from_pretrained(str(root))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=64, num_labels=2,
                        bos_token_id=0, eos_token_id=0, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    torch.manual_seed(0)
    GPT2ForSequenceClassification(config).eval().save_pretrained(root / "gpt2")
    tokenizer.save_pretrained(root / "gpt2")
    return str(root / "gpt2")


def build_deberta_models(root, corpus=CORPUS, vocab_size=120):
    """A tiny DeBERTa-v2 masked LM and classifier with a SentencePiece (Unigram) vocabulary, word starts marked
    "▁", as DeBERTa-v3, ALBERT and XLM-R have; their folders by name."""
    from tokenizers import SentencePieceUnigramTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification, \
        DebertaV2TokenizerFast

    special = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    trainer = SentencePieceUnigramTokenizer()
    trainer.train_from_iterator(corpus, vocab_size=vocab_size, special_tokens=special, unk_token="[UNK]")
    trainer._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                           special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    tokenizer = DebertaV2TokenizerFast(tokenizer_object=trainer._tokenizer, pad_token="[PAD]", cls_token="[CLS]",
                                       sep_token="[SEP]", unk_token="[UNK]", mask_token="[MASK]")
    return _save_pair(root, tokenizer, DebertaV2Config, DebertaV2ForMaskedLM, DebertaV2ForSequenceClassification,
                      max_position_embeddings=64, pad_token_id=0)


@pytest.fixture(scope="session")
def text_models(tmp_path_factory):
    return build_text_models(tmp_path_factory.mktemp("text_models"))
