"""MoreauGrad: closed forms with the noise off, monotone objective, sparsity, presets and bad options."""

import pytest
import torch

import attrib
from attrib.methods.moreaugrad import PRESETS, group_threshold, soft_threshold
from tests.toys import Linear, Quadratic, small_convnet

EXACT = dict(preset="paper", noise_frac=0.0, n_samples=2)  # 300 iterations: 0.9^200 ~ 1e-9 from the fixed point


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_vanilla_on_linear_is_w(linear_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    for preset in ("paper", "fast"):
        res = attrib.attribute(model, x, "moreaugrad", target=0, preset=preset, noise_frac=0.0, n_samples=2)
        assert torch.allclose(res.values.double(), w.expand_as(x), atol=1e-6), preset


def test_sparse_on_linear_is_soft_threshold(linear_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    res = attrib.attribute(model, x, "moreaugrad_sparse", target=0, eta=0.4, **EXACT)
    expected = soft_threshold(w, 0.4).expand_as(x)
    assert torch.allclose(res.values.double(), expected, atol=1e-6)
    assert (expected == 0).any() and (expected != 0).any()  # the threshold really bites


def test_group_on_linear_shrinks_blocks_including_partial_border_blocks():
    torch.manual_seed(4)
    w = torch.randn(2, 5, 7, dtype=torch.float64)
    model = Linear(w).eval()
    x = _x(1, 2, 5, 7)
    res = attrib.attribute(model, x, "moreaugrad_group", target=0, eta=1.5, group_size=3, **EXACT)
    expected = torch.zeros_like(w)
    for i in range(0, 5, 3):
        for j in range(0, 7, 3):
            block = w[:, i:i + 3, j:j + 3]
            expected[:, i:i + 3, j:j + 3] = block * max(0.0, 1 - 1.5 / float(block.norm()))
    assert torch.allclose(res.values[0].double(), expected, atol=1e-6)
    assert (expected == 0).any() and (expected != 0).any()
    assert torch.allclose(group_threshold(w[None], 1.5, 3)[0], expected)


def test_quadratic_closed_form():
    q, _ = torch.linalg.qr(_x(6, 6, seed=3))
    a = q @ torch.diag(torch.tensor([-0.2, 0.1, 0.3, 1.0, 2.5, 4.0], dtype=torch.float64)) @ q.T
    b = _x(6, seed=4)  # eigenvalues > -1 / rho keep I + rho A positive definite, and < 2 / lr - 1 / rho converge
    model = Quadratic(a, b).eval()
    x = _x(3, 6)
    for rho in (1.0, 0.5):
        res = attrib.attribute(model, x, "moreaugrad", target=0, rho=rho, **EXACT)
        expected = torch.linalg.solve(torch.eye(6, dtype=torch.float64) + rho * a, (x @ a + b).T).T
        assert torch.allclose(res.values.double(), expected, atol=1e-6), rho


@pytest.mark.parametrize("method", ["moreaugrad", "moreaugrad_sparse", "moreaugrad_group"])
def test_objective_does_not_increase_for_fixed_noise(method):
    model, x = small_convnet(), _x(2, 3, 12, 12)
    extra = {"group_size": 4, "eta": 1e-3} if method == "moreaugrad_group" else {}
    res = attrib.attribute(model, x, method, target=[0, 1], preset="paper", n_iter=30, average_last=5,
                           n_samples=4, resample_noise=False, **extra)
    objective = res.extras["objective"]
    assert objective.shape == (2, 30)
    assert (objective[:, 1:] <= objective[:, :-1] + 1e-9).all()
    assert (objective[:, -1] < objective[:, 0]).all()


def test_sparsity_grows_with_eta():
    model, x = small_convnet(), _x(2, 3, 12, 12)
    zeros = []
    for eta in (1e-4, 3e-3, 1e-2):
        values = attrib.attribute(model, x, "moreaugrad_sparse", target=0, eta=eta, n_iter=10,
                                  average_last=1).values
        zeros.append(float((values == 0).float().mean()))
    assert zeros[0] < zeros[1] < zeros[2], zeros


def test_presets_and_cost():
    spec = attrib.METHODS["moreaugrad"]
    paper, fast = spec.make_config(preset="paper"), spec.make_config()
    assert (paper.n_iter, paper.n_samples, paper.average_last, paper.lr, paper.rho) == (300, 32, 100, 0.1, 1.0)
    assert (fast.n_iter, fast.n_samples, fast.average, fast.antithetic) == (60, 16, "gradients", True)
    assert spec.rows(paper) == 9600 and spec.rows(fast) <= 960
    assert spec.make_config(n_iter=7, average_last=2).n_samples == PRESETS["fast"]["n_samples"]
    # n_iter alone keeps the preset's averaged share (fast 45 of 60, paper 100 of 300) instead of failing
    assert [spec.make_config(n_iter=n).average_last for n in (1, 4, 60, 120)] == [1, 3, 45, 90]
    assert spec.make_config(preset="paper", n_iter=30).average_last == 10
    assert attrib.METHODS["moreaugrad_sparse"].make_config().eta == 5e-3
    group = attrib.METHODS["moreaugrad_group"].make_config()
    assert (group.eta, group.group_size) == (5e-2, 14)


@pytest.mark.parametrize("config,match", [
    ({"preset": "slow"}, "unknown preset"),
    ({"n_iter": 5, "average_last": 10}, "cannot exceed n_iter"),
    ({"n_samples": 3}, "antithetic noise needs an even n_samples"),
    ({"rho": 0.0}, r"^moreaugrad: rho must be > 0, got 0\.0$"),
    ({"lr": float("nan")}, r"^moreaugrad: lr must be > 0, got nan$"),
    ({"noise_frac": -0.1}, r"^moreaugrad: noise_frac must be >= 0, got -0\.1$"),
])
def test_bad_options(config, match):
    with pytest.raises(ValueError, match=match):
        attrib.METHODS["moreaugrad"].make_config(**config)


def test_group_needs_images():
    model = Linear(torch.randn(6, dtype=torch.float64)).eval()
    with pytest.raises(ValueError, match="needs image inputs"):
        attrib.attribute(model, _x(2, 6), "moreaugrad_group", target=0, n_iter=2, average_last=1)


def test_fast_estimator_is_exact_on_linear_models_for_every_variant(linear_model):
    model, w = linear_model
    x = _x(2, 2, 3, 3)
    sparse = attrib.attribute(model, x, "moreaugrad_sparse", target=0, eta=0.4, noise_frac=0.0).values
    assert torch.allclose(sparse.double(), soft_threshold(w, 0.4).expand_as(x), atol=1e-6)


def test_fast_agrees_with_paper_on_a_small_nonlinear_net():
    from attrib.evaluate.similarity import magnitude_map, spearman

    model, x = small_convnet(), _x(3, 3, 12, 12)
    paper = attrib.attribute(model, x, "moreaugrad", target=0, preset="paper", n_iter=150, average_last=50,
                             n_samples=8).values.numpy()
    fast = attrib.attribute(model, x, "moreaugrad", target=0, seed=1).values.numpy()
    assert min(spearman(magnitude_map(p), magnitude_map(f)) for p, f in zip(paper, fast)) > 0.9
