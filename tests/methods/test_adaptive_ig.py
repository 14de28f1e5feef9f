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


def test_a_network_without_biases_at_a_zero_baseline():
    """Every ReLU sits on its kink at x' = 0, where autograd's gradient is 0, while along (0, 1] the gradient is
    constant. Gauss-Legendre never evaluates a = 0 and is exact; the adaptive rule weights that 0 and comes out
    uniformly short, but within its tolerance, and says so through its gap (README, bench/RESULTS.md)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 10 * 10, 3, bias=False)).eval()
    x = _x(2, 3, 12, 12).float().requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x)[:, 0].sum(), x)
    exact = (x * grad).detach()  # positively homogeneous: IG = x * the gradient at x
    gl = attrib.attribute(net, x.detach(), "ig", target=0, rule="gausslegendre", n_steps=8)
    assert torch.allclose(gl.values, exact, rtol=1e-4, atol=1e-7)
    res = attrib.attribute(net, x.detach(), "ig", target=0)
    assert res.extras["converged"].all() and (res.completeness_gap <= 0.01).all()
    scale = res.values.flatten(1).sum(1) / exact.flatten(1).sum(1)
    assert torch.allclose(res.values, exact * scale.view(-1, 1, 1, 1), rtol=1e-4, atol=1e-7)  # uniformly short
    assert (scale < 1).all() and torch.allclose(1 - scale, res.completeness_gap, rtol=1e-3)


def test_a_tighter_tolerance_reaches_it():
    net, x = small_convnet(), _x(3, 3, 12, 12, seed=9)
    res = attrib.attribute(net, x, "ig", target=0, tol=1e-3, n_steps=512)
    assert res.extras["converged"].all() and (res.completeness_gap <= 1e-3).all()
    gl = attrib.attribute(net, x, "ig", target=0, rule="gausslegendre", n_steps=512)
    rel = (res.values - gl.values).abs().sum() / gl.values.abs().sum()
    assert rel < 0.05  # the same map as a fine fixed rule


def _refine(path, grad, phi, tol=1e-2, budget=256, start=8):
    """Run the adaptive rule on a path given as functions of a; the estimated error variance after each round."""
    for a in adaptive.start_grid(start, budget):
        path.add(a, grad(a), phi(a))
    sums = []
    while path.state == "refining":
        sums.append(sum(path.errors()[0]))
        for a in adaptive.step(path, tol, budget):
            path.add(a, grad(a), phi(a))
    sums.append(sum(path.errors()[0]))
    return sums


def test_refinement_never_increases_the_indicator_sum():
    """A smooth path (tanh along it): each round's bisections shrink the estimated error variance, and the rule
    stops once the map's estimate is under the floor and the gap within tol."""
    w, d = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    grad = lambda a: w * math.tanh(6 * (a - 0.37))  # noqa: E731
    phi = lambda a: float((w * d).sum()) * math.log(math.cosh(6 * (a - 0.37))) / 6  # noqa: E731
    path = adaptive.Path(d)
    sums = _refine(path, grad, phi, tol=1e-4, budget=128)
    assert all(later <= earlier for earlier, later in zip(sums, sums[1:])) and len(sums) > 3
    assert path.state == "converged" and path.gap() <= 1e-4 and path.map_error() <= path.floor
    exact = w * (math.log(math.cosh(6 * 0.63)) - math.log(math.cosh(6 * 0.37))) / 6
    assert torch.allclose(path.map(), d * exact, rtol=1e-3)


class RoughPath:
    """A gradient that jumps at many random places along the path (denser near the baseline) and relaxes
    between jumps, as a ReLU network's wanders; its integral and F are exact in closed form."""

    def __init__(self, pixels=400, jumps=3000, relax=0.05, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.at, _ = torch.sort(torch.rand(jumps, generator=gen, dtype=torch.float64) ** 2)
        self.size = torch.randn(jumps, pixels, generator=gen, dtype=torch.float64) / math.sqrt(jumps)
        self.start = 0.1 * torch.randn(pixels, generator=gen, dtype=torch.float64)
        self.d, self.relax = torch.ones(pixels, dtype=torch.float64), relax

    def grad(self, a):
        on = self.at <= a
        return self.start + (torch.exp((self.at[on] - a) / self.relax)[:, None] * self.size[on]).sum(0)

    def integral(self, a=1.0):
        on = self.at <= a
        kept = self.relax * (1 - torch.exp((self.at[on] - a) / self.relax))
        return a * self.start + (kept[:, None] * self.size[on]).sum(0)

    def phi(self, a):
        return float(self.integral(a).sum())


def _rel(estimate, exact):
    return float((estimate - exact).abs().sum() / exact.abs().sum())


def test_on_a_rough_path_the_map_is_as_accurate_as_the_matched_rule():
    """The map's error estimate is close to its true error, and the rule stops when its map is as accurate as
    the matched Gauss-Legendre rule's (the model's claim)."""
    from attrib.methods.integrated_gradients import quadrature

    nodes, weights = quadrature("gausslegendre", 200)
    for seed in range(3):
        rough = RoughPath(seed=seed)
        exact = rough.integral()
        path = adaptive.Path(rough.d, match_steps=200)
        _refine(path, rough.grad, rough.phi, budget=400)
        assert path.state == "converged" and path.gap() <= 1e-2
        error = _rel(path.map(), rough.d * exact)
        assert 0.5 < path.map_error() / error < 2
        gauss = sum(w * rough.grad(float(a)) for a, w in zip(nodes, weights))
        assert error <= 1.1 * _rel(gauss, exact)


def test_match_steps_trades_passes_for_accuracy():
    rough = RoughPath(seed=7)
    runs = {}
    for match in (0, 50, 200):
        path = adaptive.Path(rough.d, match_steps=match)
        _refine(path, rough.grad, rough.phi, budget=1000)
        runs[match] = (len(path.nodes), _rel(path.map(), rough.d * rough.integral()))
    assert runs[0][0] < runs[50][0] < runs[200][0]
    assert runs[200][1] < runs[50][1] < runs[0][1]


def test_the_roughness_is_zero_where_the_gradient_is_linear_along_the_path():
    path = adaptive.Path(torch.ones(2, dtype=torch.float64))
    for a in (0.0, 0.25, 0.5, 1.0):
        path.add(a, torch.tensor([2 * a, 1 - a], dtype=torch.float64), 0.0)
    assert path.variances() == pytest.approx([0.0, 0.0, 0.0], abs=1e-20)  # zero up to rounding
    path.add(0.75, torch.tensor([1.0, 0.0], dtype=torch.float64), 0.0)  # off the line by (-0.5, -0.25)
    assert all(v > 0 for v in path.variances()[1:])


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


class _Level(torch.nn.Module):
    """F(z) = z0 - z1 + (z0^3 - z0) / 10: F(1, 1) = F(0, 0) = 0 exactly, attributions (1, -1)."""

    def forward(self, z):
        return z[:, :1] - z[:, 1:2] + 0.1 * (z[:, :1] ** 3 - z[:, :1])


def test_equal_end_values_leave_the_gap_undefined_and_the_map_converges_alone():
    from attrib.jobs.common import attribution_row, gap_warnings

    res = attrib.attribute(_Level().eval(), torch.ones(1, 2, dtype=torch.float64), "ig", target=0, baseline="zero")
    assert math.isinf(res.completeness_gap.item())  # |sum - 0| / 0: no refinement can bring it within tol
    assert res.extras["converged"].item() and res.extras["steps"].item() == 9  # the map alone decided
    assert torch.allclose(res.values.double(), torch.tensor([[1.0, -1.0]], dtype=torch.float64), atol=2e-3)
    entry = attribution_row(res, 0)
    assert entry["gap"] is None and entry["gap_undefined"]
    (said,) = gap_warnings(entry, "integrated_gradients")
    assert "F(x) equals F(baseline)" in said and "undefined" in said
    stalled = {**entry, "gap_undefined": False, "gap": 0.3, "converged": False, "passes": 30, "budget": 256}
    spent = {**stalled, "passes": 256}
    assert "raise n_steps (--set integrated_gradients.n_steps=N)" in gap_warnings(spent, "integrated_gradients")[0]
    (in_bf16,) = gap_warnings(spent, "integrated_gradients", "bf16")  # more steps do not remove rounding
    assert "run in fp32 (--precision fp32): in bf16 rounding reads as roughness" in in_bf16 and "n_steps" not in in_bf16
    met = {**stalled, "converged": True, "tol": 0.5}  # converged within a tolerance set over 5%: more steps or not
    assert gap_warnings(met, "integrated_gradients") == [
        "completeness gap 30.0% > 5%; lower tol (--set integrated_gradients.tol=0.01; this run's: 0.5) for a "
        "faithful map"]
    assert "raise n_steps" in gap_warnings({**met, "tol": 0.01}, "integrated_gradients")[0]  # (not its tolerance)


class _ScaleFree(torch.nn.Module):
    """F(z) = w . z / |z|: the same for every a z, a > 0, and 0 at z = 0 (as a LayerNorm'd net without biases):
    the whole integral sits in a jump at the baseline."""

    def forward(self, z):
        return (z / z.norm(dim=1, keepdim=True).clamp_min(1e-30)) @ torch.tensor([[1.0], [2.0], [-1.0]])


def test_a_jump_no_bisection_resolves_is_said_to_need_another_baseline_not_more_steps():
    """The warning said "raise n_steps" when the rule stopped at its narrowest panels, where more steps do not
    help (a random HF ConvNeXt: gap 6149137% after 36 steps; with --set baseline=blur, 0.02%)."""
    from attrib.jobs.common import attribution_row, gap_warnings

    res = attrib.attribute(_ScaleFree().eval(), torch.tensor([[1.0, 0.5, 0.2]]), "ig", target=0, baseline="zero")
    entry = attribution_row(res, 0)
    assert entry["converged"] is False and entry["passes"] < entry["budget"]
    (said,) = gap_warnings(entry, "integrated_gradients")
    assert "(F jumps within a stretch of the path narrower than 1e-09, which more steps cannot resolve)" in said
    assert said.endswith("another baseline may help (--set integrated_gradients.baseline=blur): at a zero "
                         "baseline, a normalisation layer whose input is all zero can make such a jump")
    assert "n_steps" not in said
    assert "(--set integrated_gradients.baseline=...)" in gap_warnings(entry, "integrated_gradients", images=False)[0]


def test_a_huge_gap_is_written_in_three_significant_digits():
    """A rule that evaluates the scale-free net at its baseline (the trapezoid's end node) sums to ~1e29 times
    F's change: the warning and the table wrote all 32 digits of that percentage (a random ConvNeXt-Atto at 8
    steps: 12900123570068749878401433600.00%)."""
    import re

    from rich.console import Console

    from attrib.jobs.common import attribution_row, gap_warnings
    from attrib.render.terminal import input_table

    res = attrib.attribute(_ScaleFree().eval(), torch.tensor([[1.0, 0.5, 0.2]]), "ig", target=0, baseline="zero",
                           rule="trapezoid", n_steps=4)
    entry = attribution_row(res, 0)
    assert entry["gap"] > 1e20
    written = f"{100 * entry['gap']:.3g}%"
    (said,) = gap_warnings(entry, "integrated_gradients")
    assert said.startswith(f"completeness gap {written} > 5%")
    console = Console(width=200, record=True)
    console.print(input_table({"name": "x", "predictions": [], "attributions": [
        {"method": "integrated_gradients", "completeness_gap": entry["gap"], "target": None, "seconds": 0.1}]}))
    shown = console.export_text()
    assert written in shown and not re.search(r"\d{10}", shown)


def test_explain_warns_when_the_budget_runs_out(run_cli_images):
    result = run_cli_images("-m", "ig", "--set", "n_steps=6", "--set", "tol=0.000001")
    said = " ".join(result.output.split())
    assert "spent its budget of 6 steps before reaching a gap within tol 0.0%" in said
    assert "estimated map error" in said


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
