"""Shared fixtures: offline, single-threaded-deterministic CPU runs and small toy models."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests import throwaway_method  # noqa: E402,F401 - registers a method the way a user would
from tests.text_fixtures import text_models  # noqa: E402,F401 - a session fixture
from tests.toys import Linear, Quadratic, small_convnet  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_global_rng():
    """Random weights (timm --no-pretrained, toy nets) do not depend on which tests ran before."""
    torch.manual_seed(0)


@pytest.fixture
def linear_model():
    torch.manual_seed(1)
    w = torch.randn(2, 3, 3, dtype=torch.float64)
    return Linear(w).eval(), w


@pytest.fixture
def quadratic_model():
    torch.manual_seed(2)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = (m + m.T) / 2
    b = torch.randn(6, dtype=torch.float64)
    return Quadratic(a, b).eval(), a, b


@pytest.fixture
def convnet():
    return small_convnet()


@pytest.fixture(scope="session")
def tiny_vit_folder(tmp_path_factory):
    """A tiny Hugging Face ViT classifier saved with its image processor (3 classes, 32 px)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = tmp_path_factory.mktemp("tiny_vit")
    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=3,
                       id2label={0: "ant", 1: "bee", 2: "cat <b>"}, label2id={"ant": 0, "bee": 1, "cat <b>": 2})
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        folder)
    return folder
