"""Bad arguments raise one clear error naming what is wrong."""

import math

import numpy as np
import pytest
import torch

import attrib
from tests.toys import small_convnet


@pytest.fixture
def setup():
    return small_convnet(), torch.randn(2, 3, 12, 12, dtype=torch.float64)


def test_unknown_method_lists_valid_names(setup):
    model, x = setup
    with pytest.raises(attrib.UnknownMethodError) as err:
        attrib.attribute(model, x, "integrated_gradient")
    assert "unknown method 'integrated_gradient'" in str(err.value)
    assert "integrated_gradients (ig)" in str(err.value) and "smoothgrad" in str(err.value)



def test_a_registry_entry_names_its_method(setup):
    model, x = setup  # it was "unknown method MethodSpec(name='integrated_gradients', fn=<function ...>, ...)"
    by_entry = attrib.attribute(model, x, attrib.METHODS["ig"], rule="gausslegendre", n_steps=8)
    assert by_entry.method == "integrated_gradients"
    assert torch.equal(by_entry.values, attrib.attribute(model, x, "ig", rule="gausslegendre", n_steps=8).values)

@pytest.mark.parametrize("target,match", [
    (4, r"target class 4 is out of range: the model has 4 classes \(valid indices 0..3\)"),
    (-1, "out of range"),
    ([0, 1, 2], "3 classes for 2 inputs"),
    ([1], "target lists 1 class for 2 inputs; give one per input"),
    ("cat", "target must be"),
    (True, "not a bool"),
    (np.bool_(True), "not a bool"),
    (1.0, "not float"),
    (torch.tensor([1.0, 2.0]), "target classes must be ints, got 1.0"),  # was silently class 1 and 2
    (np.array([0.5, 1.5]), "target classes must be ints, got 0.5"),
    ([True, False], "target classes must be ints, got True"),
    (lambda out: out.argmax(dim=1), r"must return floating-point scores, got torch\.int64 \(a class index from argmax"),
    (lambda out: out.sum(), r"must return shape \(2,\), got \(\)"),
])
def test_wrong_target(setup, target, match):
    model, x = setup
    with pytest.raises((ValueError, TypeError), match=match):
        attrib.attribute(model, x, "gradient", target=target)


@pytest.mark.parametrize("target", [np.int64(2), torch.tensor(2), np.array(2), np.array([2, 2]),
                                    [np.int32(2), torch.tensor(2)], torch.tensor([[2], [2]])])
def test_numpy_and_tensor_targets_are_classes(setup, target):
    """A label taken from a numpy array or a tensor (y[i], y[:2]) is the class it names."""
    model, x = setup
    result = attrib.attribute(model, x, "gradient", target=target)
    assert result.target == [2, 2]
    assert torch.equal(result.values, attrib.attribute(model, x, "gradient", target=2).values)


def test_wrong_background_shape(setup):
    model, x = setup
    with pytest.raises(ValueError, match=r"background must have shape \(N, 3, 12, 12\).*got \(5, 3, 10, 10\)"):
        attrib.attribute(model, x, "eg", background=torch.randn(5, 3, 10, 10, dtype=torch.float64))


def test_missing_background(setup):
    model, x = setup
    with pytest.raises(ValueError, match=r"^expected_gradients: needs background=<tensor \(N, ...\) of reference "
                                         r"inputs>$"):
        attrib.attribute(model, x, "eg")


@pytest.mark.parametrize("config,match", [
    ({"n_step": 5}, "unknown option.*n_step.*valid options: n_steps, baseline, rule"),
    ({"n_steps": 0}, "n_steps must be a positive integer"),
    ({"rule": "simpson"}, "unknown rule 'simpson'"),
    ({"rule": "trapezoid", "n_steps": 1}, "trapezoid rule needs n_steps >= 2"),
    ({"n_steps": 2}, "adaptive rule needs n_steps >= 3"),
    ({"start_steps": 1}, "start_steps must be an integer >= 2, got 1"),
    ({"tol": -1.0}, r"tol must be > 0, got -1\.0$"),
    ({"match_steps": -1}, "match_steps must be an integer >= 0"),
    ({"baseline": "grey"}, "unknown baseline 'grey'; use one of zero, blur, uniform, black, white or a tensor"),
    ({"baseline": "black"}, r"the black baseline is a picture as the model reads it, .* \(\(pixel - mean\) / std\)"),
    ({"baseline": torch.zeros(4, 4)}, "does not broadcast"),
    ({"baseline": "blur", "blur_sigma_frac": 0.0}, r"blur_sigma_frac must be > 0, got 0\.0"),  # the input itself
    ({"tol": "0.1"}, r"tol must be a number, got '0\.1'"),
    ({"n_steps": 2.5}, r"n_steps must be an integer, got 2\.5"),
])
def test_bad_ig_config(setup, config, match):
    model, x = setup
    with pytest.raises(ValueError, match=match):
        attrib.attribute(model, x, "ig", **config)


@pytest.mark.parametrize("kwargs,match", [
    ({"seed": -1}, "seed must be a non-negative integer"),
    ({"seed": 2 ** 64 + 5}, r"seed must be at most 2\*\*32 - 1 \(4294967295\), got 18446744073709551621"),  # ran as 5
    ({"precision": "fp16"}, "precision must be one of fp32, tf32, bf16"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
    ({"noise_frac": -0.1}, "noise_frac must be >= 0"),
    ({"device": "cuda:63"}, "device 'cuda:63' requested but this machine has (no|[0-9]+) CUDA devices"),
    ({"device": "tpu"}, "unknown device 'tpu'; use cpu, cuda, cuda:N or mps"),
])
def test_bad_run_options(setup, kwargs, match):
    model, x = setup
    with pytest.raises(ValueError, match=match):
        attrib.attribute(model, x, "smoothgrad", **kwargs)


def test_a_progress_that_cannot_be_called_is_refused_before_any_pass(setup):
    model, x = setup  # it was "'int' object is not callable", raised from inside the engine after the first chunk
    with pytest.raises(TypeError, match="progress must be a callable taking the rows finished, or None; got 5"):
        attrib.attribute(model, x, "smoothgrad", progress=5)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_samples": 1}, r"n_samples must be >= 2 for a variance \(one draw's is 0\), got 1"),
    ({"noise_frac": 0.0}, r"noise_frac must be > 0 for a variance \(without noise every draw is the same gradient\)"),
    ({"n_samples": 0}, "n_samples must be a positive integer, got 0"),
])
def test_vargrad_refuses_options_that_make_its_map_zero(setup, kwargs, match):
    model, x = setup
    with pytest.raises(ValueError, match=match):
        attrib.attribute(model, x, "vargrad", **kwargs)
    if kwargs.get("n_samples", 1) >= 1:
        attrib.attribute(model, x, "smoothgrad", **kwargs)  # SmoothGrad takes one draw, or no noise (the gradient)


@pytest.mark.parametrize("inputs,match", [
    ([1.0, 2.0], "inputs must be a torch.Tensor or numpy array"),
    (np.zeros((2, 3, 12, 12), dtype=np.int64), "floating point"),
    (torch.zeros(0, 3, 12, 12), "non-empty batch"),
    (torch.zeros(2, 3, 12, 12, dtype=torch.long), "floating point"),
    (torch.full((1, 3, 12, 12), float("nan")), "NaN"),
])
def test_bad_inputs(setup, inputs, match):
    model, _ = setup
    with pytest.raises((TypeError, ValueError), match=match):
        attrib.attribute(model, inputs, "gradient")


def test_numpy_inputs_are_the_same_inputs(setup):
    """A numpy array (read-only too, as np.load's memory maps are) is explained as the tensor it holds."""
    model, x = setup
    array = x.numpy().astype(np.float64)
    array.flags.writeable = False
    got = attrib.attribute(model, array, "ig", seed=0, rule="gausslegendre", n_steps=8)
    expected = attrib.attribute(model, x, "ig", seed=0, rule="gausslegendre", n_steps=8)
    assert torch.equal(got.values, expected.values)
    assert torch.equal(attrib.predict(model, array), attrib.predict(model, x))
    refs = torch.rand(3, *x.shape[1:])  # so are tensor-valued options: EG's background, IG's baseline
    for method, option in (("eg", "background"), ("ig", "baseline")):
        got, expected = (attrib.attribute(model, x, method, seed=0, **{option: value}).values
                         for value in (refs[:1].numpy(), refs[:1]))
        assert torch.equal(got, expected)


@pytest.mark.parametrize("model_dtype,input_dtype", [(torch.float32, torch.float64), (torch.float64, torch.float32)])
def test_inputs_are_cast_to_the_models_dtype(model_dtype, input_dtype):
    """float64 arrays from numpy given to a float32 model (or the reverse) are the model's inputs all the same."""
    model, x = small_convnet(model_dtype), torch.randn(2, 3, 12, 12)  # float32 values: exact in both dtypes
    got = attrib.attribute(model, x.to(input_dtype), "ig", seed=0, rule="gausslegendre", n_steps=16)
    expected = attrib.attribute(model, x.to(model_dtype), "ig", seed=0, rule="gausslegendre", n_steps=16)
    assert torch.equal(got.values, expected.values)
    assert torch.equal(got.completeness_gap, expected.completeness_gap)
    assert torch.equal(attrib.predict(model, x.to(input_dtype)), attrib.predict(model, x.to(model_dtype)))


def test_a_model_that_fails_on_the_inputs_names_their_shape(setup):
    model, x = setup
    with pytest.raises(RuntimeError, match=r"inputs of shape \(3, 12, 12\) \(read as a batch of 3; .*unsqueeze"):
        attrib.attribute(model, x[0], "gradient")  # one image without its batch dimension
    with pytest.raises(RuntimeError, match=r"inputs of shape \(2, 12, 12, 3\): Given groups"):
        attrib.predict(model, x.permute(0, 2, 3, 1))  # channels last in the tensor's own layout


def test_detached_model_is_reported(setup):
    _, x = setup

    def frozen(inputs):
        return torch.zeros(len(inputs), 3) + inputs.detach().sum()

    with pytest.raises(RuntimeError, match="does not depend on its input through autograd"):
        attrib.attribute(frozen, x, "gradient", target=0)


def test_a_model_of_one_score_per_input_is_explained_with_a_callable_target(setup):
    """Outputs of shape (B,) (a binary classifier's one logit): a class target says to give the score as a
    callable, and that callable target failed in the outputs' check with "IndexError: Dimension out of range"."""
    model, x = setup

    def logit(z):
        return model(z)[:, 1]

    with pytest.raises(ValueError, match=r"got \(2,\) \(one score per input: give target=lambda out: out\)"):
        attrib.attribute(logit, x, "ig")
    got = attrib.attribute(logit, x, "ig", target=lambda out: out, rule="gausslegendre", n_steps=16)
    expected = attrib.attribute(model, x, "ig", target=1, rule="gausslegendre", n_steps=16)
    assert torch.equal(got.values, expected.values) and torch.allclose(got.completeness_gap, expected.completeness_gap,
                                                                       rtol=0, atol=1e-9)
    with pytest.raises(RuntimeError, match="the model's output is torch.int64, not floating point: it has no "):
        attrib.attribute(lambda z: (logit(z) > 0).long(), x, "gradient", target=lambda out: out.float())
    with pytest.raises(TypeError, match=r"got torch.uint8 \(pixels\? convert and normalise them as the model "):
        attrib.attribute(model, (x * 50).clamp(0, 255).to(torch.uint8), "gradient")
    with pytest.raises(ValueError, match=r"target class 1 is out of range: the model has 1 class \(valid indices "
                       r"0\.\.0\)"):  # a one-logit model as (B, 1): "has 1 classes"
        attrib.attribute(lambda z: logit(z)[:, None], x, "gradient", target=1)


def test_tuple_output_is_reported(setup):
    model, x = setup
    with pytest.raises(TypeError, match=r"the model returned a tuple, not a tensor of shape \(B, C\); wrap it"):
        attrib.attribute(lambda z: (model(z),), x, "gradient")
    with pytest.raises(TypeError, match=r"returned a dict \(its tensors: 'scores'\), not a tensor of shape \(B, C\); "
                                         r"wrap it so that it returns one, e\.g\. lambda x: model\(x\)\['scores'\]$"):
        attrib.attribute(lambda z: {"scores": model(z), "n": 3}, x, "gradient")  # was: e.g. model(x)[0], a KeyError
    with pytest.raises(TypeError, match=r"returned a dict \(its tensors: 'a', 'b'\), not a tensor .* returns one$"):
        attrib.attribute(lambda z: {"a": model(z), "b": model(z)}, x, "gradient")


def test_a_model_with_no_classes_is_reported(setup):
    model, x = setup
    with pytest.raises(ValueError, match=r"the model returns no classes \(outputs of shape \(B, 0\)\)"):
        attrib.attribute(lambda z: model(z)[:, :0], x, "ig")


def test_logits_of_dict_and_hf_outputs_are_used(setup):
    """A Hugging Face model passed as it is returns an output object: its logits are the outputs."""
    from transformers.modeling_outputs import ImageClassifierOutput

    model, x = setup
    expected = attrib.attribute(model, x, "ig", seed=0, n_steps=16).values
    for wrap in (lambda z: {"logits": model(z)}, lambda z: ImageClassifierOutput(logits=model(z))):
        got = attrib.attribute(wrap, x, "ig", seed=0, n_steps=16)
        assert torch.equal(got.values, expected)
        assert torch.equal(attrib.predict(wrap, x), attrib.predict(model, x))


def test_inputs_that_require_grad_give_plain_values(setup):
    model, x = setup
    res = attrib.attribute(model, x.clone().requires_grad_(True), "ig", seed=0, n_steps=16)
    assert not res.values.requires_grad
    assert torch.equal(res.values, attrib.attribute(model, x, "ig", seed=0, n_steps=16).values)


@pytest.mark.parametrize("text,expected", [("pred", None), ("2", 2), ("Tabby Cat", 0), ("tabby", 0), ("bird", 1)])
def test_class_names_resolve(text, expected):
    from attrib.targets import parse_class

    assert parse_class(text, ["tabby, tabby cat", "crane, bird", "crane", "tiger cat"]) == expected


def test_class_names_written_with_underscores_resolve():
    """Folders and Keras' ImageNet index write "tiger_cat" and "golden_retriever": `--truth folder` failed on every
    image of such a tree. A name that matches a label as it is still wins over a loose match."""
    from attrib.targets import parse_class

    labels = ["tabby, tabby cat", "tiger cat", "no_finding", "no finding", "golden retriever"]
    cases = {"tiger_cat": 1, "Tabby_Cat": 0, "golden__retriever ": 4, "no_finding": 2, "no finding": 3,
             "No_Finding": 2}
    assert {text: parse_class(text, labels) for text in cases} == cases
    with pytest.raises(attrib.AttribError, match=r"target label 'no  finding' names 2 classes: 2 \(no_finding\), 3 "):
        parse_class("no  finding", labels)


def test_imagenet_wordnet_ids_name_classes_of_1000_class_models():
    """ImageNet's folders are named by WordNet id (val/n02123045/...): "n02123045" is class 281, tabby."""
    from attrib.models.builtin import imagenet_labels
    from attrib.targets import parse_class

    labels = imagenet_labels()
    assert parse_class("n02123045", labels) == 281 and parse_class("n01440764", labels) == 0
    with pytest.raises(attrib.AttribError, match=r"^'n99999999' is not the WordNet id of an ImageNet-1k class$"):
        parse_class("n99999999", labels)
    with pytest.raises(attrib.AttribError, match=r"^unknown target label 'n02123045'"):  # not an ImageNet model
        parse_class("n02123045", ["cat", "dog"])


@pytest.mark.parametrize("text,match", [
    ("crane", r"target label 'crane' names 2 classes: 1 \(crane, bird\), 2 \(crane\); give the class index"),
    ("cat", r"unknown target label 'cat'; did you mean 'tabby cat', 'tiger cat'\?"),
    ("tabby kat", r"did you mean 'tabby cat'"),
    ("4", r"target 4 is out of range: the model has 4 classes"),
])
def test_class_names_that_do_not_resolve(text, match):
    from attrib.targets import parse_class

    with pytest.raises(attrib.AttribError, match=match):
        parse_class(text, ["tabby, tabby cat", "crane, bird", "crane", "tiger cat"])


@pytest.mark.parametrize("method,kwargs,match", [
    ("eg", {"background": torch.randint(0, 255, (4, 3, 12, 12), dtype=torch.uint8)},
     "background must be floating point, in the same space as the inputs; got torch.uint8"),
    ("eg", {"background": torch.full((4, 3, 12, 12), float("inf"))}, "background contains NaN or infinite values"),
    ("ig", {"baseline": torch.full((1, 3, 12, 12), float("nan"))}, "baseline contains NaN or infinite values"),
    ("ig", {"baseline": torch.zeros(3, 12, 12, dtype=torch.long)}, "baseline must be floating point"),
])
def test_references_in_another_space_are_refused(setup, method, kwargs, match):
    model, x = setup
    with pytest.raises(ValueError, match=match):
        attrib.attribute(model, x, method, n_steps=8, **kwargs) if method == "ig" else \
            attrib.attribute(model, x, method, n_samples=4, **kwargs)


def test_a_baseline_that_requires_grad_gives_plain_results(setup):
    model, x = setup
    res = attrib.attribute(model, x, "ig", baseline=torch.zeros(1, 3, 12, 12, dtype=x.dtype).requires_grad_(),
                           n_steps=8)
    assert not res.values.requires_grad and not res.completeness_gap.requires_grad


def test_inputs_where_the_model_outputs_nan_are_refused_by_position():
    def model(z):  # NaN for inputs whose first feature is negative
        return torch.stack([z.sum(1), torch.where(z[:, 0] < 0, float("nan"), 1.0) * z[:, 1]], 1)

    x = torch.tensor([[1.0, 2.0], [-1.0, 2.0], [3.0, 1.0]])
    with pytest.raises(ValueError, match=r"the model's outputs are NaN or infinite at input\(s\) 1: nothing there"):
        attrib.attribute(model, x, "gradient", target=0)
    with pytest.raises(ValueError, match="NaN or infinite at this input"):
        attrib.attribute(model, x[1:2], "gradient", target=0)
    masked = attrib.attribute(lambda z: torch.stack([z.sum(1), torch.full_like(z[:, 0], -math.inf)], 1), x,
                              "gradient", target=0)  # a -inf logit of a class not explained is allowed
    assert torch.equal(masked.values, torch.ones_like(x))


@pytest.mark.parametrize("rule", ["gausslegendre", "adaptive"])
def test_a_score_that_is_not_finite_at_the_baseline_gives_no_gap_of_zero(rule):
    """log F is -inf at the zero baseline: IG's integral diverges, so its gap is NaN, never a reassuring 0."""
    from attrib.jobs.common import attribution_row, gap_warnings

    x = torch.rand(2, 4) + 0.5
    res = attrib.attribute(lambda z: torch.stack([z.log().sum(1), z.sum(1)], 1), x, "ig", target=0, rule=rule)
    assert res.completeness_gap.isnan().all()
    if rule == "adaptive":  # no refinement makes -inf finite: it stops on its start grid, unconverged
        assert res.extras["steps"].tolist() == [9, 9] and not res.extras["converged"].any()
    row = attribution_row(res, 0)
    assert row["gap"] is None and not row["finite"] and not row["gap_undefined"]
    (said,) = gap_warnings(row, "integrated_gradients")
    assert said.startswith("the model's gradient or output is not finite at some point the method evaluates")
    exact = attrib.attribute(lambda z: torch.stack([z.sum(1), z.sum(1)], 1), x, "ig", target=0)
    assert attribution_row(exact, 0)["finite"] and float(exact.completeness_gap.max()) < 1e-6


@pytest.mark.parametrize("method,config,match", [
    ("gradient", {"abs": "yes"}, r"gradient: abs must be True or False, got 'yes'"),  # was truthy
    ("moreaugrad", {"antithetic": 1}, r"antithetic must be True or False, got 1"),
    ("smoothgrad", {"n_samples": True}, r"n_samples must be an integer, got True"),  # was one sample
])
def test_options_of_the_wrong_kind_are_refused(setup, method, config, match):
    model, x = setup
    with pytest.raises(attrib.AttribError, match=match):
        attrib.attribute(model, x, method, **config)


def test_numpy_scalars_are_plain_options(setup):
    model, x = setup
    res = attrib.attribute(model, x, "smoothgrad", n_samples=np.int64(3), noise_frac=np.float32(0.25))
    assert res.passes == 6 and type(res.config["n_samples"]) is int and type(res.config["noise_frac"]) is float


def test_a_label_set_is_indexed_once():
    """--target folder parses each image's folder name: the index of every label's synonyms was rebuilt per
    call, 3 ms a time for ImageNet's labels (150 s of a 50,000-image run)."""
    from attrib.targets import _label_names, parse_class

    labels = [f"class {i}, synonym {i}" for i in range(300)]
    before = _label_names.cache_info().misses
    assert [parse_class(f"synonym {i}", labels) for i in range(300)] == list(range(300))
    assert _label_names.cache_info().misses == before + 1
