"""Model specs resolve into working adapters offline; bad specs and weights give one clear line."""

import json
import re

import pytest
import torch
from PIL import Image

import attrib
from attrib.models import ModelError, load_model
from attrib.models.checkpoint import load_state_dict
from attrib.models.preprocess import Preprocess


def _check(model, n_classes, size):
    image = Image.new("RGB", (50, 40), (120, 30, 200))
    x = model.preprocess(image)[None]
    assert x.shape == (1, model.preprocess.channels, *size)
    assert model.module(x).shape == (1, n_classes) and len(model.labels) == n_classes
    res = attrib.attribute(model.module, x, "ig", n_steps=4)
    assert res.values.shape == x.shape and torch.isfinite(res.values).all()


@pytest.mark.parametrize("name,size", [("test_resnet", (160, 160)), ("test_vit", (160, 160))])
def test_timm_without_pretrained(name, size):
    model = load_model(f"timm:{name}", pretrained=False)
    assert model.name == f"timm:{name}" and model.labels[281] == "tabby, tabby cat"
    _check(model, 1000, size)


def test_random_weights_are_the_same_on_every_load_and_leave_the_callers_generator_alone(tiny_vit_folder):
    """--no-pretrained: a rerun, and every Ray worker, must explain the same random model."""
    for spec in ("timm:test_resnet", str(tiny_vit_folder)):
        torch.manual_seed(5)
        first = load_model(spec, pretrained=False).module.state_dict()
        after_first = torch.rand(3)
        torch.manual_seed(6)
        second = load_model(spec, pretrained=False).module.state_dict()
        assert all(torch.equal(first[key], second[key]) for key in first)
        torch.manual_seed(5)
        assert torch.equal(torch.rand(3), after_first)  # loading drew nothing from the caller's generator


@pytest.mark.parametrize("spec", ["sample:blockdigits-standard", None])
def test_no_pretrained_gives_the_sample_and_default_architectures_random_weights(spec):
    """--no-pretrained used to be ignored for sample: models and the default: their shipped weights came back."""
    shipped, random, again = load_model(spec), load_model(spec, pretrained=False), load_model(spec, pretrained=False)
    assert random.name.endswith("random weights)") and random.labels == shipped.labels
    assert random.preprocess == shipped.preprocess
    mine, theirs = random.module.state_dict(), shipped.module.state_dict()
    assert mine.keys() == theirs.keys() and not all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert all(torch.equal(mine[k], again.module.state_dict()[k]) for k in mine)  # the same draw on every load
    if spec:
        assert random.card["weights"] == "random" and "test_accuracy" not in random.card


def test_hf_local_folder(tiny_vit_folder):
    for spec in (str(tiny_vit_folder), f"hf:{tiny_vit_folder}"):
        model = load_model(spec)
        assert model.labels == ["ant", "bee", "cat <b>"] and model.preprocess.squash
        _check(model, 3, (32, 32))
    trained, random = load_model(tiny_vit_folder), load_model(tiny_vit_folder, pretrained=False)
    assert random.labels == trained.labels and random.preprocess == trained.preprocess  # the same architecture
    x = trained.preprocess(Image.new("RGB", (50, 40), (120, 30, 200)))[None]
    assert not torch.allclose(random.module(x), trained.module(x))  # but not the saved weights


def test_hf_model_without_a_processor_says_what_attrib_assumes(tmp_path, tiny_vit_folder):
    import shutil

    shutil.copytree(tiny_vit_folder, tmp_path / "bare")
    (tmp_path / "bare" / "preprocessor_config.json").unlink()
    with pytest.warns(UserWarning, match=r"has no image processor .* squashes images to 32 x 32 and normalises with "
                                         r"mean = std = 0.5"):
        model = load_model(str(tmp_path / "bare"))
    assert model.preprocess.squash and model.preprocess.mean == (0.5, 0.5, 0.5)


def test_hf_grayscale_model_gets_grayscale_inputs(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    ViTForImageClassification(ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=16, num_labels=10,
                                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
                              ).save_pretrained(tmp_path / "gray")
    ViTImageProcessor(size={"height": 28, "width": 28}, image_mean=[0.5, 0.4, 0.3],  # RGB statistics: averaged
                      image_std=[0.2, 0.2, 0.2]).save_pretrained(tmp_path / "gray")
    model = load_model(str(tmp_path / "gray"))
    assert model.preprocess.channels == 1 and model.preprocess.mean == pytest.approx((0.4,))
    _check(model, 10, (28, 28))


def test_hf_checkpoint_without_a_classifier_head_is_refused(tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(tmp_path / "base")
    with pytest.raises(ModelError, match="is not an image classifier checkpoint: it has no weights for classifier"):
        load_model(str(tmp_path / "base"))
    with pytest.warns(UserWarning, match="has no image processor"):
        assert load_model(str(tmp_path / "base"), pretrained=False).n_classes == 2  # random on purpose: allowed


def test_timm_backbone_without_a_head_is_refused_unless_weights_give_one(tmp_path):
    """269 of timm's pretrained tags are feature extractors (num_classes 0): one line, not an IndexError."""
    import timm

    with pytest.raises(ModelError, match="timm:convnextv2_atto.fcmae has no classifier head.*--weights"):
        load_model("timm:convnextv2_atto.fcmae", pretrained=False)
    torch.save(timm.create_model("convnextv2_atto", num_classes=4).state_dict(), tmp_path / "tuned.pt")
    assert load_model("timm:convnextv2_atto.fcmae", weights=tmp_path / "tuned.pt").n_classes == 4


def test_hf_hub_offline_is_one_line():
    with pytest.raises(ModelError, match="^cannot fetch 'someone/missing-model' from the Hugging Face hub: it is not "
                                         "in the cache and HF_HUB_OFFLINE is set; offline, pass a folder of its files"):
        load_model("hf:someone/missing-model")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_timm_with_local_weights(tmp_path, suffix):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(3)
    source = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    torch.save(state, path) if suffix == ".pt" else save_file(state, str(path))
    model = load_model("timm:test_resnet", weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(model.module.state_dict()[key], value)


@pytest.mark.parametrize("in_chans", [1, 3])
def test_fine_tuned_timm_weights_set_the_head_and_the_stem(tmp_path, in_chans):
    import timm
    from PIL import Image

    torch.manual_seed(3)
    source = timm.create_model("test_resnet", pretrained=False, num_classes=5, in_chans=in_chans).eval()
    torch.save(source.state_dict(), tmp_path / "tuned.pt")
    model = load_model("timm:test_resnet", weights=tmp_path / "tuned.pt")
    assert model.labels == [f"class {i}" for i in range(5)] and model.preprocess.channels == in_chans
    x = model.preprocess(Image.new("RGB", (40, 30), (90, 120, 200))).unsqueeze(0)
    assert x.shape[1] == in_chans and torch.equal(model.module(x), source(x))
    fresh = model.factory()  # DiffROAR retrains this architecture: the same head and stem
    assert fresh.num_classes == 5 and fresh.state_dict()["conv1.0.weight"].shape[1] == in_chans
    if in_chans == 1:  # the RGB statistics averaged for the one channel
        assert model.preprocess.mean == (sum(source.pretrained_cfg["mean"]) / 3,)


def test_a_timm_folder_as_the_hub_serves_it_loads_through_timm(tmp_path):
    """`huggingface-cli download timm/resnet50.a1_in1k --local-dir r50` gives a config.json naming the
    architecture beside model.safetensors: transformers' timm wrapper failed on it with a TypeError ("multiple
    values for keyword argument 'num_classes'"), and the model's own preprocessing was not timm's."""
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("test_resnet", num_classes=3).eval()
    folder = tmp_path / "r50"
    folder.mkdir()
    cfg = {**source.pretrained_cfg, "crop_pct": 0.8, "label_names": ["ant", "bee", "cat"]}
    (folder / "config.json").write_text(json.dumps({"architecture": "test_resnet", "num_classes": 3,
                                                    "model_args": {"num_classes": 3, "global_pool": "avg"},
                                                    "pretrained_cfg": cfg}))
    save_file(source.state_dict(), folder / "model.safetensors")
    model = load_model(str(folder))
    assert (model.name, model.labels, model.preprocess.crop_pct) == (str(folder), ["ant", "bee", "cat"], 0.8)
    x = torch.randn(2, 3, *model.preprocess.size)
    with torch.no_grad():
        assert torch.equal(model.module(x), source(x))
    assert model.factory().fc.out_features == 3  # DiffROAR's retrains build it too
    assert not torch.equal(load_model(str(folder), pretrained=False).module.fc.weight, source.fc.weight)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="holds no model.safetensors or pytorch_model.bin"):
        load_model(str(folder))
    (folder / "config.json").write_text(json.dumps({"architecture": "resnet_from_the_future"}))
    with pytest.raises(ModelError, match="names 'resnet_from_the_future', which this timm .* does not know"):
        load_model(str(folder))


def test_a_timm_repo_on_the_hub_is_read_with_its_own_preprocessing(tmp_path, monkeypatch):
    """`hf:timm/resnet50.a1_in1k` went through transformers' timm wrapper, which finds no preprocessor_config.json
    in timm's repos: pictures were squashed to 224 px with mean = std = 0.5 instead of the repo's own transform."""
    import huggingface_hub
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("test_resnet", num_classes=1000).eval()
    snapshot = tmp_path / "cache" / "snapshots" / "abc"  # as the hub's cache lays a repo out
    snapshot.mkdir(parents=True)
    cfg = {k: source.pretrained_cfg[k] for k in ("input_size", "interpolation", "crop_pct", "mean", "std")}
    (snapshot / "config.json").write_text(json.dumps({"architecture": "test_resnet", "num_classes": 1000,
                                                      "pretrained_cfg": cfg}))
    save_file(source.state_dict(), snapshot / "model.safetensors")
    fetched = []

    def download(repo, filename, **kwargs):
        if repo != "timm/test_resnet.r160_in1k" or not (snapshot / filename).is_file():
            raise FileNotFoundError(filename)
        fetched.append(filename)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    for spec in ("hf:timm/test_resnet.r160_in1k", f"hf:{snapshot}", "timm:timm/test_resnet.r160_in1k",
                 "timm:hf-hub:timm/test_resnet.r160_in1k"):  # timm's own names for a hub repo too
        model = load_model(spec)
        assert model.name == spec.removeprefix("hf:") and model.preprocess.size == (160, 160)
        assert model.preprocess.crop_pct == source.pretrained_cfg["crop_pct"]
        assert model.labels[281] == "tabby, tabby cat"
        x = torch.randn(1, 3, 160, 160)
        with torch.no_grad():
            assert torch.equal(model.module(x), source(x))
    assert fetched == ["config.json", "model.safetensors"] * 3  # the local folder fetched nothing
    with pytest.raises(ModelError, match=r"^timm:timm/nothing: no timm model in timm/nothing on the Hugging Face "
                                         r"hub, or the hub cannot be reached \(offline\?"):
        load_model("timm:timm/nothing")


def test_malformed_and_mismatched_weights(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02garbage\x00\x01, not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights .*not a PyTorch checkpoint or safetensors file"):
        load_model("timm:test_resnet", weights=bad)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")  # told what they are: was "(IndexError: pop from empty list)"
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.png")  # was "(UnpicklingError: Unsupported operand 137)"
    (tmp_path / "empty.pt").write_bytes(b"")  # was "(EOFError: EOFError)"
    for name, what in (("classes.txt", "text, not a checkpoint"), ("cat.png", "a PNG image, not a checkpoint"),
                       ("empty.pt", r"an empty file \(0 bytes\)")):
        with pytest.raises(ModelError, match=rf"^cannot read weights .*{name}: {what}$"):
            load_model("timm:test_resnet", weights=tmp_path / name)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(ModelError, match=r"do not fit the model: \d+ keys missing \(conv1\.0\.weight, "
                       r"conv1\.1\.weight, \.\.\.\); 1 shape differs \(fc\.weight: file \[3, 3\], model \[3, \d+\]\)"):
        load_model("timm:test_resnet", weights=other)
    with pytest.raises(ModelError, match="weights file not found"):
        load_model("timm:test_resnet", weights=tmp_path / "nope.pt")
    import timm

    torch.save(timm.create_model("test_resnet", in_chans=4).state_dict(), tmp_path / "rgba.pt")
    with pytest.raises(ModelError, match="take 4 input channels; attrib feeds RGB"):
        load_model("timm:test_resnet", weights=tmp_path / "rgba.pt")


@pytest.mark.parametrize("spec,example", [("hf:", "hf:google/vit-base-patch16-224"), ("timm: ", "timm:resnet50"),
                                          ("sample:", "sample:blockdigits-standard")])
def test_a_prefix_naming_no_model_says_so(spec, example):
    """'hf:' was read as the current folder ("  is a folder but not a Hugging Face model"); 'timm:' offered aimv2."""
    with pytest.raises(ModelError, match=rf"names no model: give one after the prefix, e.g. {example}"):
        load_model(spec, pretrained=False)
    assert load_model("   ", pretrained=False).name == load_model(None, pretrained=False).name  # blank: default


def test_weights_holding_nan_are_refused_in_one_line(tmp_path):
    import timm

    state = timm.create_model("test_resnet").state_dict()
    state["fc.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(ModelError, match=r"^timm:test_resnet with weights .*diverged\.pt has NaN or infinite weights "
                                         r"\(fc\.weight\): a diverged training run or a corrupted file"):
        load_model("timm:test_resnet", weights=tmp_path / "diverged.pt")
    state["fc.weight"][0, 0] = 0.0
    state["bn1.running_var"][0] = float("nan")  # a buffer: BatchNorm statistics
    torch.save(state, tmp_path / "stats.pt")
    with pytest.raises(ModelError, match=r"\(bn1\.running_var\)"):
        load_model("timm:test_resnet", weights=tmp_path / "stats.pt")


def test_a_mismatch_is_counted_with_examples_in_one_line(tmp_path):
    import timm

    state = timm.create_model("test_resnet", num_classes=5).state_dict()
    del state["conv1.0.weight"]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "head.pt")  # 5 classes read from fc.weight; the stem's first conv is gone
    with pytest.raises(ModelError) as caught:
        load_model("timm:test_resnet", weights=tmp_path / "head.pt")
    message = str(caught.value)
    assert "\n" not in message and message.endswith("(saved from another architecture or head?)")
    assert "1 key missing (conv1.0.weight); 1 key not in the model (extra.weight)" in message
    torch.save(timm.create_model("test_resnet", num_classes=5).state_dict(), tmp_path / "five.pt")
    with pytest.raises(ModelError, match=r"2 shapes differ \(fc\.weight: file \[5, (\d+)\], model \[3, \1\], fc\.bias: "
                                         r"file \[5\], model \[3\]\) \(saved from another architecture or head\?\)$"):
        load_state_dict(timm.create_model("test_resnet", num_classes=3), tmp_path / "five.pt")


def test_pickled_code_is_never_run(tmp_path, capsys):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(ModelError, match="cannot read weights") as error:
        load_model("timm:test_resnet", weights=path)
    assert "pwned" not in capsys.readouterr().out
    message = str(error.value)  # says what to do, not torch's advice to load it unsafely
    assert re.search(r"it holds pickled code calling (posix|nt)\.system, which torch never loads and attrib never "
                     r"runs: save model.state_dict\(\)", message) and "\n" not in message
    assert "weights_only" not in message and "\x1b" not in message


def test_checkpoints_with_training_data_beside_the_weights_load(tmp_path, capsys):
    """timm's train.py saves its argparse.Namespace as ``args`` beside ``state_dict``, and many training scripts
    a best accuracy as a numpy scalar (pickled as numpy.core under numpy 1): weights_only refused both, and the
    user was told to save the state dict again. Pickled code is never run, in a Namespace too."""
    import argparse
    import zipfile

    import numpy as np
    import timm

    source = timm.create_model("test_resnet", num_classes=3)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 3, "arch": "test_resnet", "state_dict": source.state_dict(), "version": 2,
                "args": argparse.Namespace(model="test_resnet", lr=0.1, mean=(0.5, 0.5, 0.5), sched=None),
                "metric": 91.2, "best": np.float64(0.9), "confusion": np.eye(3, dtype=np.int64)}, path)
    numpy1 = tmp_path / "numpy1.pt"  # the same, as numpy 1 names the function that rebuilds a scalar
    with zipfile.ZipFile(path) as read, zipfile.ZipFile(numpy1, "w") as write:
        for info in read.infolist():
            data = read.read(info)
            write.writestr(info.filename, data.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
                           if info.filename.endswith("data.pkl") else data)
    for weights in (path, numpy1):
        model = load_model("timm:test_resnet", weights=weights)
        assert all(torch.equal(a, b) for a, b in zip(model.module.state_dict().values(),
                                                     source.state_dict().values()))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": source.state_dict(), "args": argparse.Namespace(x=Evil())}, tmp_path / "evil.pt")
    load_model("timm:test_resnet", weights=tmp_path / "evil.pt")  # the call to print read as an inert record
    assert "pwned" not in capsys.readouterr().out


def test_unknown_specs():
    with pytest.raises(ModelError, match="unknown timm model 'resnet_nope'"):
        load_model("timm:resnet_nope")
    with pytest.raises(ModelError, match=r"unknown timm model 'resnt18'; did you mean resnet18\b"):
        load_model("timm:resnt18")  # a typo: names that look alike
    with pytest.raises(ModelError, match=r"did you mean mobilenetv3_\w+"):
        load_model("timm:mobilenetv3")  # a family: names that hold it
    with pytest.raises(ModelError, match=r"'resnet5'; did you mean resnet50, resnet50c"):  # was cspresnet50, ...
        load_model("timm:resnet5")  # the closest of the names holding it first
    with pytest.raises(ModelError, match=r"'vit_base'; did you mean vit_base_\w+, vit_base_"):  # was davit_base
        load_model("timm:vit_base")
    with pytest.raises(ModelError, match="unknown model spec 'banana'"):
        load_model("banana")
    with pytest.raises(ModelError, match="unknown sample model 'nope'"):
        load_model("sample:nope")


def test_a_folder_or_file_that_is_no_model_says_what_it_is(tmp_path, monkeypatch):
    from attrib.models.text_models import load_masked_lm, load_text_classifier

    (tmp_path / "notes.txt").write_text("x")  # a folder of something else: not a hub id, not a saved model
    for load in (load_model, load_text_classifier, load_masked_lm):
        with pytest.raises(ModelError, match=rf"^{tmp_path} is a folder but not a Hugging Face model saved with "
                                             r"save_pretrained \(it has no config.json\)$"):
            load(str(tmp_path))
    for missing in (str(tmp_path / "gone"), "./gone", "models/bert/final", "gone/"):  # paths no hub id can be
        for load in (lambda name: load_model(f"hf:{name}"), load_text_classifier, load_masked_lm):
            with pytest.raises(ModelError, match=rf"^{re.escape(missing)}: no such folder \(a Hugging Face model is "
                                                 r"a local folder saved with save_pretrained or a hub id, NAME or "
                                                 r"ORG/NAME\)$"):
                load(missing)
    monkeypatch.setenv("HOME", str(tmp_path.parent))  # a quoted ~/...: the folder under the home folder
    for load in (lambda name: load_model(f"hf:{name}"), load_text_classifier, load_masked_lm):
        with pytest.raises(ModelError, match=rf"^{tmp_path} is a folder but not a Hugging Face model saved with "):
            load(f"~/{tmp_path.name}")
    torch.save({"w": torch.zeros(1)}, tmp_path / "tuned.pt")
    with pytest.raises(ModelError, match=r"is a file; a state dict needs its architecture: --model timm:NAME \(or "
                                         r"torchvision:NAME, or your code's FILE.py:NAME\) --weights .*tuned\.pt"):
        load_model(tmp_path / "tuned.pt")
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.jpg")  # was "... --weights cat.jpg"
    with pytest.raises(ModelError, match=r"^--model .*cat\.jpg is a JPEG image, not a model; explain it as an input: "
                                         r"attrib explain .*cat\.jpg$"):
        load_model(tmp_path / "cat.jpg")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "config.json").write_text("{}")
    for load in (lambda name: load_model(f"hf:{name}"), load_text_classifier, load_masked_lm):
        # transformers read a file as a config: "not a valid JSON file", "from the Hugging Face hub (offline?)"
        with pytest.raises(ModelError, match=r"^.*cat\.jpg is a file, not a Hugging Face model: give a folder saved "
                                             r"with save_pretrained \(it holds config.json\), or a hub id"):
            load(str(tmp_path / "cat.jpg"))
        with pytest.raises(ModelError, match=rf"config.json is a file, not a Hugging Face model: give its folder, "
                                             rf"{tmp_path / 'saved'}, or a hub id"):
            load(str(tmp_path / "saved" / "config.json"))


def test_timm_pretrained_offline_suggests_local_weights(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ModelError, match="offline\\? use --weights FILE.*--no-pretrained"):
        load_model("timm:resnet18")


@pytest.mark.parametrize("offline_set", [False, True])
def test_a_hub_out_of_reach_says_how_to_skip_its_retries(monkeypatch, offline_set):
    """Without a network the hub's client retried each file for ~23 s (timm:resnet18: 52 s, two files, 22 lines
    of retries) before the one line; HF_HUB_OFFLINE=1 fails at once, and the line now says so unless it is set."""
    import timm
    import transformers
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    from attrib.models.text_models import load_text_classifier

    def unreachable(*args, **kwargs):
        try:
            raise ConnectionError("[Errno -2] Name or service not known")
        except ConnectionError as cause:
            raise LocalEntryNotFoundError("cannot reach the hub and the file is not in the cache") from cause

    def wrapped(*args, **kwargs):  # as transformers raises it: an OSError from the hub's error
        try:
            unreachable()
        except LocalEntryNotFoundError as error:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files") from error

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline_set)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)  # (timm's format tried first): no network
    monkeypatch.setattr(timm, "create_model", unreachable)
    monkeypatch.setattr(transformers.AutoModelForImageClassification, "from_pretrained", wrapped)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", wrapped)
    hint = "; without a network, set HF_HUB_OFFLINE=1 to be told at once rather than after the hub's retries"
    for spec, load in [("timm:resnet18", load_model), ("hf:someone/model", load_model),
                       ("timm:timm/resnet18.a1_in1k", load_model), ("someone/model", load_text_classifier)]:
        with pytest.raises(ModelError) as caught:
            load(spec)
        assert (hint in str(caught.value)) is not offline_set, (spec, str(caught.value))
    with pytest.raises(ModelError) as caught:  # a repo in timm's format is tried first: once, not twice over
        load_model("hf:timm/resnet18.a1_in1k")
    why = "HF_HUB_OFFLINE is set" if offline_set else "the hub cannot be reached"
    assert f"'timm/resnet18.a1_in1k' from the Hugging Face hub: it is not in the cache and {why}; offline, pass a " \
        "folder of its files (huggingface-cli download timm/resnet18.a1_in1k --local-dir DIR)" in str(caught.value)


def test_default_model_calls_the_samples_right():
    from attrib.data.images import load_sample

    model = load_model()
    assert model.preprocess.mean == (0.5, 0.5, 0.5) and model.preprocess.size == (224, 224)
    x = torch.stack([model.preprocess(load_sample(n)) for n in ("chelsea", "coffee", "rocket")])
    with torch.no_grad():
        top = model.module(x).argmax(dim=1).tolist()
    assert top[0] in (281, 282, 285) and model.labels[top[1]] == "espresso" and model.labels[top[2]] == "missile"


def test_preprocess_view_is_what_the_model_sees():
    pre = Preprocess(size=(32, 48), crop_pct=1.0, mean=(0.5,) * 3, std=(0.25,) * 3)
    view = pre.view(Image.new("RGB", (300, 100), (255, 0, 128)))
    assert view.size == (48, 32)
    x = pre.tensor(view)
    assert x.shape == (3, 32, 48) and torch.allclose(x[:, 0, 0], torch.tensor([2.0, -2.0, (128 / 255 - 0.5) / 0.25]), atol=1e-5)


def test_labels_file_names_the_classes(tmp_path):
    from attrib.models.registry import read_labels

    (tmp_path / "l.txt").write_text("normal\npneumonia\n covid \n\n")
    (tmp_path / "l.json").write_text('["normal", "pneumonia", "covid"]')
    (tmp_path / "id2label.json").write_text('{"2": "covid", "0": "normal", "1": "pneumonia"}')
    for name in ("l.txt", "l.json", "id2label.json"):
        assert read_labels(tmp_path / name, 3) == ["normal", "pneumonia", "covid"]
    synsets = ["n01440764 tench, Tinca tinca", "n01443537 goldfish, Carassius auratus"]
    (tmp_path / "synset_words.txt").write_text("\n".join(synsets) + "\n")  # an ImageNet subset's two classes
    assert read_labels(tmp_path / "synset_words.txt", 2) == ["tench, Tinca tinca, n01440764",
                                                             "goldfish, Carassius auratus, n01443537"]
    (tmp_path / "all.txt").write_text("\n".join(synsets * 500))  # ImageNet-1k's: attrib knows the ids
    assert read_labels(tmp_path / "all.txt", 1000)[:2] == ["tench, Tinca tinca", "goldfish, Carassius auratus"]
    from attrib.targets import parse_class

    assert parse_class("n01443537", read_labels(tmp_path / "synset_words.txt", 2)) == 1  # an id-named folder
    for codec in ("utf-8-sig", "utf-16"):  # Notepad's byte-order mark was read into the first class's name
        (tmp_path / f"{codec}.txt").write_text("normal\npneumonia\ncovid\n", encoding=codec)
        (tmp_path / f"{codec}.json").write_text('["normal", "pneumonia", "covid"]', encoding=codec)
        for suffix in ("txt", "json"):
            assert read_labels(tmp_path / f"{codec}.{suffix}", 3) == ["normal", "pneumonia", "covid"]
    keras = {"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}  # Keras's imagenet_class_index.json
    (tmp_path / "keras.json").write_text(json.dumps(keras))
    assert read_labels(tmp_path / "keras.json", 2) == ["tench, n01440764", "goldfish, n01443537"]
    (tmp_path / "synonyms.json").write_text('[["cat", "kitty"], "dog"]')
    assert read_labels(tmp_path / "synonyms.json", 2) == ["cat, kitty", "dog"]
    (tmp_path / "mixed.txt").write_text("n01440764 tench\nplain name\n")  # ids on some lines only: names as they are
    assert read_labels(tmp_path / "mixed.txt", 2) == ["n01440764 tench", "plain name"]
    (tmp_path / "gap.json").write_text('{"0": "a", "2": "c", "3": "d"}')
    (tmp_path / "broken.json").write_text('["a", ')
    (tmp_path / "named.json").write_text('{"0": "a", "cat": "b"}')  # was "invalid literal for int() ..."
    Image.new("RGB", (8, 8)).save(tmp_path / "cat.jpg")  # a picture given for the labels: said so
    cases = {"l.txt": (4, "3 names for a model with 4 classes"), "gap.json": (3, "keys are not 0..N-1"),
             "cat.jpg": (3, r"^labels .*cat\.jpg: a JPEG image, not text$"),
             "named.json": (2, r"named\.json: its key 'cat' is not a class index \(an object maps indices 0..N-1"),
             "broken.json": (2, "labels .*broken.json: Expecting value"), "none.txt": (3, "cannot read labels")}
    for name, (n, message) in cases.items():
        with pytest.raises(ModelError, match=message):
            read_labels(tmp_path / name, n)


def test_weights_for_sample_and_hugging_face_models(tmp_path, tiny_vit_folder):
    shipped = load_model("sample:blockdigits-standard")
    torch.manual_seed(0)
    fresh = shipped.factory()
    torch.save(fresh.state_dict(), tmp_path / "mine.pt")
    mine = load_model("sample:blockdigits-standard", weights=tmp_path / "mine.pt")
    x = torch.rand(2, 1, 56, 28)
    assert torch.equal(mine.module(x), fresh.eval()(x)) and not torch.equal(mine.module(x), shipped.module(x))
    assert mine.card["dataset"] == "blockdigits" and "test_accuracy" not in mine.card  # not the shipped scores
    with pytest.raises(ModelError, match="--weights is for timm, torchvision and sample models"):
        load_model(tiny_vit_folder, weights=tmp_path / "mine.pt")  # a Path spec works too


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.module.", "model."])
def test_weights_saved_through_a_training_wrapper_load(tmp_path, prefix):
    import timm

    torch.manual_seed(4)
    source = timm.create_model("test_resnet", pretrained=False, num_classes=7).eval()
    torch.save({"state_dict": {prefix + k: v for k, v in source.state_dict().items()}}, tmp_path / "w.pt")
    model = load_model("timm:test_resnet", weights=tmp_path / "w.pt")
    assert model.n_classes == 7
    for key, value in source.state_dict().items():
        assert torch.equal(model.module.state_dict()[key], value)


def test_one_preprocess_change_is_one_change():
    """preprocess="size=128" was read letter by letter ("--preprocess 's': expected KEY=VALUE")."""
    one = load_model("timm:test_resnet", pretrained=False, preprocess="size=128").preprocess
    assert one == load_model("timm:test_resnet", pretrained=False, preprocess=["size=128"]).preprocess
    assert one.size == (128, 128)


def test_preprocess_settings_silence_what_attrib_would_assume(tmp_path, tiny_vit_folder):
    """A folder without its processor is read as attrib assumes, and said; once --preprocess says how, nothing is
    assumed and nothing said."""
    import shutil
    import warnings

    shutil.copytree(tiny_vit_folder, tmp_path / "bare")
    (tmp_path / "bare" / "preprocessor_config.json").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(str(tmp_path / "bare"), preprocess=["mean=0.4", "std=0.2"])
    assert model.preprocess.mean == (0.4, 0.4, 0.4)
