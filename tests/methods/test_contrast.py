"""Contrastive targets (``versus=``): one class's logit minus another's, "why this class rather than that one"."""

import pytest
import torch

import attrib
from attrib.errors import UsageError
from attrib.methods.baselines import make_baseline
from tests.toys import Quadratic


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ig_of_a_linear_contrast_is_the_difference_of_the_weights_times_delta(linear_model):
    """F = [s, -s]: class 0 against class 1 is 2 s, so IG is 2 w (x - x') exactly, with no gap."""
    model, w = linear_model
    x = _x(3, 2, 3, 3)
    result = attrib.attribute(model, x, "ig", target=0, versus=1, baseline="uniform")
    assert result.target == [0, 0, 0] and result.versus == [1, 1, 1]
    assert torch.allclose(result.values.double(), 2 * w * (x - make_baseline("uniform", x, 0, 0.1)), atol=1e-6)
    assert result.completeness_gap.max() < 1e-5


@pytest.mark.parametrize("method,config", [
    ("gradient", {}), ("gradient_x_input", {}), ("ig", {"rule": "gausslegendre", "n_steps": 7}),
    ("smoothgrad", {"n_samples": 5}), ("eg", {"n_samples": 6})])
def test_a_contrast_is_the_difference_of_the_two_classes_maps_for_linear_methods(convnet, method, config):
    """Methods linear in the target (same seed: same noise, same references) give map(a) - map(b)."""
    x = _x(3, 3, 12, 12)
    if method == "eg":
        config = {**config, "background": _x(5, 3, 12, 12, seed=3)}
    contrast = attrib.attribute(convnet, x, method, target=[0, 1, 2], versus=[3, 3, 0], **config)
    first = attrib.attribute(convnet, x, method, target=[0, 1, 2], **config)
    other = attrib.attribute(convnet, x, method, target=[3, 3, 0], **config)
    assert torch.allclose(contrast.values, first.values - other.values, atol=1e-5)
    assert contrast.versus == [3, 3, 0] and other.versus is None


def test_a_logit_shift_every_class_shares_does_not_change_a_contrast(convnet):
    """log p(a) / p(b) ignores what raises every logit alike; the plain logit's map does not."""
    x = _x(2, 3, 12, 12)
    quadratic = Quadratic(torch.eye(432, dtype=torch.float64), torch.zeros(432, dtype=torch.float64))
    def shifted(v):
        return convnet(v) + quadratic(v)  # the same shift for every class
    for method in ("gradient", "ig"):
        plain = attrib.attribute(convnet, x, method, target=1, versus=2).values
        assert torch.allclose(attrib.attribute(shifted, x, method, target=1, versus=2).values, plain, atol=1e-5)
        assert not torch.allclose(attrib.attribute(shifted, x, method, target=1).values,
                                  attrib.attribute(convnet, x, method, target=1).values, atol=1e-3)


def test_the_runner_up_stands_in_where_the_other_class_is_the_one_explained(convnet):
    x = _x(4, 3, 12, 12)
    outputs = attrib.predict(convnet, x)
    ranked = outputs.argsort(dim=1, descending=True)
    runner_up = attrib.attribute(convnet, x, "gradient", versus="runner-up")
    assert runner_up.target == ranked[:, 0].tolist() and runner_up.versus == ranked[:, 1].tolist()
    predicted = ranked[:, 0].tolist()
    same = attrib.attribute(convnet, x, "gradient", target=predicted, versus=predicted)  # e.g. --versus truth
    assert same.versus == ranked[:, 1].tolist() and torch.equal(same.values, runner_up.values)
    explained = ranked[:, 2].tolist()  # the third class: its runner-up is the top one
    versus = [None, explained[1], (explained[2] + 1) % 4, explained[3]]
    mixed = attrib.attribute(convnet, x, "gradient", target=explained, versus=versus)
    assert mixed.versus == [predicted[0], predicted[1], versus[2], predicted[3]]


def test_a_contrasts_completeness_gap_is_against_the_difference_of_logits(convnet):
    """IG's default rule meets its tolerance on the contrast's own difference F(x) - F(x')."""
    x = _x(3, 3, 12, 12)
    result = attrib.attribute(convnet, x, "ig", target=[0, 1, 2], versus=3)
    out, base = convnet(x), convnet(torch.zeros_like(x))
    expected = (out[:, [0, 1, 2]].diagonal() - out[:, 3]) - (base[:, [0, 1, 2]].diagonal() - base[:, 3])
    sums = result.values.double().flatten(1).sum(1)
    assert torch.allclose(result.completeness_gap.double(), (sums - expected).abs() / expected.abs(), atol=1e-5)
    assert result.completeness_gap.max() <= 0.01


@pytest.mark.parametrize("target,versus,error,match", [
    (0, 4, UsageError, r"versus class 4 is out of range: the model has 4 classes"),
    (0, [1, 2, 3], UsageError, "versus lists 3 classes for 2 inputs"),
    (0, "second", TypeError, "versus must be 'runner-up', an int or a sequence of ints"),
    (0, 1.5, TypeError, "target classes must be ints, got 1.5"),
    (lambda out: out[:, 0], 1, TypeError, "versus contrasts two classes' logits: target must then be None"),
    (attrib.ClassProb(0), 1, TypeError, "target must then be None, an int or a sequence of ints"),
])
def test_wrong_contrasts(convnet, target, versus, error, match):
    with pytest.raises(error, match=match):
        attrib.attribute(convnet, _x(2, 3, 12, 12), "gradient", target=target, versus=versus)


def test_a_one_output_model_has_no_other_class_to_contrast_with():
    model = Quadratic(torch.eye(6, dtype=torch.float64), torch.ones(6, dtype=torch.float64)).eval()
    with pytest.raises(UsageError, match="a contrast needs two classes, and this model has one output"):
        attrib.attribute(model, _x(2, 6), "gradient", target=0, versus="runner-up")


def test_a_contrast_target_object_is_copied_per_call(convnet):
    x = _x(2, 3, 12, 12)
    target = attrib.Contrast(1, versus=[2, None])
    first = attrib.attribute(convnet, x, "gradient", target=target)
    second = attrib.attribute(convnet, x[:1].repeat(2, 1, 1, 1), "gradient", target=target)
    assert first.versus[0] == 2 and second.versus[0] == 2 and target.versus_classes is None
