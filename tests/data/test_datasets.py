"""Data sets: blockdigits layout and determinism, synthetic's definition, torchvision offline, image folders."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from attrib.data.datasets import BLOCK, NULL_SQUARE, DatasetError, load_dataset


def _null_block() -> torch.Tensor:
    block = torch.zeros(BLOCK, BLOCK)
    a, b = NULL_SQUARE
    block[a:b, a:b] = 1.0
    return block


def test_blockdigits_layout_signal_and_null_blocks():
    data = load_dataset("blockdigits")
    assert data.input_shape == (1, 56, 28)
    assert len(data.train_y) + len(data.test_y) == 1797 and set(data.test_y.tolist()) == set(range(10))
    for split in ("train", "test"):
        x, _ = data.split(split)
        mask = data.null_masks[split]
        assert mask.shape == x.shape and mask.flatten(1).sum(1).eq(BLOCK * BLOCK).all()
        null_top = mask[:, 0, 0, 0]
        nulls = torch.where(null_top[:, None, None], x[:, 0, :BLOCK], x[:, 0, BLOCK:])
        assert torch.equal(nulls, _null_block().expand_as(nulls))  # the null block is the fixed patch
        signal = torch.where(null_top[:, None, None], x[:, 0, BLOCK:], x[:, 0, :BLOCK])
        assert signal.flatten(1).sum(1).gt(5).all()  # every signal block holds a digit
    share_top = (~data.null_masks["train"][:, 0, 0, 0]).float().mean()
    assert 0.45 < share_top < 0.55
    assert float(data.train_x.min()) >= 0 and float(data.train_x.max()) <= 1


def test_blockdigits_is_deterministic_under_its_seed():
    a, b, c = load_dataset("blockdigits"), load_dataset("blockdigits"), load_dataset("blockdigits", seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_a_data_sets_digest_is_of_its_tensors():
    digest = load_dataset("synthetic", n_train=50, n_test=20).digest
    assert load_dataset("synthetic", n_train=50, n_test=20).digest == digest  # built again: the same
    assert load_dataset("synthetic", seed=1, n_train=50, n_test=20).digest != digest
    data = load_dataset("synthetic", n_train=50, n_test=20)
    data.test_x[3, 2] += 1e-6  # one coordinate of one example
    assert dataclasses.replace(data).digest != digest
    data = load_dataset("synthetic", n_train=50, n_test=20)
    data.train_y = data.train_y.to(torch.int32)  # the same values, stored otherwise
    assert dataclasses.replace(data).digest != digest


def test_blockdigits_top_and_class_subset():
    data = load_dataset("blockdigits-top", classes=[0, 1])
    assert set(data.train_y.tolist()) == {0, 1} and set(data.test_y.tolist()) == {0, 1}
    assert data.null_masks["train"][:, 0, BLOCK:].all() and not data.null_masks["train"][:, 0, :BLOCK].any()
    assert 300 < len(data.train_y) + len(data.test_y) < 400
    with pytest.raises(DatasetError, match="classes 0..9"):
        load_dataset("blockdigits", classes=[11])
    with pytest.raises(DatasetError, match="blockdigits has classes 0..9; 42 is not one"):
        load_dataset("blockdigits", classes=[0, 42])  # one real class does not hide a typo
    with pytest.raises(DatasetError, match="synthetic has classes 0..1; 2, 5 are not"):
        load_dataset("synthetic", classes=[1, 2, 5], n_train=20, n_test=10)
    with pytest.raises(DatasetError, match=r"classes \[3, 3\]: keep at least two"):
        load_dataset("blockdigits", classes=[3, 3])


def test_synthetic_is_the_papers_coordinate_data():
    data = load_dataset("synthetic", n_train=1000, n_test=500)
    for x, y in (data.split("train"), data.split("test")):
        assert x.shape[1] == 10 and x.ne(0).sum(1).eq(1).all()
        assert torch.equal(x.sum(1), 2.0 * y - 1)  # x = (2y - 1) e_j
        assert y.float().mean() == 0.5  # exactly balanced
    assert data.fill_value() == 0.0  # so a masked coordinate looks exactly like a kept zero
    j = data.train_x.abs().argmax(1)
    counts = torch.bincount(j, minlength=10).float() / len(j)
    assert counts.min() > 0.06 and counts.max() < 0.14  # j uniform over the 10 coordinates


def test_unknown_dataset_lists_the_names():
    with pytest.raises(DatasetError, match="blockdigits.*synthetic.*torchvision:MNIST"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="MNIST, FashionMNIST, CIFAR10, SVHN"):
        load_dataset("torchvision:STL10")


class _Offline:
    def __init__(self, root, download=False, **kwargs):
        raise RuntimeError("Dataset not found.") if not download else OSError("network is unreachable")


class _Cached:
    def __init__(self, root, download=False, train=True):
        n = 6 if train else 4
        self.data = torch.arange(n * 28 * 28, dtype=torch.float32).reshape(n, 28, 28).remainder(256).to(torch.uint8)
        self.targets = torch.arange(n) % 10


def test_torchvision_offline_names_data_dir(monkeypatch, tmp_path):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", _Offline)
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("torchvision:mnist", data_dir=str(tmp_path))


def test_torchvision_tensors_are_normalised(monkeypatch, tmp_path):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", _Cached)
    data = load_dataset("torchvision:MNIST", data_dir=str(tmp_path))
    assert data.train_x.shape == (6, 1, 28, 28) and data.test_x.shape == (4, 1, 28, 28)
    raw = _Cached(None).data[:, None].float() / 255
    assert torch.allclose(data.train_x, (raw - 0.1307) / 0.3081)


def test_folder_dataset_splits_and_skips_bad_files(tmp_path):
    for label, colour in (("cat", (200, 0, 0)), ("dog", (0, 0, 200))):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (40, 30), colour).save(tmp_path / label / f"{i}.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image file: not read")
    (tmp_path / ".ipynb_checkpoints").mkdir()  # hidden: no class, and no examples
    (tmp_path / "dog" / "._0.png").write_bytes(b"a macOS resource fork")
    Image.new("RGB", (40, 30)).save(tmp_path / ".ipynb_checkpoints" / "0.png")
    data = load_dataset(f"folder:{tmp_path}", seed=3)
    assert data.labels == ["cat", "dog"] and len(data.train_y) + len(data.test_y) == 10
    assert data.train_x.shape[1:] == (3, 64, 64) and len(data.test_y) == 2
    assert len(data.skipped) == 1 and "broken.png: not an image" in data.skipped[0]
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_a_folder_data_set_in_a_zip_or_tar_is_read_in_place(tmp_path):
    """Kaggle ships its image sets as zips (often one folder holding the tree); `--dataset folder:set.zip` said
    it was not a folder, and the user had to extract thousands of files first."""
    import tarfile
    import zipfile

    rng = np.random.default_rng(0)
    tree = tmp_path / "tree"
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            (tree / "flowers" / split / label).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(
                    tree / "flowers" / split / label / f"{i}.png")
    (tree / "flowers" / "train" / "dog" / "bad.png").write_bytes(b"not a png")
    with zipfile.ZipFile(tmp_path / "set.zip", "w") as archive:  # one folder wrapping the tree, and macOS's extras
        for path in sorted(tree.rglob("*.png")):
            archive.write(path, str(path.relative_to(tree)))
        archive.writestr("__MACOSX/flowers/train/cat/._0.png", b"resource fork")
    with tarfile.open(tmp_path / "whole.tar", "w") as archive:  # no split: the whole tree, split 80/20
        archive.add(tree / "flowers" / "train", "pets")
    folder = load_dataset(f"folder:{tree / 'flowers'}")
    for name in ("set.zip", "whole.tar"):
        data = load_dataset(f"folder:{tmp_path / name}")
        assert data.labels == ["cat", "dog"] and len(data.skipped) == 1 and "bad.png: not an image" in data.skipped[0]
    zipped = load_dataset(f"folder:{tmp_path / 'set.zip'}")
    for split in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(zipped, split), getattr(folder, split))
    assert len(load_dataset(f"folder:{tmp_path / 'whole.tar'}").test_y) == 1  # 6 readable images, 20% of them
    (tmp_path / "flat.zip").write_bytes((tmp_path / "set.zip").read_bytes()[:100])
    with pytest.raises(DatasetError, match=r"^folder data set \S+flat.zip: not a readable .zip archive"):
        load_dataset(f"folder:{tmp_path / 'flat.zip'}")


def test_a_folder_is_read_as_the_model_reads_pictures_and_resized_on_request(tmp_path):
    """A folder was read at 64 px with mean = std = 0.5 whatever the model: a ViT could not take it, and a
    pretrained model saw other pixels than it was trained on."""
    from dataclasses import asdict

    from attrib.data.datasets import read_as
    from attrib.data.images import load_image
    from attrib.models.preprocess import Preprocess

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    model = Preprocess(size=(24, 24), crop_pct=0.875, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4))
    spec = read_as(f"folder:{tmp_path}", model)
    assert spec == {"preprocess": asdict(model)} and read_as("blockdigits", model) == {}
    assert read_as(f"folder:{tmp_path}", None) == {}
    data = load_dataset(f"folder:{tmp_path}", **json.loads(json.dumps(spec)))  # as a job file carries it
    assert data.preprocess == model and data.train_x.shape[1:] == (3, 24, 24)
    every = torch.cat([data.train_x, data.test_x])
    assert any(torch.allclose(x, model(load_image(str(tmp_path / "a" / "0.png")))) for x in every)
    assert load_dataset(f"folder:{tmp_path}", image_size=40, **spec).train_x.shape[1:] == (3, 40, 40)
    assert load_dataset(f"folder:{tmp_path}", image_size=12).train_x.shape[1:] == (3, 12, 12)
    with pytest.raises(DatasetError, match=r"^blockdigits is not a set of pictures that can be resized"):
        load_dataset("blockdigits", image_size=32)
    with pytest.raises(DatasetError, match=r"^--image-size 10000: at most 89,478,485 pixels"):  # not 1.2 GB a picture
        load_dataset(f"folder:{tmp_path}", image_size=10000)


def test_a_torchvision_set_is_resized_as_its_pictures_would_be(monkeypatch, tmp_path):
    """Normalising is per-channel affine, so resizing the normalised tensors equals normalising the resized
    pictures; a constant picture stays constant."""
    import attrib.data.datasets as datasets

    monkeypatch.setattr(datasets, "_torchvision_split", lambda name, root, train: (
        torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(int(train))), torch.arange(4) % 2))
    small = load_dataset("torchvision:CIFAR10", data_dir=str(tmp_path))
    big = load_dataset("torchvision:CIFAR10", data_dir=str(tmp_path), image_size=56)
    assert big.train_x.shape == (4, 3, 56, 56) and big.preprocess.size == (56, 56)
    mean, std = torch.tensor(datasets._STATS["CIFAR10"][0]), torch.tensor(datasets._STATS["CIFAR10"][1])
    raw = small.train_x * std[:, None, None] + mean[:, None, None]
    resized = torch.nn.functional.interpolate(raw, size=(56, 56), mode="bilinear", antialias=True)
    assert torch.allclose(big.train_x, (resized - mean[:, None, None]) / std[:, None, None], atol=1e-5)


def test_classes_by_name_or_index(tmp_path):
    """--classes took indices only: a folder's classes are numbered in the sorted order of their names, which
    the user had to work out."""
    for label in ("zebra", "ant", "cat"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(tmp_path / label / f"{i}.png")
    data = load_dataset(f"folder:{tmp_path}", classes=["Zebra", 0])
    assert data.labels == ["ant", "cat", "zebra"] and set(data.train_y.tolist()) | set(data.test_y.tolist()) == {0, 2}
    assert data.spec["classes"] == ["Zebra", 0]  # as given: a job file rebuilds the same set
    assert set(load_dataset("blockdigits", classes=["3", 5]).train_y.tolist()) == {3, 5}
    with pytest.raises(DatasetError, match=r"^folder:.* has no class 'dog'; its classes: ant, cat, zebra$"):
        load_dataset(f"folder:{tmp_path}", classes=["dog", "cat"])


def test_subset_sizes_are_seeded():
    a = load_dataset("blockdigits", n_train=100, n_test=50)
    b = load_dataset("blockdigits", n_train=100, n_test=50)
    assert len(a.train_y) == 100 and len(a.test_y) == 50 and torch.equal(a.train_x, b.train_x)
    assert a.null_masks["train"].shape[0] == 100
    assert np.isclose(a.fill_value(), float(a.train_x.double().mean()))
