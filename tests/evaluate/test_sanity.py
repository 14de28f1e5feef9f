"""Sanity checks: layer discovery, the similarity oracles, and the published findings in kind on sample models."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attrib.data.datasets import load_dataset
from attrib.evaluate import similarity as sim
from attrib.evaluate.randomization import layer_groups, randomized, reinitialise, select
from attrib.errors import UsageError
from attrib.evaluate.sanity import SanityConfig, _completeness_verdict, n_explanations, resolve_radii, run_sanity, \
    with_budget
from attrib.models import load_model


@pytest.fixture(scope="module")
def digits():
    return load_model("sample:blockdigits-standard"), load_dataset("blockdigits").test_x[:8]


def _row(rows, method, **match):
    return next(r for r in rows if r["method"] == method and all(r[k] == v for k, v in match.items()))


def test_layer_groups_follow_the_module_tree():
    groups = layer_groups(load_model("sample:blockdigits-standard").module)
    assert [g.label for g in groups] == ["0 (Conv2d)", "3 (Conv2d)", "7 (Linear)", "9 (Linear)"]
    resnet = layer_groups(load_model("timm:resnet18", pretrained=False).module)
    names = [g.name for g in resnet]
    assert names[:3] == ["conv1", "bn1", "layer1.0"] and names[-1] == "fc" and "layer4.1" in names
    assert [g.name for g in select(resnet, None, 3)] == ["conv1", "layer2.1", "fc"]
    with pytest.raises(ValueError, match="unknown layer 'head'; layers .*conv1, bn1"):
        select(resnet, ["head"], None)


def test_layer_groups_look_through_wrappers_and_into_nested_block_lists(tmp_path):
    """A Hugging Face model sits in attrib's wrapper (``inner``) with its blocks three levels down: it made one
    group, so "every layer" and "the top layer" were the same whole-model draw. A timm ViT's class token and
    position embedding belong to the root module and were in no group, so never randomized."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    ViTForImageClassification(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=3,
                                        num_attention_heads=2, intermediate_size=32, num_labels=3)).save_pretrained(
        tmp_path / "vit")
    with pytest.warns(UserWarning, match="has no image processor"):
        module = load_model(str(tmp_path / "vit")).module
    groups = layer_groups(module)
    blocks = [g for g in groups if g.kind == "ViTLayer"]
    assert len(blocks) == 3 and groups[0].kind == "ViTEmbeddings" and groups[-1].label == "classifier (Linear)"
    assert all(name.startswith("inner.") for g in groups for name in g.modules)
    assert not any(g.name.startswith("inner") for g in groups)
    copy_ = module
    for _, _, copy_ in randomized(module, groups, blocks[-1:], "cascading", seed=0):
        pass
    changed = {n for n, p in copy_.named_parameters() if not torch.equal(p, module.get_parameter(n))}
    assert changed and all(".embeddings." not in n for n in changed) and any(".classifier." in n for n in changed)

    vit = layer_groups(load_model("timm:vit_tiny_patch16_224", pretrained=False).module)
    assert [g.label for g in vit[:3]] == ["root (VisionTransformer)", "patch_embed (PatchEmbed)", "blocks.0 (Block)"]
    assert len(vit) == 16 and vit[-1].name == "head"


def test_cascading_randomization_is_cumulative_and_seeded():
    module = load_model("sample:blockdigits-standard").module
    groups = layer_groups(module)
    copies = list(randomized(module, groups, groups, "cascading", seed=0))
    assert [depth for _, depth, _ in copies] == [1, 2, 3, 4]
    for _, depth, copy_ in copies:
        changed = [not torch.equal(module.get_submodule(g.name).weight, copy_.get_submodule(g.name).weight)
                   for g in groups]
        assert changed == [False] * (4 - depth) + [True] * depth
    again = list(randomized(module, groups, groups, "cascading", seed=0))
    assert torch.equal(copies[-1][2][0].weight, again[-1][2][0].weight)
    single = load_model("sample:blockdigits-standard").module
    reinitialise(single, groups[1], seed=3)
    assert torch.equal(single[0].weight, module[0].weight) and not torch.equal(single[3].weight, module[3].weight)


def test_similarity_oracles():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 32, 32))
    m = sim.magnitude_map(a)
    shuffled = rng.permutation(m.ravel()).reshape(m.shape)
    for f in (sim.spearman, sim.kendall_tau, sim.cosine, sim.ssim, sim.hog_spearman, sim.topk_intersection):
        assert f(m, m) == pytest.approx(1.0), f.__name__
    signed = sim.signed_map(a)
    assert sim.spearman(signed, -signed) == pytest.approx(-1) and sim.kendall_tau(signed, -signed) == pytest.approx(-1)
    assert sim.cosine(signed, -signed) == pytest.approx(-1)
    assert np.array_equal(sim.magnitude_map(-a), m)  # |.| maps ignore the sign
    centred = m - m.mean()
    assert abs(sim.spearman(m, shuffled)) < 0.1 and abs(sim.kendall_tau(m, shuffled)) < 0.1
    assert abs(sim.cosine(centred, rng.permutation(centred.ravel()))) < 0.1
    assert abs(sim.ssim(m, shuffled)) < 0.1 and abs(sim.hog_spearman(m, shuffled)) < 0.25
    assert sim.topk_intersection(m, shuffled, 0.1) < 0.25  # chance: 0.1
    assert sim.ssim(np.arange(5.0), np.arange(5.0)) is None  # not an image


def test_randomization_reproduces_adebayo_on_blockdigits(digits):
    model, x = digits
    config = SanityConfig(["gradient", "integrated_gradients", "smoothgrad"], tests=["randomization"])
    out = run_sanity(model, x, config)
    full = {m: _row(out["randomization"], m, mode="cascading", depth=4) for m in config.methods}
    assert full["gradient"]["spearman_abs"] < 0.3 and full["smoothgrad"]["spearman_abs"] < 0.3
    assert full["integrated_gradients"]["spearman_abs"] > 0.9  # zero-background pixels tie
    assert full["integrated_gradients"]["spearman_signed"] < 0.3
    verdicts = {(v["method"], v["test"]): v for v in out["verdicts"]}
    assert verdicts[("gradient", "randomization")]["passed"]
    ig = verdicts[("integrated_gradients", "randomization")]
    assert not ig["passed"] and "see signed" in ig["reason"] and "0.5" in ig["reason"]
    assert {r["mode"] for r in out["randomization"]} == {"cascading", "independent"}


def test_moreaugrad_maps_survive_noise_better_than_gradients(digits):
    model, x = digits
    methods = ["gradient", "moreaugrad"]
    config = SanityConfig(methods, with_budget(methods, {}), tests=["robustness"], radii=[0.5])
    rows = run_sanity(model, x, config)["robustness"]
    for kind in ("random l2", "top-k attack l2"):
        mg, grad = _row(rows, "moreaugrad", perturbation=kind), _row(rows, "gradient", perturbation=kind)
        assert mg["topk_intersection"] > grad["topk_intersection"], kind
    attack, noise = _row(rows, "gradient", perturbation="top-k attack l2"), _row(rows, "gradient",
                                                                                   perturbation="random l2")
    assert attack["topk_intersection"] < noise["topk_intersection"]  # the attack does more than noise


def test_a_model_independent_method_fails_randomization(digits):
    from dataclasses import dataclass

    from attrib.methods import METHODS, MethodOutput, register_method

    @dataclass(frozen=True)
    class EdgeConfig:
        pass

    @register_method("edges_test", config=EdgeConfig, cost="0", rows=lambda c: 0, summary="Sobel edges")
    def edges(ctx, config):
        x = ctx.inputs
        dy, dx = x.diff(dim=-2, prepend=x[..., :1, :]), x.diff(dim=-1, prepend=x[..., :1])
        return MethodOutput((dx ** 2 + dy ** 2).sqrt())

    try:
        model, x = digits
        out = run_sanity(model, x, SanityConfig(["edges_test"], tests=["randomization"]))
        (verdict,) = out["verdicts"]
        assert not verdict["passed"] and "stays 1.00" in verdict["reason"]
    finally:
        METHODS._specs.pop("edges_test")
        METHODS._aliases.pop("edges_test")


def test_completeness_gap_falls_with_steps_and_the_default_is_judged(digits):
    model, x = digits
    config = SanityConfig(["integrated_gradients"], tests=["completeness"], steps=[3, 8, 64])
    calls = []
    out = run_sanity(model, x, config, advance=calls.append)
    rows = out["completeness"]
    assert len(calls) == n_explanations(config, 4, False)  # the progress bar reaches its total (clean maps + 4)
    assert [r["steps"] for r in rows] == [3, 8, 64, 256] and [r["default"] for r in rows] == [False] * 3 + [True]
    gaps = [r["gap"] for r in rows]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05
    default = rows[-1]  # the adaptive rule at its default budget: converged on every input, within its tol
    assert default["converged"] == 1.0 and 3 <= default["passes"] < 256 and default["gap"] <= 0.01
    assert rows[0]["passes"] == 3 and rows[0]["converged"] == 0.0 and all(r["gap_stderr"] is None for r in rows)
    verdict = _row(out["verdicts"], "integrated_gradients", test="completeness")
    assert verdict["passed"] is True and "at its default 256 steps" in verdict["reason"]
    assert f"{default['passes']:.0f} passes on average, 100% of inputs converged" in verdict["reason"]


def test_completeness_verdict_accounts_for_monte_carlo_error():
    def verdict(gap, stderr, **extra):
        rows = [{"method": "expected_gradients", "steps": 8, "gap": 0.3, "gap_stderr": 0.1},
                {"method": "expected_gradients", "steps": 64, "gap": gap, "gap_stderr": stderr, **extra}]
        return _completeness_verdict("expected_gradients", rows)

    assert verdict(0.064, 0.043, default=True)["passed"] is None  # 2.1%-10.7% straddles the 5% limit
    assert verdict(0.02, 0.01, default=True)["passed"] is True
    assert verdict(0.2, 0.05, default=True)["passed"] is False
    assert "6.4% ± 4.3% (Monte Carlo error) at its default 64 samples" in verdict(0.064, 0.043, default=True)["reason"]
    legacy = _completeness_verdict("integrated_gradients", [{"method": "integrated_gradients", "steps": s, "gap": g}
                                                            for s, g in ((8, 0.2), (64, 0.03))])
    assert legacy["passed"] is True and legacy["reason"].startswith("gap 3.0% at 64 steps (pass: < 5%)")


def test_completeness_fails_a_map_that_is_not_finite_and_leaves_out_undefined_gaps():
    """A gradient that is NaN on the path gave a mean gap of NaN, judged "unsure — gap nan%"."""
    class LogAtBaseline(torch.nn.Module):  # log(x - 0.3): NaN on the path from the black baseline
        def forward(self, x):
            z = x.flatten(1)
            return torch.stack([z.sum(1) + torch.log(z - 0.3).sum(1), -z.sum(1)], 1)

    x = torch.rand(3, 1, 2, 2) + 0.4
    out = run_sanity(SimpleNamespace(module=LogAtBaseline()), x,
                     SanityConfig(["integrated_gradients"], tests=["completeness"], steps=[8]))
    assert all(r["gap"] is None and r["not_finite"] == 3 for r in out["completeness"])
    verdict = _row(out["verdicts"], "integrated_gradients", test="completeness")
    assert verdict["passed"] is False and "the maps of 3 inputs are not finite" in verdict["reason"]

    def rows(gap, undefined):
        return [{"method": "integrated_gradients", "steps": 8, "gap": gap, "undefined": undefined, "not_finite": 0}]

    assert _completeness_verdict("integrated_gradients", rows(None, 3))["passed"] is None
    verdict = _completeness_verdict("integrated_gradients", rows(0.01, 1))
    assert verdict["passed"] is True and "1 input with F(x) = F(baseline) left out" in verdict["reason"]


class _DeadInputs(torch.nn.Module):
    """A ReLU that is off for every input in [0, 1]: the output is the bias alone, every gradient map zero."""

    def __init__(self):
        super().__init__()
        self.hidden, self.out = torch.nn.Linear(16, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1)) - 100.0))


def test_maps_that_are_constant_on_every_input_leave_the_similarity_tests_unsure():
    """All-zero maps have no ranks: their Spearman read 0, so randomization "passed: depends on the model"."""
    torch.manual_seed(0)
    config = SanityConfig(["gradient"], tests=["randomization", "robustness"], radii=[0.5], repeats=2)
    out = run_sanity(SimpleNamespace(module=_DeadInputs().eval()), torch.rand(4, 1, 4, 4), config)
    assert out["constant_maps"] == {"gradient": 4} and out["randomization"] == [] and out["robustness"] == []
    assert [(v["test"], v["passed"]) for v in out["verdicts"]] == [("randomization", None), ("robustness", None)]
    assert all("map of every input is constant" in v["reason"] for v in out["verdicts"])


def test_expected_gradients_completeness_rows_carry_their_monte_carlo_error(digits):
    model, x = digits
    background = load_dataset("blockdigits").train_x[:16]
    config = SanityConfig(["expected_gradients"], configs={"expected_gradients": {"background": background}},
                          tests=["completeness"], steps=[8, 32])
    rows = run_sanity(model, x, config)["completeness"]
    assert [r["steps"] for r in rows] == [8, 32, 64] and rows[-1]["default"] and rows[-1]["converged"] is None
    assert all(r["gap_stderr"] > 0 for r in rows) and rows[0]["gap_stderr"] > rows[-1]["gap_stderr"]


def test_vector_models_get_the_metrics_that_apply():
    model, data = load_model("sample:synthetic-robust"), load_dataset("synthetic")
    out = run_sanity(model, data.test_x[:6], SanityConfig(["gradient"], tests=["randomization", "robustness"],
                                                           radii=[0.2], attack_steps=5))
    row = out["randomization"][0]
    assert row["ssim"] is None and row["hog"] is None and row["spearman_abs"] is not None
    assert {r["perturbation"] for r in out["robustness"]} == {"random l2", "top-k attack l2"}


def test_softplus_copy_has_second_derivatives_where_relu_has_none():
    from attrib.evaluate.robustness import softplus_copy

    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU6(),
                              torch.nn.Linear(8, 1))
    smooth = softplus_copy(net)
    assert not any(isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)) for m in smooth.modules())
    x = torch.randn(3, 4, requires_grad=True)
    for model, nonzero in ((net, False), (smooth, True)):
        (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g.pow(2).sum(), x, allow_unused=True)
        assert (h is not None and bool(h.abs().sum() > 1e-6)) == nonzero
    assert torch.allclose(smooth(x), net(x), atol=0.5)  # close to the original at beta = 10


def test_randomization_verdicts_hold_across_command_seeds(digits):
    """The gradient's full-randomization similarity is a mean over 3 weight draws with its spread, and the
    verdict does not flip between seeds 0, 1 and 2."""
    model, x = digits
    verdicts = []
    for seed in (0, 1, 2):
        config = SanityConfig(["gradient"], tests=["randomization"], seed=seed)
        out = run_sanity(model, x, config)
        full = _row(out["randomization"], "gradient", mode="cascading", depth=4)
        assert full["draws"] == 3 and full["spread"]["spearman_abs"] > 0 and config.draw_seeds[0] == 1000 * seed
        (verdict,) = [v for v in out["verdicts"] if v["test"] == "randomization"]
        assert "± " in verdict["reason"] and "3 draws" in verdict["reason"]
        verdicts.append(verdict["passed"])
    assert verdicts == [True, True, True]


def test_judge_says_unsure_when_draws_straddle_the_threshold():
    from attrib.evaluate.sanity import judge

    assert judge(0.3, 0.1, 0.5, below=True) is True
    assert judge(0.45, 0.1, 0.5, below=True) is None
    assert judge(0.7, 0.1, 0.5, below=True) is False
    assert judge(0.7, 0.1, 0.5, below=False) is True and judge(0.52, 0.05, 0.5, below=False) is None


@pytest.mark.parametrize("device", [
    "cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                                           reason="needs CUDA")])])
def test_the_top_k_attack_runs_through_fused_attention(tmp_path, device):
    """transformers' ViT attends with torch's fused kernels (flash ones on a card), which have no double backward;
    the attack needs one."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    ViTForImageClassification(ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, num_labels=3)).save_pretrained(
        tmp_path / "vit")
    with pytest.warns(UserWarning, match="has no image processor"):
        model = load_model(str(tmp_path / "vit"))
    x = torch.rand(2, 3, 16, 16)
    out = run_sanity(model, x, SanityConfig(["gradient"], tests=["robustness"], radii=[0.5], attack_steps=2,
                                            device=device))
    assert {r["perturbation"] for r in out["robustness"]} == {"random l2", "top-k attack l2"}


def test_perturbations_keep_a_one_output_models_decision():
    """A one-output classifier's label is the side of zero its logit falls on (arg-max would always be column 0,
    so every perturbation would 'keep' it): random draws and the attack's iterates that flip the sign are
    dropped, those that keep it are used."""
    from attrib.evaluate.robustness import random_perturbations, topk_attack
    from attrib.targets import decisions

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    x = torch.randn(40, 1, 4, 4, requires_grad=True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    x = x.detach()
    with torch.no_grad():
        logit = net(x)[:, 0]
    decided = decisions(net(x))
    assert decided.tolist() == (logit > 0).long().tolist()
    assert decisions(torch.tensor([[0.1, 2.0, -1.0]])).tolist() == [1]

    radius = float((logit.abs() / grad.flatten(1).norm(dim=1)).median()) * 4  # random l2 steps flip some signs
    points, kept = random_perturbations(net, x, decided, radius, "l2", seed=0, tries=1)
    with torch.no_grad():
        moved = net(points)[:, 0]
    assert 0 < int(kept.sum()) < len(x)  # some draws flipped the sign and were refused
    assert bool(((moved > 0) == (logit > 0)).all())  # refused inputs stay where they were
    assert torch.equal(points[~kept], x[~kept])

    attacked, found, _ = topk_attack(net, x, torch.zeros(len(x), dtype=torch.long), decided,
                                     torch.randn(40, 1, 4, 4), radius * 3, "l2", steps=4)
    with torch.no_grad():
        assert bool(((net(attacked)[:, 0] > 0) == (logit > 0)).all())
    assert bool(found.any()) and torch.equal(attacked[~found], x[~found])  # unmoved inputs are said to be
    assert bool(((attacked - x).flatten(1).norm(dim=1) <= radius * 3 * (1 + 1e-5)).all())


def test_the_attack_never_scores_an_input_it_could_not_move():
    """Every first step of size 2.5 r / steps crosses the boundary of this linear classifier: before, the
    attack returned the clean inputs and scored them as perfectly robust (top-k intersection 1.00 at the larger
    radius, below 0.5 at the smaller). Halving an input's step when it would flip the label finds points
    inside the ball that keep it, and a larger ball does no worse."""
    from attrib.evaluate.robustness import topk_attack
    from attrib.targets import decisions

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Softplus(), torch.nn.Linear(8, 2))
    x = torch.randn(6, 1, 4, 4)
    with torch.no_grad():
        logits = net(x)
    margin = float((logits[:, 0] - logits[:, 1]).abs().min())
    decided = decisions(logits)
    clean = torch.randn(6, 1, 4, 4)
    for radius in (margin * 50, margin * 500):
        attacked, found, fixed = topk_attack(net, x, decided, decided, clean, radius, "l2", steps=4)
        with torch.no_grad():
            assert torch.equal(decisions(net(attacked)), decided)
        assert bool(found.all()) and not torch.equal(attacked, x) and not fixed.any()


@pytest.mark.parametrize("net", [
    torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 4)),  # the gradient: no graph of the input at all
    torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()),  # unused
])
def test_a_model_linear_in_its_input_is_judged_without_an_attack(net):
    """attrib sanity on a model linear in its input (an MLP without hidden layers, a conv net without a
    nonlinearity) failed with "RuntimeError: element 0 of tensors does not require grad": the top-k attack
    differentiates the gradient map, which then does not depend on the input. Nothing can move it: the attack
    scores no input, and the verdict says why."""
    from attrib.evaluate.robustness import topk_attack
    from attrib.targets import decisions

    torch.manual_seed(0)
    x = torch.randn(3, 3, 4, 4)
    decided = decisions(net(x))
    attacked, found, fixed = topk_attack(net, x, decided, decided, torch.rand(3, 1, 4, 4), 1.0, "l2", steps=3)
    assert torch.equal(attacked, x) and not found.any() and fixed.all()
    config = SanityConfig(methods=["gradient"], tests=["robustness"], radii=[0.5], repeats=1)
    out = run_sanity(SimpleNamespace(module=net.eval()), x, config)
    assert {r["perturbation"] for r in out["robustness"]} == {"random l2"}  # scored by the noise alone
    (verdict,) = out["verdicts"]
    assert verdict["passed"] and "the top-k attack has nothing to move: the gradient map does not change with the " \
        "input" in verdict["reason"]


def test_an_attack_that_moves_no_input_gives_no_row_and_says_so():
    from attrib.evaluate.sanity import _robustness_verdict

    config = SanityConfig(["gradient"], tests=["robustness"], radii=[0.5])
    noise = {"method": "gradient", "perturbation": "random l2", "radius": 0.5, "topk_intersection": 0.8,
             "spread": {}, "draws": 1}
    (verdict,) = _robustness_verdict("gradient", {"robustness": [noise]}, config)
    assert verdict["reason"].endswith("the top-k attack found no step that keeps a label")
    attack = {**noise, "perturbation": "top-k attack l2", "topk_intersection": 0.3}
    (verdict,) = _robustness_verdict("gradient", {"robustness": [attack]}, config)  # no random draw kept a label
    assert verdict["passed"] is None and verdict["reason"].startswith("unsure — no draw of random l2 noise of "
                                                                      "radius 0.5 kept an input's label")


def test_radii_in_percent_are_of_the_median_norm_in_the_chosen_norm():
    x = torch.zeros(3, 2, 4, 4)
    x[0, 0, 0, 0], x[1, 0, :2, :2], x[2] = 5.0, 2.0, 0.5  # l2 norms 5, 4, 4; max |x_i| 5, 2, 0.5
    assert resolve_radii(None, x, "l2") == [0.08, 0.2]  # 2% and 5% of the median l2 norm, 4
    assert resolve_radii(None, x, "linf") == [0.04, 0.1]  # of the median max |x_i|, 2: not of the l2 norm
    assert resolve_radii(["10%", 0.5, "12.5%"], x, "l2") == [0.4, 0.5]  # sorted, duplicates merged
    assert resolve_radii([0.123], x, "linf") == [0.123]  # numbers as given
    with pytest.raises(UsageError, match=r"must be positive and finite, got 2%, 5% \(median \|x\| in l2: 0\)"):
        resolve_radii(None, torch.zeros(2, 3), "l2")


def test_with_versus_every_model_explains_its_own_prediction_against_its_own_runner_up(digits):
    """A contrast's sanity check: the clean model's gradient map is the predicted class's map minus the runner-up's,
    a randomized model's is its own predicted class's minus its own runner-up's, and the completeness gap is that
    of the contrast's F(x) - F(x')."""
    import copy

    import attrib
    from attrib.evaluate.sanity import Checker
    from attrib.targets import RUNNER_UP

    model, x = digits
    x = x[:4]
    checker = Checker(model, x, SanityConfig(["gradient", "integrated_gradients"], tests=["completeness"],
                                             versus=RUNNER_UP))
    randomized_copy = copy.deepcopy(model.module)
    reinitialise(randomized_copy, layer_groups(randomized_copy)[-1], seed=3)
    for module in (model.module, randomized_copy):
        with torch.no_grad():
            top2 = module(x).topk(2, dim=1).indices
        maps = [attrib.attribute(module, x, "gradient", target=top2[:, k].tolist()).values for k in (0, 1)]
        assert np.allclose(checker.explain(module, x, "gradient"), (maps[0] - maps[1]).numpy(), atol=1e-6)
    row = next(r for r in checker.completeness() if r["steps"] == 16)
    gaps = attrib.attribute(model.module, x, "ig", n_steps=16, versus=RUNNER_UP).completeness_gap
    assert row["gap"] == pytest.approx(float(gaps.mean()), rel=1e-6)
    plain = Checker(model, x, SanityConfig(["integrated_gradients"], tests=["completeness"]))
    assert next(r for r in plain.completeness() if r["steps"] == 16)["gap"] != pytest.approx(row["gap"], rel=1e-3)
