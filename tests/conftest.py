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
