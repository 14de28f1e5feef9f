"""Equality with captum where captum computes the same thing (timm test_resnet, random weights)."""

import pytest
import torch

import attrib

captum_attr = pytest.importorskip("captum.attr")
timm = pytest.importorskip("timm")


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return timm.create_model("test_resnet", pretrained=False, num_classes=10).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _rel(a, b):
    return float((a - b).detach().norm() / b.detach().norm())


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle"])
def test_integrated_gradients_matches_captum(resnet, images, rule):
    ours = attrib.attribute(resnet, images, "ig", target=[3, 7], n_steps=16, rule=rule)
    theirs = captum_attr.IntegratedGradients(resnet).attribute(images, target=[3, 7], n_steps=16, method=rule)
    assert _rel(ours.values, theirs) < 1e-4


def test_a_contrast_matches_captum_on_the_difference_of_logits(resnet, images):
    """captum has no contrast, but IG of a forward that returns the logit difference is the same integral."""
    ours = attrib.attribute(resnet, images, "ig", target=[3, 7], versus=[5, 3], n_steps=16, rule="gausslegendre")
    other = torch.tensor([[3, 5], [7, 3]])

    def difference(x):
        out = resnet(x)
        rows = torch.arange(len(x)) % 2  # captum stacks the inputs' steps step by step: row r is input r % 2
        return out.gather(1, other[rows])[:, :1] - out.gather(1, other[rows])[:, 1:]

    theirs = captum_attr.IntegratedGradients(difference).attribute(images, target=0, n_steps=16,
                                                                    method="gausslegendre", internal_batch_size=2)
    assert ours.versus == [5, 3] and _rel(ours.values, theirs) < 1e-4


def test_saliency_and_input_x_gradient_match_captum(resnet, images):
    grad = attrib.attribute(resnet, images, "gradient", target=2, abs=True).values
    assert _rel(grad, captum_attr.Saliency(resnet).attribute(images.clone().requires_grad_(), target=2)) < 1e-5
    gxi = attrib.attribute(resnet, images, "gradient_x_input", target=2).values
    assert _rel(gxi, captum_attr.InputXGradient(resnet).attribute(images.clone().requires_grad_(),
                                                                          target=2)) < 1e-5


def test_expected_gradients_agrees_with_gradientshap_in_distribution(resnet, images):
    background = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ours = attrib.attribute(resnet, images[:1], "eg", target=1, background=background, n_samples=200).values
    torch.manual_seed(0)
    theirs = captum_attr.GradientShap(resnet).attribute(images[:1], background, target=1, n_samples=200,
                                                        stdevs=0.0)
    assert torch.nn.functional.cosine_similarity(ours.flatten(), theirs.flatten(), dim=0) > 0.9
