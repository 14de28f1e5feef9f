"""torchvision classifiers (``torchvision:NAME[.WEIGHTS]``, ``tv:``): offline, random or local weights."""

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from PIL import Image

from attrib.models import ModelError, load_model


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((300, 451), (517, 301))]


@pytest.mark.parametrize("spec", ["resnet18", "resnet50.IMAGENET1K_V2", "efficientnet_b0", "inception_v3",
                                  "vit_b_16.IMAGENET1K_SWAG_E2E_V1", "maxvit_t"])
def test_inputs_are_exactly_what_the_weights_transforms_make(spec, pictures):
    """Each weights entry has its own eval transform (resize 256, 232, 342 or 384; bilinear or bicubic; crops of
    224, 299 or 384); the model must see exactly what it gives."""
    from attrib.models.torchvision_models import torchvision_preprocess

    name, _, tag = spec.partition(".")
    weights = tvm.get_model_weights(name)[tag or "DEFAULT"]
    preprocess = torchvision_preprocess(weights)
    for picture in pictures:
        assert torch.equal(preprocess.tensor(preprocess.view(picture)), weights.transforms()(picture))


def test_a_fine_tuned_checkpoint_loads_with_its_classes(tmp_path, pictures):
    source = tvm.resnet18(num_classes=3).eval()
    torch.save({"epoch": 9, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}},
               tmp_path / "tuned.pth")
    model = load_model("tv:resnet18", weights=tmp_path / "tuned.pth")
    assert (model.name, model.labels) == ("torchvision:resnet18.IMAGENET1K_V1", ["class 0", "class 1", "class 2"])
    x = model.preprocess.tensor(model.preprocess.view(pictures[0]))[None]
    with torch.no_grad():
        assert torch.equal(model.module(x), source(x))
    fresh = model.factory()  # DiffROAR's retrains and the randomization checks build the same architecture
    assert fresh.fc.out_features == 3 and fresh is not model.module


def test_googlenet_fine_tuned_from_torchvision_weights_or_with_its_auxiliary_heads(tmp_path):
    """torchvision drops GoogLeNet's auxiliary heads from its pretrained model and turns its input transform on:
    a fine-tune of it has no aux keys, one trained with aux_logits=True has them; both must load strictly."""
    for aux in (False, True):
        source = tvm.googlenet(num_classes=5, aux_logits=aux, transform_input=True, init_weights=True).eval()
        torch.save(source.state_dict(), tmp_path / "g.pt")
        model = load_model("tv:googlenet", weights=tmp_path / "g.pt")
        x = torch.randn(1, 3, 224, 224)
        with torch.no_grad():
            assert torch.equal(model.module(x), source(x))


def test_random_weights_take_the_size_of_the_weights_named(pictures):
    """SWAG's end-to-end ViT weights are for 384 x 384 inputs: random weights of that entry must take them."""
    model = load_model("torchvision:vit_b_16.IMAGENET1K_SWAG_E2E_V1", pretrained=False)
    x = model.preprocess.tensor(model.preprocess.view(pictures[1]))[None]
    assert x.shape[-1] == 384 and model.module(x).shape == (1, 1000)
    assert model.labels[281] == "tabby, tabby cat" and model.name.endswith(".IMAGENET1K_SWAG_E2E_V1")
    categories = tvm.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1.meta["categories"]  # the same classes in order, with
    differ = [c for c, ours in zip(categories, model.labels) if c not in ours.split(", ")]  # the synonyms of timm's
    assert differ == ["crane bird", "maillot tank suit"]  # torchvision tells apart two names ImageNet gives twice
    again = load_model("torchvision:vit_b_16.IMAGENET1K_SWAG_E2E_V1", pretrained=False)
    assert all(torch.equal(a, b) for a, b in zip(model.module.parameters(), again.module.parameters()))


def test_unknown_names_weights_and_no_network_are_one_line(monkeypatch):
    import urllib.error

    with pytest.raises(ModelError, match=r"^unknown torchvision classifier 'resnet5'; did you mean resnet50\b"):
        load_model("tv:resnet5")
    with pytest.raises(ModelError, match=r"^torchvision:resnet50 has no weights 'V3'; it has IMAGENET1K_V1, "
                                         r"IMAGENET1K_V2$"):
        load_model("tv:resnet50.V3")

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", offline)  # no download, wherever the test runs
    with pytest.raises(ModelError, match=r"^cannot download pretrained weights for torchvision:resnet18.IMAGENET1K_V1 "
                                         r"\(URLError\); offline\? use --weights FILE"):
        load_model("torchvision:resnet18")


def test_explain_runs_a_torchvision_model(tmp_path, pictures):
    from click.testing import CliRunner

    from attrib.cli import main

    pictures[0].save(tmp_path / "p.png")
    result = CliRunner().invoke(main, ["explain", str(tmp_path / "p.png"), "-M", "tv:resnet18", "--no-pretrained",
                                       "-m", "gradient", "--no-images", "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert '"name": "torchvision:resnet18.IMAGENET1K_V1"' in (tmp_path / "run" / "run.json").read_text()
