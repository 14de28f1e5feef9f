"""BatchNorm folding: same attributions, the user's model untouched, the cache never stale."""

import pytest
import torch
from torch import nn

import attrib
from attrib.fold import fold_batchnorm


class Residual(nn.Module):
    """conv -> BN chain plus a conv whose output is used twice (must not be folded)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        c = self.conv2(h)
        h = torch.relu(self.bn2(c) + c)
        return self.head(h.mean(dim=(2, 3)))


def _randomise_bn(model):
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.normal_()
            m.bias.data.normal_()
    return model.eval()


def test_fold_keeps_the_function_and_skips_shared_outputs():
    model = _randomise_bn(Residual())
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(model, x)
    assert folded is not None
    names = [n for n, _ in folded.named_children() if n.startswith("attrib_folded")]
    assert names == ["attrib_folded_0"]  # conv2 feeds bn2 and the residual: not folded
    assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_a_model_returning_its_logits_in_a_dict_is_folded_too():
    class Dict(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Residual()

        def forward(self, x):
            return {"logits": self.inner(x)}

    model = _randomise_bn(Dict())
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(model, x)
    assert folded is not None and torch.allclose(folded(x)["logits"], model(x)["logits"], atol=1e-5)


@pytest.mark.parametrize("method", ["ig", "gradient", "smoothgrad"])
def test_attributions_match_the_unfolded_model(method):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = _randomise_bn(timm.create_model("test_resnet", pretrained=False, num_classes=7))
    x = torch.randn(2, 3, 64, 64)
    kw = {"n_steps": 8} if method == "ig" else {"n_samples": 4} if method == "smoothgrad" else {}
    fast = attrib.attribute(model, x, method, target=[1, 2], **kw).values
    slow = attrib.attribute(model, x, method, target=[1, 2], fold_batchnorm=False, **kw).values
    assert float((fast - slow).norm() / slow.norm()) < 1e-4


def test_cache_follows_weight_changes_and_leaves_the_model_alone():
    model = _randomise_bn(Residual())
    x = torch.randn(1, 3, 8, 8)
    first = attrib.attribute(model, x, "gradient", target=0).values
    with torch.no_grad():
        model.bn1.running_mean.add_(1.0)  # in place: bumps the version counter
    second = attrib.attribute(model, x, "gradient", target=0).values
    reference = attrib.attribute(model, x, "gradient", target=0, fold_batchnorm=False).values
    assert not torch.allclose(first, second) and torch.allclose(second, reference, atol=1e-6)
    model.conv1.weight.data = torch.randn_like(model.conv1.weight)  # replaced storage
    third = attrib.attribute(model, x, "gradient", target=0).values
    assert torch.allclose(third, attrib.attribute(model, x, "gradient", target=0, fold_batchnorm=False).values,
                          atol=1e-6)
    assert all(p.requires_grad for p in model.parameters()) and model.conv1.weight.is_contiguous()


def test_training_mode_is_never_folded():
    model = Residual().train()
    assert fold_batchnorm(model, torch.randn(2, 3, 8, 8)) is None


def test_unfolded_runs_give_the_model_back_unchanged():
    model = _randomise_bn(Residual())
    before = [(t.data_ptr(), t._version) for t in [*model.parameters(), *model.buffers()]]
    attrib.attribute(model, torch.randn(1, 3, 8, 8), "gradient", target=0, fold_batchnorm=False)
    assert [(t.data_ptr(), t._version) for t in [*model.parameters(), *model.buffers()]] == before
