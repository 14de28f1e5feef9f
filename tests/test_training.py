"""Training helpers: PGD stays in its ball and the data range and raises the loss; training is seeded."""

import pytest
import torch
import torch.nn.functional as F

from attrib.training import PGD, Recipe, TrainingDiverged, accuracy, init_seeded, robust_accuracy, train


def _net():
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(120, 6, generator=g)
    y = (x[:, 0] * 3).long().clamp(max=2)
    return x, y


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_stays_in_the_ball_and_the_data_range_and_raises_the_loss(data, norm):
    x, y = data
    model = train(init_seeded(_net, 0), x, y, Recipe(epochs=5, lr=1e-2))
    attack = PGD(0.3, norm, steps=10)
    adv = attack(model, x, y, torch.Generator().manual_seed(1))
    delta = adv - x
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert size.max() <= 0.3 + 1e-5
    assert adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)
    assert robust_accuracy(model, x, y, attack) < accuracy(model, x, y)


def test_pgd_with_zero_radius_is_the_identity(data):
    x, y = data
    assert PGD(0.0)(_net(), x, y) is x


def test_training_is_seeded_and_leaves_the_global_rng_alone(data):
    x, y = data
    state = torch.random.get_rng_state()
    recipe = Recipe(epochs=2, lr=1e-2, eps=0.1, pgd_steps=2)
    a = train(init_seeded(_net, 4), x, y, recipe, seed=4)
    b = train(init_seeded(_net, 4), x, y, recipe, seed=4)
    c = train(init_seeded(_net, 5), x, y, recipe, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(a[0].weight, c[0].weight)


def test_standard_training_learns(data):
    x, y = data
    model = train(init_seeded(_net, 0), x, y, Recipe(epochs=40, lr=1e-2, batch_size=32))
    assert accuracy(model, x, y) > 0.9


def test_a_diverging_run_is_an_error_not_an_accuracy(data):
    """A NaN loss gives NaN weights, whose accuracy would be read as a result; it is one clear error instead."""
    x, y = data
    with pytest.raises(TrainingDiverged, match="diverged in epoch 1 of 3: .* learning rate 1e\\+30; try a lower --lr"):
        train(init_seeded(_net, 0), x * 1e30, y, Recipe(epochs=3, lr=1e30, batch_size=32))
