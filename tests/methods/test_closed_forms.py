"""Closed-form answers from REFERENCE.md on linear and quadratic toy models."""

import pytest
import torch

import attrib
from attrib.methods.baselines import make_baseline
from attrib.methods.integrated_gradients import RULES
from tests.toys import Linear

ALL_RULES = [(rule, n) for rule in RULES for n in (3 if rule == "adaptive" else 2, 5, 50)]  # adaptive: >= 3


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("rule,n_steps", ALL_RULES)
@pytest.mark.parametrize("baseline", ["zero", "uniform", "blur", "tensor"])
def test_ig_linear_is_w_times_delta(linear_model, rule, n_steps, baseline):
    model, w = linear_model
    x = _x(3, 2, 3, 3)
    base = _x(2, 3, 3, seed=5) if baseline == "tensor" else baseline
    res = attrib.attribute(model, x, "ig", target=0, n_steps=n_steps, rule=rule, baseline=base)
    ref = make_baseline(base, x, 0, 0.1)
    assert torch.allclose(res.values.double(), w * (x - ref), atol=1e-6)
    assert res.completeness_gap.max() < 1e-5


def test_ig_one_step_right_riemann_is_gradient_times_delta(convnet):
    x = _x(2, 3, 12, 12)
    ig = attrib.attribute(convnet, x, "ig", target=[1, 2], n_steps=1, rule="riemann_right")
    grad = attrib.attribute(convnet, x, "gradient", target=[1, 2])
    assert torch.allclose(ig.values, grad.values * x.float(), atol=1e-6)


@pytest.mark.parametrize("rule", ["trapezoid", "riemann_middle", "gausslegendre"])
@pytest.mark.parametrize("n_steps", [2, 7])
def test_ig_quadratic_exact_for_rules_exact_on_linear_integrands(quadratic_model, rule, n_steps):
    model, a, b = quadratic_model
    x, base = _x(4, 6), _x(4, 6, seed=9)
    res = attrib.attribute(model, x, "ig", target=0, n_steps=n_steps, rule=rule, baseline=base)
    expected = (x - base) * (((x + base) / 2) @ a + b)
    assert torch.allclose(res.values.double(), expected, atol=1e-5)
    assert res.completeness_gap.max() < 1e-5


def test_ig_left_riemann_is_biased_on_quadratic(quadratic_model):
    model, a, b = quadratic_model
    x = _x(4, 6)
    res = attrib.attribute(model, x, "ig", target=0, n_steps=2, rule="riemann_left")
    assert res.completeness_gap.max() > 1e-3  # the closed form above must be able to fail


def test_completeness_gap_shrinks_with_steps(convnet):
    x = _x(3, 3, 12, 12)
    gaps = [attrib.attribute(convnet, x, "ig", target=0, n_steps=n, rule="riemann_right").completeness_gap.mean()
            for n in (2, 8, 32, 128)]
    assert all(later < earlier for earlier, later in zip(gaps, gaps[1:])), gaps
    gl = attrib.attribute(convnet, x, "ig", target=0, n_steps=16, rule="gausslegendre").completeness_gap
    assert gl.max() < 1e-3


def test_eg_single_reference_is_exact(linear_model):
    model, w = linear_model
    x, ref = _x(2, 2, 3, 3), _x(1, 2, 3, 3, seed=4)
    res = attrib.attribute(model, x, "eg", target=0, background=ref, n_samples=5)
    assert torch.allclose(res.values.double(), w * (x - ref), atol=1e-6)
    assert res.completeness_gap.max() < 1e-5


def test_eg_linear_converges_to_w_times_x_minus_mean(linear_model):
    model, w = linear_model
    x, background = _x(2, 2, 3, 3), _x(4, 2, 3, 3, seed=4)
    res = attrib.attribute(model, x, "eg", target=0, background=background, n_samples=4000)
    expected = w * (x - background.mean(dim=0))
    spread = (w * background.std(dim=0)).abs().max()
    assert (res.values.double() - expected).abs().max() < 0.1 * spread
    assert res.completeness_gap.max() < 0.1  # Monte Carlo: exact only in expectation


def test_smoothgrad_family_on_linear(linear_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    sg = attrib.attribute(model, x, "smoothgrad", target=0, n_samples=7)
    sq = attrib.attribute(model, x, "smoothgrad_squared", target=0, n_samples=7)
    var = attrib.attribute(model, x, "vargrad", target=0, n_samples=7)
    assert torch.allclose(sg.values.double(), w.expand_as(x), atol=1e-6)
    assert torch.allclose(sq.values.double(), (w * w).expand_as(x), atol=1e-6)
    assert var.values.abs().max() < 1e-6


def test_vargrad_on_quadratic_is_sigma_squared_times_row_norms(quadratic_model):
    model, a, b = quadratic_model
    x = _x(2, 6)
    res = attrib.attribute(model, x, "vargrad", target=0, n_samples=8000, noise_frac=0.1)
    sigma = 0.1 * (x.max(dim=1).values - x.min(dim=1).values)
    expected = sigma[:, None] ** 2 * (a * a).sum(dim=0)[None]  # Var[A e]_i = sigma^2 sum_j A_ij^2
    assert torch.allclose(res.values.double(), expected, rtol=0.06)


def test_smoothgrad_without_noise_is_the_gradient(convnet):
    x = _x(2, 3, 12, 12)
    sg = attrib.attribute(convnet, x, "smoothgrad", n_samples=3, noise_frac=0.0)
    grad = attrib.attribute(convnet, x, "gradient")
    assert torch.allclose(sg.values, grad.values, atol=1e-7)


def test_gradient_abs_and_gradient_x_input(linear_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    assert torch.allclose(attrib.attribute(model, x, "gradient", target=1).values.double(), -w.expand_as(x))
    assert torch.allclose(attrib.attribute(model, x, "gradient", target=1, abs=True).values.double(),
                          w.abs().expand_as(x))
    assert torch.allclose(attrib.attribute(model, x, "gxi", target=0).values.double(), x * w, atol=1e-7)


def test_float32_model_and_prob_target():
    w = torch.randn(5)
    model = Linear(w).float().eval()
    x = torch.randn(3, 5)
    res = attrib.attribute(model, x, "ig", target=attrib.ClassProb(0), n_steps=64, rule="gausslegendre")
    p = model(x).softmax(dim=1)[:, 0].detach()
    p0 = model(torch.zeros(1, 5)).softmax(dim=1)[0, 0].detach()
    assert torch.allclose(res.values.sum(dim=1), p - p0, atol=1e-4)
