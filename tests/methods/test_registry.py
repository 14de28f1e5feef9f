"""Properties every registered method must have: parametrized over the registry."""

import dataclasses

import pytest
import torch

import attrib
from tests.toys import small_convnet

METHOD_NAMES = attrib.METHODS.of_kind("tensor")  # text methods (olm, unk, ...) are tested in tests/text


def _inputs(n=3):
    return torch.randn(n, 3, 12, 12, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def _config(name, x, **extra):
    spec = attrib.METHODS[name]
    if "background" in spec.needs:
        extra.setdefault("background", torch.randn(5, *x.shape[1:], generator=torch.Generator().manual_seed(3),
                                                   dtype=x.dtype))
    return {**spec.smoke, **extra}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_chunk_size_does_not_change_results(name):
    model, x = small_convnet(), _inputs()
    results = [attrib.attribute(model, x, name, target=[0, 1, 2], chunk_size=c, **_config(name, x)).values
               for c in (1, 7, 10_000)]
    for other in results[1:]:
        assert torch.allclose(results[0], other, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_passes_follow_the_cost_formula(name):
    model, x = small_convnet(), _inputs()
    cfg = _config(name, x)
    res = attrib.attribute(model, x, name, **cfg)
    spec = attrib.METHODS[name]
    assert res.passes == len(x) * spec.rows(spec.make_config(**cfg))
    assert res.values.shape == x.shape and res.values.dtype == torch.float32 and res.values.device.type == "cpu"
    assert res.method == name and set(res.config) == {f.name for f in dataclasses.fields(spec.config)}


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_same_seed_same_result_other_seed_differs(name):
    model, x = small_convnet(), _inputs()
    cfg = _config(name, x)
    first = attrib.attribute(model, x, name, seed=11, **cfg).values
    again = attrib.attribute(model, x, name, seed=11, **cfg).values
    other = attrib.attribute(model, x, name, seed=12, **cfg).values
    assert torch.equal(first, again)
    assert torch.equal(first, other) != attrib.METHODS[name].stochastic


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_batch_order_does_not_change_results(name):
    model, x = small_convnet(), _inputs(4)
    cfg = _config(name, x)
    perm = torch.tensor([2, 0, 3, 1])
    a = attrib.attribute(model, x, name, target=[0, 1, 2, 3], **cfg).values
    b = attrib.attribute(model, x[perm], name, target=[2, 0, 3, 1], input_keys=perm.tolist(), **cfg).values
    assert torch.allclose(a[perm], b, atol=1e-6)  # random draws follow the input's key, not its position


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_an_input_draws_the_same_alone_or_in_a_batch(name):
    model, x = small_convnet(), _inputs(3)
    cfg = _config(name, x)
    batch = attrib.attribute(model, x, name, target=[0, 1, 2], input_keys=[0, 0, 0], **cfg).values
    alone = attrib.attribute(model, x[2:], name, target=[2], **cfg).values
    assert torch.allclose(batch[2:], alone, atol=1e-6)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_bf16_runs_and_roughly_agrees(name):
    model, x = small_convnet(torch.float32), _inputs().float()
    cfg = _config(name, x)
    full = attrib.attribute(model, x, name, **cfg)
    half = attrib.attribute(model, x, name, precision="bf16", **cfg)
    assert half.precision == "bf16" and half.values.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(full.values.flatten(), half.values.flatten(), dim=0)
    assert cos > 0.9


def test_aliases_resolve_and_names_are_listed():
    assert attrib.METHODS["ig"] is attrib.METHODS["integrated_gradients"]
    assert attrib.METHODS["EG"].name == "expected_gradients"
    assert "ig" in attrib.METHODS and "nope" not in attrib.METHODS
    assert set(attrib.METHODS) >= {"gradient", "gradient_x_input", "integrated_gradients", "expected_gradients",
                                   "smoothgrad", "smoothgrad_squared", "vargrad"}
    with pytest.raises(KeyError, match="valid methods: gradient"):
        attrib.METHODS["integrated_gradient"]


def test_a_result_shows_as_one_line_of_its_shapes_and_numbers():
    """repr(res) in a notebook printed every value of every tensor (14 KB for two 12x12 inputs)."""
    net = small_convnet()
    res = attrib.attribute(net, torch.randn(2, 3, 12, 12, dtype=torch.float64), "ig", target=[1, 2], n_steps=8)
    shown = repr(res)
    assert shown.startswith("Attribution(method='integrated_gradients', values=<float32 (2, 3, 12, 12)>, "
                            "target=[1, 2], completeness_gap=[") and "\n" not in shown and len(shown) < 300
    assert f"passes={res.passes}, seed=0, device='cpu'" in shown
    assert shown.endswith("extras=[steps, converged, map_error])")
    many = attrib.attribute(net, torch.randn(10, 3, 12, 12, dtype=torch.float64), "gradient", target=0, versus=1)
    assert "target=[0, 0, 0, 0, 0, 0, 0, 0, ...], versus=[1, 1, 1, 1, 1, 1, 1, 1, ...], completeness_gap=None" \
        in repr(many)


def test_signed_flags():
    m = attrib.METHODS
    assert m["ig"].is_signed(m["ig"].make_config()) and m["smoothgrad"].is_signed(m["sg"].make_config())
    assert not m["vargrad"].is_signed(m["vargrad"].make_config())
    assert not m["gradient"].is_signed(m["gradient"].make_config(abs=True))


def test_overwriting_a_registration_warns():
    from attrib.methods import METHODS, register_method

    spec = METHODS["gradient"]
    with pytest.warns(UserWarning, match="registered again"):
        register_method("gradient", aliases=spec.aliases, config=spec.config, rows=spec.rows, cost=spec.cost,
                        summary=spec.summary, signed=spec.signed)(spec.fn)


def test_a_method_of_the_other_input_kind_says_where_it_belongs():
    with pytest.raises(attrib.UnknownMethodError, match="explains text inputs.*attrib explain-text"):
        attrib.METHODS.canonical("olm", "tensor")
    with pytest.raises(ValueError, match="explains text"):
        attrib.attribute(lambda x: x, torch.zeros(1, 2), "olm_s")
