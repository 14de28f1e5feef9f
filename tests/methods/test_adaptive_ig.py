"""Integrated Gradients' adaptive rule: exact where the trapezoid is exact, the gap it reports is the true
one, refinement reduces the error indicator, results do not depend on chunking or the batch, and a spent
budget is flagged. Plus Expected Gradients' Monte Carlo error of the gap."""

import math

import pytest
import torch

import attrib
from attrib.methods import adaptive
from tests.toys import small_convnet


def _x(*shape, seed=5):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_exact_on_linear_and_quadratic_models(linear_model, quadratic_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    res = attrib.attribute(model, x, "ig", target=0)
    assert res.config["rule"] == "adaptive" and res.extras["converged"].all()
    assert torch.allclose(res.values.double(), x * w, atol=1e-6)
    model, a, b = quadratic_model
    x = _x(3, 6)
    res = attrib.attribute(model, x, "ig", target=0, baseline="zero")
    expected = x * (x @ a / 2 + b)  # the gradient is linear along the path: the trapezoid rule is exact
    assert torch.allclose(res.values.double(), expected, atol=1e-6)
    assert res.extras["steps"].tolist() == [9, 9, 9]  # converged on the starting grid


def test_the_reported_gap_is_the_true_gap():
    net, x = small_convnet(), _x(3, 3, 12, 12)
    res = attrib.attribute(net, x, "ig", target=[0, 1, 2], n_steps=24)
    with torch.no_grad():
        f = net(x)[torch.arange(3), torch.tensor([0, 1, 2])]
        f0 = net(torch.zeros_like(x))[torch.arange(3), torch.tensor([0, 1, 2])]
    true_gap = (res.values.double().flatten(1).sum(1) - (f - f0)).abs() / (f - f0).abs()
    assert torch.allclose(res.completeness_gap.double(), true_gap, rtol=1e-4, atol=1e-6)


def test_a_tighter_tolerance_reaches_it():
    net, x = small_convnet(), _x(3, 3, 12, 12, seed=9)
    res = attrib.attribute(net, x, "ig", target=0, tol=1e-3, n_steps=512)
    assert res.extras["converged"].all() and (res.completeness_gap <= 1e-3).all()
    gl = attrib.attribute(net, x, "ig", target=0, rule="gausslegendre", n_steps=512)
    rel = (res.values - gl.values).abs().sum() / gl.values.abs().sum()
    assert rel < 0.05  # the same map as a fine fixed rule


def test_refinement_never_increases_the_indicator_sum():
    """A path whose gradient is monotone in each coordinate (here tanh along the path): bisecting a panel can
    only shrink its |g(b) - g(a)| share, so the indicator sum falls round after round."""
    w, d = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    grad = lambda a: w * math.tanh(6 * (a - 0.37))  # noqa: E731
    phi = lambda a: float((w * d).sum()) * math.log(math.cosh(6 * (a - 0.37))) / 6  # noqa: E731
    path = adaptive.Path(d)
    for a in adaptive.start_grid(4, 64):
        path.add(a, grad(a), phi(a))
    sums = []
    while path.state == "refining":
        sums.append(sum(path.indicator(a, b) for a, b in path.panels()))
        for a in adaptive.step(path, 1e-4, 64):
            path.add(a, grad(a), phi(a))
    sums.append(sum(path.indicator(a, b) for a, b in path.panels()))
    assert all(later <= earlier + 1e-12 for earlier, later in zip(sums, sums[1:])) and len(sums) > 3
    assert path.state == "converged" and path.gap() <= 1e-4


@pytest.mark.parametrize("chunk", [1, 5, 10_000])
def test_chunk_size_and_batch_do_not_change_results(chunk):
    net, x = small_convnet(), _x(3, 3, 12, 12, seed=2)
    together = attrib.attribute(net, x, "ig", target=[0, 1, 2], n_steps=40, chunk_size=chunk)
    for i in range(3):
        alone = attrib.attribute(net, x[i:i + 1], "ig", target=[i], n_steps=40, chunk_size=7)
        assert alone.extras["steps"].item() == together.extras["steps"][i].item()
        assert torch.allclose(alone.values[0], together.values[i], rtol=1e-5, atol=1e-8)


def test_a_spent_budget_is_flagged():
    net, x = small_convnet(), _x(2, 3, 12, 12, seed=3)
    res = attrib.attribute(net, x, "ig", target=0, tol=1e-9, n_steps=12)
    assert res.extras["steps"].tolist() == [12, 12] and not res.extras["converged"].any()
    assert res.passes == 24  # no extra forward: F at the baseline is the node a = 0


def test_explain_warns_when_the_budget_runs_out(run_cli_images):
    result = run_cli_images("-m", "ig", "--set", "n_steps=6", "--set", "tol=0.000001")
    assert "spent its budget of 6 steps before reaching tol" in " ".join(result.output.split())


def test_eg_reports_the_monte_carlo_error_of_its_gap():
    net, x = small_convnet(), _x(2, 3, 12, 12, seed=4)
    background = _x(6, 3, 12, 12, seed=8)
    few = attrib.attribute(net, x, "eg", target=0, background=background, n_samples=16)
    many = attrib.attribute(net, x, "eg", target=0, background=background, n_samples=256)
    assert (few.extras["gap_stderr"] > 0).all()
    assert (many.extras["gap_stderr"] < few.extras["gap_stderr"]).all()  # ~ 1 / sqrt(n_samples)
    ratio = few.extras["gap_stderr"] / many.extras["gap_stderr"]
    assert ((ratio > 2) & (ratio < 8)).all()  # sqrt(256 / 16) = 4


@pytest.fixture
def run_cli_images(tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from attrib.cli import main

    Image.new("RGB", (40, 40), (120, 30, 200)).save(tmp_path / "a.png")

    def run(*args):
        return CliRunner().invoke(main, ["explain", str(tmp_path / "a.png"), "-M", "timm:test_resnet",
                                         "--no-pretrained", "--out", str(tmp_path / "o"), *args])

    return run
