"""attrib feeds a model the inputs its own pipeline would: timm's eval transform, a Hugging Face processor."""

import numpy as np
import pytest
import torch
from PIL import Image

from attrib.models.hf_processor import mismatch, processor_preprocess
from attrib.models.preprocess import Preprocess
from attrib.models.timm_models import timm_preprocess


def _pictures():
    """Two pictures whose resized long side is fractional and whose crop has an odd spare pixel."""
    rng = np.random.default_rng(0)
    for size in ((451, 300), (640, 427)):
        rows, cols = np.mgrid[0:size[1], 0:size[0]]
        smooth = np.stack([rows / size[1], cols / size[0], (rows + cols) % 37 / 37], axis=-1) * 200
        yield Image.fromarray((smooth + rng.integers(0, 55, smooth.shape)).astype(np.uint8))


@pytest.mark.parametrize("arch", ["efficientnet_lite0", "convnext_atto", "vit_tiny_patch16_224", "inception_v3",
                                  "convnextv2_nano.fcmae_ft_in22k_in1k_384"])  # the last: crop_mode "squash"
def test_timm_models_get_timm_eval_transform_exactly(arch):
    timm = pytest.importorskip("timm")
    from timm.data import create_transform, resolve_data_config

    module = timm.create_model(arch, pretrained=False)
    theirs, ours = create_transform(**resolve_data_config({}, model=module)), timm_preprocess(module)
    for picture in _pictures():
        assert torch.allclose(ours(picture), theirs(picture), atol=1e-5)


@pytest.mark.parametrize("crop_pct", [0.95, 1.0])
def test_timm_border_mode_is_reproduced(crop_pct):
    """crop_mode "border" (a few timm ViTs): the longer side fitted, the rest padded with the mean colour."""
    timm = pytest.importorskip("timm")
    from timm.data import create_transform, resolve_data_config

    overlay = {"crop_mode": "border", "crop_pct": crop_pct}
    module = timm.create_model("resnet18", pretrained=False, pretrained_cfg_overlay=overlay)
    theirs, ours = create_transform(**resolve_data_config({}, model=module)), timm_preprocess(module)
    assert ours.pad
    tall = Image.fromarray(np.random.default_rng(1).integers(0, 255, (500, 90, 3), dtype=np.uint8))
    for picture in [*_pictures(), tall]:
        mine = ours(picture)
        assert torch.allclose(mine, theirs(picture), atol=1e-5)
    assert torch.allclose(mine[:, :, 0], torch.zeros(3, 224), atol=0.01)  # the mean colour normalises to ~0


def _processors():
    import transformers as t

    return {
        "vit (squash)": t.ViTImageProcessor(),
        "deit (squash 256, crop 224)": t.DeiTImageProcessor(),
        "beit (bicubic)": t.BeitImageProcessor(),
        "convnext 224 (shortest edge / crop_pct)": t.ConvNextImageProcessor(size={"shortest_edge": 224}),
        "convnext 384 (squash)": t.ConvNextImageProcessor(),
        "poolformer (crop_pct 0.9)": t.PoolFormerImageProcessor(),
        "clip (shortest edge, crop)": t.CLIPImageProcessor(),
        "mobilenetv2 (256 -> 224)": t.MobileNetV2ImageProcessor(),
        "no normalisation": t.ViTImageProcessor(do_normalize=False),
        "no rescaling": t.ViTImageProcessor(do_rescale=False),
        "rescale offset": t.EfficientNetImageProcessor(size={"height": 224, "width": 224}, rescale_offset=True,
                                                       include_top=False),
        "efficientnet (include_top: std twice)": t.EfficientNetImageProcessor(size={"height": 224, "width": 224}),
    }


@pytest.mark.parametrize("name", list(_processors()))
def test_hugging_face_processors_are_reproduced(name):
    processor = _processors()[name]
    pre = processor_preprocess(processor, 224, 224, 3)
    gray_level = 1 / 255 / min(pre.std)  # one step of 8-bit pixels in the model's input space
    for picture in _pictures():
        theirs = torch.as_tensor(processor(picture, return_tensors="np")["pixel_values"][0])
        ours = pre(picture)
        assert ours.shape == theirs.shape
        gaps = (ours - theirs).abs() / gray_level  # their float resize vs PIL's 8-bit one: a level here and there
        assert float(gaps.max()) <= 2.01 and float(gaps.mean()) < 0.05, (float(gaps.max()), float(gaps.mean()))
    assert mismatch(processor, pre) is None


def test_a_processor_without_a_normalisation_step_is_not_normalised():
    """transformers 4's MobileViT processor has neither ``do_normalize`` nor an ``image_mean``: attrib normalised
    its inputs with mean = std = 0.5 all the same (101% off the processor's, warned of)."""
    from types import SimpleNamespace

    bare = SimpleNamespace(size={"height": 8, "width": 8}, rescale_factor=1 / 255)
    pre = processor_preprocess(bare, 8, 8, 3)
    assert pre.mean == (0.0,) * 3 and pre.std == (1.0,) * 3
    stats = SimpleNamespace(size={"height": 8, "width": 8}, image_mean=[0.25] * 3, image_std=[0.5] * 3)
    assert processor_preprocess(stats, 8, 8, 3).mean == (0.25,) * 3  # statistics and no switch: normalised


def test_a_processor_with_rules_of_its_own_is_flagged():
    from transformers import LevitImageProcessor

    processor = LevitImageProcessor()  # resizes to 256/224 of its shortest edge before the crop
    assert "differ from its processor's by" in mismatch(processor, processor_preprocess(processor, 224, 224, 3))


def test_a_long_strip_resizes_only_what_the_crop_keeps(monkeypatch):
    """A 900 x 5 strip resized whole would be 46,080 x 256 px; only the crop's region is resized, to the same
    pixels as the whole resize."""
    import attrib.models.preprocess as module

    strip = Image.fromarray(np.random.default_rng(0).integers(0, 255, (5, 900, 3), dtype=np.uint8))
    pre = Preprocess()
    cropped = np.asarray(pre.view(strip), dtype=int)
    monkeypatch.setattr(module, "WHOLE_RESIZE_PIXELS", 10 ** 12)
    whole = np.asarray(pre.view(strip), dtype=int)
    assert cropped.shape == (224, 224, 3) and np.abs(cropped - whole).max() <= 1
    monkeypatch.undo()
    assert pre.view(Image.new("RGB", (40_000, 2))).size == (224, 224)  # 1.3 Gpx if resized whole


def test_a_crop_that_is_a_ratio_of_two_sizes_is_exact():
    from transformers import DeiTImageProcessor

    processor = DeiTImageProcessor(size={"height": 400, "width": 400}, crop_size={"height": 224, "width": 224})
    pre = processor_preprocess(processor, 224, 224, 3)  # crop_pct 0.56: 224 / 0.56 is 399.99999999999994
    for picture in _pictures():
        theirs = torch.as_tensor(processor(picture, return_tensors="np")["pixel_values"][0])
        gaps = (pre(picture) - theirs).abs() / (1 / 255 / min(pre.std))
        assert float(gaps.max()) <= 2.01 and float(gaps.mean()) < 0.05


def test_a_model_that_reads_bgr_gets_its_channels_flipped(tmp_path, recwarn):
    """MobileViT's processor flips the channels to BGR: attrib fed RGB, warned that its inputs differed by 39%
    ("resizing rules"), and every prediction and map was of a picture with red and blue swapped."""
    import transformers as t

    from attrib.models import load_model

    torch.manual_seed(0)  # a tiny ViT (a tiny random MobileViT's output does not depend on its input) with
    config = t.ViTConfig(image_size=64, patch_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, num_labels=3)  # MobileViT's processor, which makes BGR inputs
    module = t.ViTForImageClassification(config).eval()
    processor = t.MobileViTImageProcessor(size={"shortest_edge": 72}, crop_size={"height": 64, "width": 64})
    module.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    model = load_model(f"hf:{tmp_path / 'm'}")
    assert not [w for w in recwarn if "differ" in str(w.message)]
    picture = next(_pictures())
    theirs = module(pixel_values=torch.as_tensor(processor(picture, return_tensors="np")["pixel_values"])).logits
    with torch.no_grad():
        rgb = model.preprocess(picture)[None]
        ours, unflipped = model.module(rgb), module(pixel_values=rgb).logits
    assert torch.allclose(ours, theirs, atol=1e-3) and not torch.allclose(unflipped, theirs, atol=1e-3)


def test_perceivers_crop_then_resize_is_read_as_the_same_region():
    """Perceiver crops 224/256 of the shorter side, then resizes to 224: attrib fed 256 x 256 inputs (its
    crop_size), which its 224 x 224 position table cannot take."""
    from transformers import PerceiverImageProcessor

    processor = PerceiverImageProcessor()
    pre = processor_preprocess(processor, 224, 224, 3)
    for picture in _pictures():
        theirs = torch.as_tensor(processor(picture, return_tensors="np")["pixel_values"][0])
        ours = pre(picture)
        assert ours.shape == theirs.shape == (3, 224, 224)
        gaps = (ours - theirs).abs() * min(pre.std) * 255  # in 8-bit levels
        assert float(gaps.max()) <= 2.01 and float(gaps.mean()) < 0.05, (float(gaps.max()), float(gaps.mean()))
    assert mismatch(processor, pre) is None


@pytest.mark.parametrize("pad, squash, expected", [(False, False, 224 / 3), (False, True, 224 / 3),
                                                   (True, False, 224 / 300)])
def test_enlargement_is_that_of_the_side_the_resize_fits(pad, squash, expected):
    """A 3 x 300 strip: centre-cropped or squashed, its 3-pixel side is stretched across the input; letterboxed
    (timm's "border"), its long side is fitted and nothing is enlarged."""
    from attrib.models.preprocess import Preprocess

    preprocess = Preprocess(size=(224, 224), pad=pad, squash=squash)
    assert preprocess.enlargement((3, 300)) == pytest.approx(expected)
    view = np.asarray(preprocess.view(Image.new("RGB", (3, 300), (9, 9, 9))))
    strip_columns = (view == 9).all(axis=(0, 2)).sum()  # the columns the strip fills from top to bottom
    assert strip_columns == (224 if expected > 1 else 3)


def test_preprocess_settings_change_how_a_fine_tune_reads_pictures():
    """A fine-tune trained at 384 px, or with mean = std = 0.5, was read as its architecture's pretrained weights
    read pictures (224 px, ImageNet's statistics): its maps explained inputs it never saw in training."""
    from attrib.errors import UsageError
    from attrib.models.preprocess import Preprocess, overridden

    base = Preprocess(size=(224, 224), crop_pct=0.875, interpolation="bicubic")
    changed = overridden(base, ["size=384", "crop_pct=1", "mean=0.5", "std=0.2,0.3,0.4", "interpolation=bilinear",
                                "mode=squash"])
    assert changed == Preprocess(size=(384, 384), crop_pct=1.0, mean=(0.5,) * 3, std=(0.2, 0.3, 0.4),
                                 interpolation="bilinear", squash=True)
    assert overridden(changed, ["size=240x320", "mode=border"]).size == (240, 320)
    assert overridden(changed, ["mode=border"]).pad and not overridden(changed, ["mode=border"]).squash
    assert overridden(base, []) == base
    gray = Preprocess(channels=1, mean=(0.5,), std=(0.5,))
    assert overridden(gray, ["mean=0.1"]).mean == (0.1,)
    for setting, message in (("size=0", "a size in pixels"), ("size=big", "not a number"),
                             ("crop_pct=1.5", r"in \(0, 1\]"), ("mean=0.1,0.2", r"one per channel \(3\)"),
                             ("std=0", "each > 0"), ("interpolation=cubic", "one of bilinear"),
                             ("mode=crop", "one of center, squash, border"), ("resize=1", "KEY one of size"),
                             ("size", "expected KEY=VALUE"),
                             ("size=100000", r"at most 89,478,485 pixels, the largest picture attrib reads"),
                             ("mean=nan", "one finite number"), ("std=inf", "one finite number")):
        with pytest.raises(UsageError, match=message):
            overridden(base, [setting])


@pytest.mark.parametrize("channels, mean, std", [(3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                                                 (1, (0.0,), (1.0,)), (3, (0.5,), (0.5,))])
def test_a_model_input_is_its_picture_again(channels, mean, std):
    """What the sanity report shows beside the first input's maps: the normalised input undone, to the byte."""
    pre = Preprocess(size=(6, 5), crop_pct=1.0, mean=mean, std=std, channels=channels)
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, channels), dtype=np.uint8)
    view = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
    again = pre.picture(pre.tensor(view))
    assert again.mode == view.mode and np.array_equal(np.asarray(again), np.asarray(view))
    assert pre.picture(torch.zeros(2, 6, 5)) is None and pre.picture(torch.zeros(6, 5)) is None
