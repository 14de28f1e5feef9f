"""Checkpoints whose other objects weights_only refuses (Lightning's hyper-parameters, paths, configs, a whole
pickled model) give their tensors, the objects read as inert records: never resolved, never run."""

import pathlib
import sys

import pytest
import torch

from attrib.models import ModelError, load_model
from attrib.models.checkpoint import read_state_dict
from attrib.models.inert import Record

LIGHTNING = '''
class AttributeDict(dict):  # lightning.fabric.utilities.data's: a dict subclass, pickled with SETITEMS
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as missing:  # as Lightning's does: pickle asks Python 3.10 for __getstate__ this way
            raise AttributeError(key) from missing


class Config:  # an object with state, as omegaconf's DictConfig is pickled
    def __init__(self, **values):
        self.values = values


class Steps(list):  # a list subclass, pickled with APPENDS
    pass


def schedule(step):
    raise AssertionError("ran")
'''


@pytest.fixture
def saved_by_a_library(tmp_path, monkeypatch):
    """Objects of classes from a library that is not installed where attrib reads the checkpoint: the module
    exists while saving, and is gone (from sys.modules and the path) while loading."""
    library = tmp_path / "lib" / "fakelightning"
    library.mkdir(parents=True)
    (library / "__init__.py").write_text(LIGHTNING)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    import fakelightning

    yield fakelightning
    sys.modules.pop("fakelightning", None)


def _forget(module):
    sys.modules.pop(module.__name__, None)
    sys.path[:] = [p for p in sys.path if not p.endswith("lib")]


def test_a_lightning_checkpoint_gives_its_weights(tmp_path, saved_by_a_library):
    import timm

    lib = saved_by_a_library
    source = timm.create_model("test_resnet", num_classes=3)
    hparams = lib.AttributeDict(lr=0.1, data=pathlib.PurePosixPath("/data/x"), config=lib.Config(depth=3),
                                milestones=lib.Steps([3, 6]), schedule=lib.schedule)
    torch.save({"epoch": 9, "global_step": 900, "pytorch-lightning_version": "2.4.0",
                "state_dict": {f"model.{k}": v for k, v in source.state_dict().items()},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}], "hyper_parameters": hparams},
               tmp_path / "epoch=9-step=900.ckpt")
    _forget(lib)
    model = load_model("timm:test_resnet", weights=tmp_path / "epoch=9-step=900.ckpt")
    assert model.n_classes == 3
    assert all(torch.equal(a, b) for a, b in zip(model.module.state_dict().values(), source.state_dict().values()))


def test_objects_are_records_of_their_data(tmp_path, saved_by_a_library):
    lib = saved_by_a_library
    torch.save({"state_dict": {"w": torch.ones(2)}, "h": lib.AttributeDict(a=1), "c": lib.Config(depth=3),
                "s": lib.Steps([1, 2]), "f": lib.schedule}, tmp_path / "c.pt")
    _forget(lib)
    from attrib.models import checkpoint

    read = checkpoint._load(tmp_path / "c.pt")
    assert read["h"] == {"a": 1} and read["s"] == [1, 2]  # a dict's and a list's subclasses: plain, items kept
    assert isinstance(read["c"], Record) and read["c"].state == {"values": {"depth": 3}}
    assert isinstance(read["f"], type) and issubclass(read["f"], Record)  # the function: named, never called
    assert torch.equal(read_state_dict(tmp_path / "c.pt")["w"], torch.ones(2))


def test_a_whole_pickled_model_gives_its_state_dict(tmp_path):
    """torch.save(model): its parameters and persistent buffers (BatchNorm's statistics), not its
    non-persistent ones."""
    import timm

    source = timm.create_model("test_resnet", num_classes=4).eval()
    source.register_buffer("scratch", torch.zeros(1), persistent=False)
    with torch.no_grad():
        source(torch.randn(2, 3, 32, 32))  # nothing changes in eval; the statistics are the init's
    torch.save(source, tmp_path / "whole.pt")
    state = read_state_dict(tmp_path / "whole.pt")
    assert sorted(state) == sorted(source.state_dict()) and "scratch" not in state
    model = load_model("timm:test_resnet", weights=tmp_path / "whole.pt")
    assert all(torch.equal(a, b) for a, b in zip(model.module.state_dict().values(), source.state_dict().values()))


def test_code_from_the_blocked_modules_is_still_refused(tmp_path):
    import subprocess

    class Shell:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(tmp_path / "ran")],))

    torch.save({"state_dict": {"w": torch.ones(1)}, "x": Shell()}, tmp_path / "shell.pt")
    read_state_dict(tmp_path / "shell.pt")  # subprocess.call: a record, never called
    assert not (tmp_path / "ran").exists()
    import os

    class System:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"state_dict": {"w": torch.ones(1)}, "x": System()}, tmp_path / "system.pt")
    with pytest.raises(ModelError, match="pickled code calling (posix|nt).system"):
        read_state_dict(tmp_path / "system.pt")
    assert not (tmp_path / "ran").exists()


def test_a_stand_in_filled_in_as_a_dict_is_found_from_either_refusal():
    """Newer torch refuses items set on a stand-in naming its class in full; torch 2.6 sets them regardless, and
    Python's TypeError names only the class's own name, which must name one stand-in to be acted on."""
    from attrib.models.inert import MODULE, _filled_in

    kinds = {"lightning.fabric.utilities.data.AttributeDict": Record, "pathlib.PosixPath": Record}
    newer = __import__("pickle").UnpicklingError(
        f"Can only SETITEM for dict, but got <class '{MODULE}.lightning.fabric.utilities.data.AttributeDict'>")
    older = TypeError("'AttributeDict' object does not support item assignment")
    assert _filled_in(newer, kinds) == _filled_in(older, kinds) == "lightning.fabric.utilities.data.AttributeDict"
    assert _filled_in(older, {**kinds, "other.AttributeDict": Record}) is None  # two stand-ins of that name
    assert _filled_in(older, {**kinds, "lightning.fabric.utilities.data.AttributeDict": dict}) is None  # done
    assert _filled_in(TypeError("unsupported operand"), kinds) is None
