"""Your own model code: ``FILE.py:NAME`` / ``py:package.module:NAME``, with literal arguments, --weights,
--no-pretrained, --preprocess, and one line for every way the code or the spec can be wrong."""

import sys
import textwrap
import warnings

import pytest
import torch

from attrib.errors import UsageError
from attrib.models import ModelError, load_model

NETS = '''
import torch
from dataclasses import dataclass
from torch import nn

from blocks import Block  # a neighbour of this file, as `python nets.py` would import it


@dataclass
class Widths:  # a dataclass needs its module in sys.modules
    first: int = 4


class Net(nn.Module):
    def __init__(self, num_classes=10, width=4, channels=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.block = Block(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.block(self.conv(x)).mean((2, 3)))


class Flat(nn.Module):  # a fixed input size: 1 x 28 x 28
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 26 * 26, 5)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Tabular(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.hidden = nn.Linear(features, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


def build(num_classes=3, widths=(4,)):
    return Net(num_classes=num_classes, width=widths[0])


def not_a_model():
    return {"logits": 1}


def broken():
    return Nett()


class Heads(nn.Module):  # logits in a dict, as many research models return them
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 6)

    def forward(self, x):
        features = self.conv(x).mean((2, 3))
        return {"features": features, "logits": self.head(features)}


def two():
    return Heads(), 2


def pooled():
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1))  # (B, 2, 1, 1): not logits


built = Net(num_classes=4)
nn.init.constant_(built.head.weight, 0.5)  # as trained weights loaded into it would be


def forgot():
    Net(num_classes=2)


def count():
    return 3


class Pixels(nn.Module):  # an MLP on pictures, as on MNIST or CIFAR-10
    def __init__(self, channels=3, side=8, flatten=True):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Flatten()] * flatten, nn.Linear(channels * side * side, 16), nn.ReLU(),
                                    nn.Linear(16, 4))

    def forward(self, x):
        return self.layers(x)
'''


@pytest.fixture
def code(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the code's folder first, as python does
    (tmp_path / "blocks.py").write_text("from torch import nn\n\nclass Block(nn.Sequential):\n    def __init__(self, "
                                        "w):\n        super().__init__(nn.Conv2d(w, w, 1), nn.ReLU())\n")
    (tmp_path / "nets.py").write_text(NETS)
    return tmp_path / "nets.py"


def _quiet_load(spec, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's: TorchScript is deprecated in newer torch
        return load_model(spec, **options)


def test_a_class_with_literal_arguments_is_built_and_its_classes_counted(code):
    model = _quiet_load(f"{code}:Net(num_classes=5, width=6)")
    assert model.name == f"py:{code}:Net(num_classes=5, width=6)" and model.kind == "image"
    assert model.labels == [f"class {i}" for i in range(5)] and model.module.conv.out_channels == 6
    assert model.preprocess.size == (224, 224) and model.preprocess.mean == (0.485, 0.456, 0.406)
    assert model.card["code"]["sha256"] and model.card["code"]["file"].endswith("nets.py")
    assert _quiet_load(f"py:{code}:build(widths=[2])").module.conv.out_channels == 2  # a function, with a list
    assert _quiet_load(f"{code}:Net(1000)").labels[281] == "tabby, tabby cat"  # 1000 classes: ImageNet's


def test_the_model_is_the_same_on_every_load_and_weights_load_into_it(code, tmp_path):
    """Built under a fixed seed (reruns and Ray workers explain one model); --weights loads a state dict, also one
    saved through DataParallel; --no-pretrained re-draws every layer."""
    first, second = _quiet_load(f"{code}:Net"), _quiet_load(f"{code}:Net")
    assert all(torch.equal(a, b) for a, b in zip(first.module.state_dict().values(),
                                                 second.module.state_dict().values()))
    trained = _quiet_load(f"{code}:Net").module
    torch.nn.init.normal_(trained.head.weight)
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, tmp_path / "w.pt")
    loaded = _quiet_load(f"{code}:Net", weights=tmp_path / "w.pt")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), trained(x))
    instance = next(m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == str(code)).built
    as_built = _quiet_load(f"{code}:built").module  # a module built in the code (weights it may have loaded) as it is
    assert as_built is not instance and bool((as_built.head.weight == 0.5).all())
    assert not torch.equal(_quiet_load(f"{code}:built", pretrained=False).module.head.weight, instance.head.weight)
    with pytest.raises(ModelError, match="do not fit the model: 2 shapes differ"):
        _quiet_load(f"{code}:Net(num_classes=3)", weights=tmp_path / "w.pt")


def test_random_weights_leave_no_trained_weight_behind(tmp_path, monkeypatch):
    """A function may hand out a trained model, with parameters of its own besides its layers' (a ViT's class
    token): --no-pretrained and the fresh copies re-draw those too, as the randomization checks do."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "tok.py").write_text("import torch\nfrom torch import nn\n\nclass Tok(nn.Module):\n    def "
                                     "__init__(self):\n        super().__init__()\n        self.token = nn.Parameter("
                                     "torch.full((3,), 7.0))\n        self.fc = nn.Linear(3, 2)\n\n    def forward("
                                     "self, x):\n        return self.fc(x + self.token)\n\ndef trained():\n    "
                                     "model = Tok()\n    nn.init.constant_(model.fc.weight, 7.0)\n    return model\n")
    for model in (load_model(f"{tmp_path / 'tok.py'}:trained", pretrained=False).module,
                  load_model(f"{tmp_path / 'tok.py'}:trained").factory()):
        assert not (model.token == 7).any() and not (model.fc.weight == 7).any()


def test_fresh_copies_for_retraining(code):
    """DiffROAR and the randomization checks build fresh models from the factory: another object, new weights
    under another seed (a module instance in the code is copied and re-drawn, never handed out itself)."""
    from attrib.training import init_seeded

    for name in ("Net(num_classes=3)", "built"):
        model = _quiet_load(f"{code}:{name}")
        fresh = init_seeded(model.factory, 7)
        assert fresh is not model.module and type(fresh) is type(model.module)
        assert not torch.equal(fresh.head.weight, init_seeded(model.factory, 8).head.weight)
        assert torch.equal(fresh.head.weight, init_seeded(model.factory, 7).head.weight)


def test_how_it_reads_pictures_is_said_or_warned_of(code):
    with pytest.warns(UserWarning, match=r"says nothing of how it reads pictures: .* --preprocess size=\.\.\."):
        load_model(f"{code}:Net")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(f"{code}:Flat", preprocess=["size=28", "mean=0.5", "std=0.5"])
    assert (model.preprocess.channels, model.preprocess.size, model.preprocess.mean) == (1, (28, 28), (0.5,))
    assert model.n_classes == 5
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(1, 224, 224\): .*; give the input size it "
                                         r"takes with --preprocess size=H or HxW"):
        _quiet_load(f"{code}:Flat")


def test_a_timm_model_built_in_the_code_reads_pictures_as_timm_says(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "zoo.py").write_text("import timm\n\ndef small(classes):\n    return timm.create_model("
                                     "'test_vit', pretrained=False, num_classes=classes)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_model(f"{tmp_path / 'zoo.py'}:small(7)")
    assert model.n_classes == 7 and model.preprocess.size == (160, 160) and model.preprocess.mean == (0.5, 0.5, 0.5)


def test_a_model_of_vectors_takes_no_pictures(code):
    model = load_model(f"{code}:Tabular(features=6)")
    assert (model.kind, model.preprocess, model.n_classes) == ("vector", None, 2)
    with pytest.raises(ModelError, match=r"Tabular\(6\) takes vectors of 6 numbers, not pictures of 32x32 pixels in "
                                         r"1 or 3 channels \(6 / 1024 = 0.00585938\)$"):
        load_model(f"{code}:Tabular(6)", preprocess=["size=32"])
    with pytest.raises(UsageError, match="takes vectors, not pictures; a model of your own code that flattens "
                                         "pictures reads them given their size: --preprocess size=HxW"):
        load_model(f"{code}:Tabular(6)", preprocess=["mean=0.5"])


def test_a_model_that_flattens_pictures_reads_them_given_their_size(code):
    """An MLP on MNIST or CIFAR-10 (nn.Flatten, then Linear) was taken for a model of vectors: "takes no pictures"."""
    rgb = load_model(f"{code}:Pixels", preprocess=["size=8"])
    assert (rgb.kind, rgb.preprocess.channels, rgb.preprocess.size, rgb.n_classes) == ("image", 3, (8, 8), 4)
    gray = load_model(f"{code}:Pixels(channels=1, side=6)", preprocess=["size=6", "mean=0.13", "std=0.31"])
    assert (gray.preprocess.channels, gray.preprocess.mean, gray.preprocess.std) == (1, (0.13,), (0.31,))
    assert load_model(f"{code}:Pixels").kind == "vector"  # without its size: vectors, as before
    with pytest.raises(ModelError, match=r"cannot take inputs of shape \(3, 8, 8\): .*; a model of vectors reads "
                                         r"pictures only where it flattens them itself \(nn.Flatten first\)$"):
        load_model(f"{code}:Pixels(flatten=False)", preprocess=["size=8"])


def test_a_package_module_imports_from_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    package = tmp_path / "mymodels_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text("from torch import nn\nWIDTH = 3\n")
    (package / "nets.py").write_text("from torch import nn\nfrom .layers import WIDTH\n\n"
                                     "def mlp():\n    return nn.Sequential(nn.Linear(WIDTH, 4))\n")
    monkeypatch.chdir(tmp_path)
    assert load_model("py:mymodels_pkg.nets:mlp").n_classes == 4
    with pytest.raises(ModelError, match="a package's module\\? name it py:package.module:NAME"):
        load_model(f"{package / 'nets.py'}:mlp")  # a relative import in a file named alone
    with pytest.raises(ModelError, match="no module 'nosuchpkg_x' here or on the Python path"):
        load_model("py:nosuchpkg_x.nets:mlp")
    (package / "broken.py").write_text("import torch\n\nx = 1 / 0\n")
    with pytest.raises(ModelError, match=r"^cannot import mymodels_pkg.broken \(broken.py line 3\): ZeroDivisionError"):
        load_model("py:mymodels_pkg.broken:mlp")


@pytest.mark.parametrize("name, error, match", [
    ("Nope", ModelError, r"nets.py has no 'Nope'; it defines Net, Flat, Tabular, build, not_a_model, broken, "
                         r"Heads, two$"),
    ("broken", ModelError, r"nets.py:broken failed \(nets.py line \d+\): NameError: name 'Nett' is not defined"),
    ("Net(2, 3, 4, 5)", ModelError, r"failed: TypeError: .*takes from 1 to 4 positional arguments but 5 were "
                                    r"given$"),
    ("Tabular", ModelError, r"failed: TypeError: .*missing 1 required positional argument: 'features' \(give "
                            r"them: .*nets.py:Tabular\(features=\.\.\.\)\)"),
    ("not_a_model", ModelError, r"not_a_model returned a dict, not a torch.nn.Module"),
    ("Widths", ModelError, r"Widths returned a Widths, not a torch.nn.Module"),
    ("two", ModelError, r"two returned a tuple, not a torch.nn.Module"),
    ("forgot", ModelError, r"forgot returned None \(no return statement\?\), not a torch.nn.Module$"),
    ("count", ModelError, r"count returned an int, not a torch.nn.Module$"),  # was "a int"
    ("pooled", ModelError, r"returns \(1, 2, 1, 1\), not a \(batch, classes\) tensor of logits \(or a dict or "
                           r"Hugging Face output holding one as its logits\)"),
    ("built(2)", UsageError, r"built is a model already built, which takes no arguments"),
    ("Net(num_classes=n)", UsageError, r"the arguments must be Python literals"),
    ("Net(**{'width': 2})", UsageError, r"the arguments must be Python literals"),
    ("Net(num_classes=3", UsageError, r"expected py:FILE.py:NAME or py:package.module:NAME"),
])
def test_what_is_wrong_is_one_line(code, name, error, match):
    with pytest.raises(error, match=match):
        _quiet_load(f"{code}:{name}")


def test_arguments_are_never_run_as_code(code, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(UsageError, match="literals"):
        load_model(f"{code}:Net(num_classes=__import__('pathlib').Path({str(marker)!r}).touch())")
    assert not marker.exists()


def test_a_python_file_alone_gets_its_models_listed_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "train.py").write_text(textwrap.dedent(f"""
        import pathlib
        from torch import nn
        pathlib.Path({str(marker)!r}).touch()

        class Config:
            pass

        class ResNetTiny(nn.Module):
            pass

        def make():
            pass
        """))
    with pytest.raises(ModelError, match=r"is Python code: name the class or function in it that builds the model, "
                                         r"as .*train.py:ResNetTiny \(it defines ResNetTiny, make\)"):
        load_model(str(tmp_path / "train.py"))
    assert not marker.exists()


def test_an_error_while_importing_names_the_line_and_edited_code_is_read_again(code):
    source = code.read_text()
    code.write_text("import torch\nraise SystemExit('usage: nets.py DATA')\n")
    with pytest.raises(ModelError, match=r"cannot import .*nets.py \(nets.py line 2\): SystemExit: usage"):
        load_model(f"{code}:Net")
    code.write_text("import torch\n\ndef net(:\n    pass\n")
    with pytest.raises(ModelError, match=r"cannot import .*nets.py \(nets.py line 3\): SyntaxError"):
        load_model(f"{code}:net")
    code.write_text(source.replace("num_classes=10", "num_classes=6"))
    assert _quiet_load(f"{code}:Net").n_classes == 6  # not the module imported before the edit


def test_torchscript_and_exported_programs_load_through_your_code(tmp_path, monkeypatch):
    """attrib never loads a TorchScript or torch.export file itself (loading one can run code); a user who trusts
    one loads it in their own code. Their maps are the eager model's; their weights cannot be re-drawn, which
    is one line rather than the trained weights kept silently."""
    import attrib

    monkeypatch.setattr(sys, "path", list(sys.path))
    torch.manual_seed(0)
    eager = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 14 * 14, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in torch's newest releases
        torch.jit.save(torch.jit.script(eager), tmp_path / "net.ts")
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(eager, (torch.zeros(2, 1, 16, 16),), dynamic_shapes=({0: batch},))
    torch.export.save(program, tmp_path / "net.pt2")
    scripted, exported = repr(str(tmp_path / "net.ts")), repr(str(tmp_path / "net.pt2"))
    (tmp_path / "load.py").write_text(f"import torch\n\ndef scripted():\n    return torch.jit.load({scripted})\n\n"
                                      f"def exported():\n    return torch.export.load({exported}).module()\n")
    x = torch.randn(3, 1, 16, 16)
    expected = attrib.attribute(eager, x, "gradient").values
    for name in ("scripted", "exported"):
        model = _quiet_load(f"{tmp_path / 'load.py'}:{name}", preprocess=["size=16"])
        assert (model.n_classes, model.preprocess.channels) == (3, 1)  # the channels from its first kernel
        assert torch.allclose(attrib.attribute(model.module, x, "gradient").values, expected, atol=1e-6)
        with pytest.raises(ModelError, match="cannot draw random weights for it: none of its layers has "
                                             "reset_parameters"):
            _quiet_load(f"{tmp_path / 'load.py'}:{name}", preprocess=["size=16"], pretrained=False)
    for loader in (torch.jit, torch.export):  # given as a model or weights: refused, never loaded
        monkeypatch.setattr(loader, "load", lambda *a, **k: pytest.fail("a program was loaded"))
    with pytest.raises(ModelError, match=r"net.ts is a TorchScript program, which can run code when it is loaded: "
                                         r"attrib never loads one by itself.*torch.jit.load\('.*net.ts'\)"):
        load_model(str(tmp_path / "net.ts"))
    with pytest.raises(ModelError, match=r"^--weights .*net.pt2 is a torch.export program \(.pt2\), which can run "
                                         r"code.*torch.export.load\('.*net.pt2'\).module\(\)`, and --model load.py"):
        load_model("timm:test_resnet", weights=tmp_path / "net.pt2")


def test_logits_in_a_dict_are_read_and_retrained(code, tmp_path):
    """A model returning {"features": ..., "logits": ...}: explained, its weights loaded, its fresh copies
    trained, all on the logits."""
    import attrib
    from attrib.training import Recipe, init_seeded, train

    model = _quiet_load(f"{code}:Heads")
    assert model.n_classes == 6
    x = torch.randn(3, 3, 12, 12)
    inner = model.module.inner
    with torch.no_grad():
        assert torch.equal(model.module(x), inner(x)["logits"])
    assert attrib.attribute(model.module, x, "gradient").values.shape == x.shape
    torch.save(inner.state_dict(), tmp_path / "heads.pt")
    assert torch.equal(_quiet_load(f"{code}:Heads", weights=tmp_path / "heads.pt").module.inner.head.weight,
                       inner.head.weight)
    fresh = train(init_seeded(model.factory, 0), x, torch.tensor([0, 1, 2]), Recipe(epochs=1, batch_size=3))
    assert fresh(x).shape == (3, 6)


def test_local_files_are_named_absolutely_for_processes_elsewhere(tmp_path, monkeypatch):
    """A cluster worker or a DiffROAR job may run in another folder: the files and folders a spec or option
    names go to them by absolute paths; hub names and other specs as they are."""
    from attrib.jobs.explain import Options
    from attrib.jobs.shipping import ship
    from attrib.models import anchored

    monkeypatch.chdir(tmp_path)
    for name in ("nets.py", "w.pt", "labels.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "clf").mkdir()
    assert anchored("nets.py:Net(num_classes=3)") == f"py:{tmp_path}/nets.py:Net(num_classes=3)"
    assert anchored("py:nets.py:build") == f"py:{tmp_path}/nets.py:build"
    assert (anchored("clf"), anchored("hf:clf"), anchored("folder:clf")) == \
        (f"{tmp_path}/clf", f"hf:{tmp_path}/clf", f"folder:{tmp_path}/clf")
    for same in ("timm:resnet50", "hf:google/vit-base-patch16-224", "py:pkg.nets:build", "missing.pt", None,
                 f"{tmp_path}/w.pt"):
        assert anchored(same) == same
    sent = ship(Options(["a.jpg"], model="clf", weights="w.pt", labels="labels.txt"), lambda files: files).options
    assert (sent.model, sent.weights, sent.labels, sent.inputs) == \
        (f"{tmp_path}/clf", f"{tmp_path}/w.pt", f"{tmp_path}/labels.txt", ["a.jpg"])
