"""Oracle checks for the similarity metrics."""

import numpy as np
import pytest

from attrib.evaluate.similarity import magnitude_map, spearman, topk_intersection


def test_identical_negated_and_permuted_maps():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 40))
    assert spearman(a, a) == pytest.approx(1.0) and topk_intersection(a, a) == 1.0
    assert spearman(a, -a) == pytest.approx(-1.0) and topk_intersection(a, -a) == 0.0
    shuffled = rng.permutation(a.ravel())
    assert abs(spearman(a, shuffled)) < 0.1 and topk_intersection(a, shuffled) < 0.3


def test_constant_maps_and_shapes():
    assert spearman(np.ones(10), np.arange(10)) == 0.0
    with pytest.raises(ValueError, match="maps differ in size"):
        topk_intersection(np.ones(4), np.ones(5))
    assert magnitude_map(np.array([[[1.0, -2.0]], [[-3.0, 4.0]]])).tolist() == [[4.0, 6.0]]
