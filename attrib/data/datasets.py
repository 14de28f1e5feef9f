"""Data sets named on the command line, loaded whole into tensors (train and test splits).

Names:
    blockdigits           BlockMNIST built offline from scikit-learn's 8x8 digits: 56x28 images, a signal block
                          (the digit, which is the label) and a null block (a fixed 8x8 square), signal on top or
                          bottom with probability 1/2 (Shah, Jain & Netrapalli 2021).
    blockdigits-top       the same with the signal always on top.
    synthetic             the DiffROAR paper's coordinate data: x = (2y - 1) e_j in 10 dimensions, j uniform.
    torchvision:NAME      MNIST, FashionMNIST, CIFAR10 or SVHN (downloaded into --data-dir only when online).
    folder:PATH           an ImageFolder tree (PATH/train + PATH/test, or one tree split 80/20), or a .zip / .tar
                          holding one (read in place), read through the
                          preprocessing given (the evaluated model's: size, crop, normalisation), else at
                          64 x 64 px, squashed, with mean = std = 0.5.

``image_size`` resizes the images of an image set (torchvision, folder) to that side.

Every set is deterministic under its seed. Pixel data are in [0, 1] and normalised by the set's ``preprocess``
(blockdigits and synthetic use the identity, so attack radii are in pixel units).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image

from attrib.errors import AttribError
from attrib.models.preprocess import Preprocess

FOLDER_SIZE = 64  # the side of a folder's images when no model says how to read them
BLOCK = 28
DIGITS = tuple(str(i) for i in range(10))  # the labels of the digit sets
NULL_SQUARE = (10, 18)  # rows and columns [10, 18) of the null block are 1.0, the rest 0
TORCHVISION = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "cifar10": "CIFAR10", "svhn": "SVHN"}
DATASET_NAMES = ("blockdigits", "blockdigits-top", "synthetic", "torchvision:MNIST", "torchvision:FashionMNIST",
                 "torchvision:CIFAR10", "torchvision:SVHN", "folder:PATH")


class DatasetError(AttribError):
    """A data set that cannot be built or loaded; the message is one line for the user."""


@dataclass
class Dataset:
    """Normalised inputs and integer labels for both splits, plus what is needed to rebuild them.

    Attributes:
        null_masks: blockdigits only: split -> bool tensor shaped like the inputs, True on the null block.
        spec: keyword arguments of :func:`load_dataset` that rebuild exactly this set.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    labels: list[str]
    preprocess: Preprocess | None = None
    null_masks: dict[str, torch.Tensor] | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """("train" | "test") -> (inputs, labels)."""
        return (self.train_x, self.train_y) if name == "train" else (self.test_x, self.test_y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def fill_value(self) -> float:
        """The scalar mean of the normalised training data: what masked coordinates are set to."""
        return float(self.train_x.double().mean())

    @cached_property
    def digest(self) -> str:
        """sha256 of both splits' inputs and labels as built (a folder's image edited, the set built otherwise:
        another digest), so that results made from other data are not taken as this data's."""
        made = hashlib.sha256()
        for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
            tensor = tensor.detach().cpu().contiguous()
            made.update(f"{tensor.dtype} {tuple(tensor.shape)}\0".encode())
            made.update(tensor.view(torch.uint8).numpy().data if tensor.numel() else b"")
        return made.hexdigest()


def load_dataset(name: str, *, seed: int = 0, classes: list[int | str] | None = None, data_dir: str | None = None,
                 n_train: int | None = None, n_test: int | None = None, image_size: int | None = None,
                 preprocess: dict[str, Any] | None = None) -> Dataset:
    """Build or load a data set by name (see the module docstring); DatasetError on anything wrong.
    ``preprocess``: how a folder's images are read (a :class:`Preprocess` as a dict, see :func:`read_as`)."""
    spec = dict(name=name, seed=seed, classes=classes, data_dir=data_dir, n_train=n_train, n_test=n_test)
    spec.update({k: v for k, v in (("image_size", image_size), ("preprocess", preprocess)) if v is not None})
    key = name.strip()  # (image_size and preprocess only when given: earlier runs' specs stay equal)
    if image_size is not None and not key.startswith(("torchvision:", "folder:")):
        raise DatasetError(f"{name} is not a set of pictures that can be resized: --image-size applies to "
                           "torchvision:NAME and folder:PATH")
    if image_size is not None and image_size ** 2 > Image.MAX_IMAGE_PIXELS:
        raise DatasetError(f"--image-size {image_size}: at most {Image.MAX_IMAGE_PIXELS:,} pixels, the largest "
                           "picture attrib reads")
    if key in ("blockdigits", "blockdigits-top"):
        classes = None if classes is None else _class_indices(classes, DIGITS, key)
        data = blockdigits(seed=seed, classes=classes, signal_top_only=key.endswith("-top"))
    elif key == "synthetic":
        data = synthetic(seed=seed, n_train=n_train or 2000, n_test=n_test or 1000)
    elif key.startswith("torchvision:"):
        data = _resized(_torchvision(key[12:], data_dir, classes), image_size)
    elif key.startswith("folder:"):
        data = _folder(Path(key[7:]).expanduser(), seed, _folder_preprocess(preprocess, image_size))
    else:
        raise DatasetError(f"unknown data set {name!r}; use one of: {', '.join(DATASET_NAMES)}")
    classes = None if classes is None else _class_indices(classes, data.labels, data.name)
    if classes is not None and len(set(classes)) < 2:
        raise DatasetError(f"classes {classes}: keep at least two (with one class, "
                           "every retrained model is trivially right)")
    unknown = sorted(set(classes or ()) - set(range(len(data.labels))))
    if unknown:
        raise DatasetError(f"{data.name} has classes 0..{len(data.labels) - 1}; "
                           f"{', '.join(map(str, unknown))} {'is not one' if len(unknown) == 1 else 'are not'}")
    data = _subset(data, classes if not key.startswith("blockdigits") else None, n_train, n_test, seed)
    data.spec = spec
    return data


def _class_indices(classes: list[int | str], labels: list[str], name: str) -> list[int]:
    """Class indices for indices or names (matched case-insensitively against the set's labels)."""
    by_name = {label.lower(): i for i, label in reversed(list(enumerate(labels)))}
    out = []
    for c in classes:
        if isinstance(c, str) and c.strip().lower() not in by_name:
            raise DatasetError(f"{name} has no class {c!r}; its classes: {', '.join(labels)}")
        out.append(by_name[c.strip().lower()] if isinstance(c, str) else c)
    return out


def read_as(name: str, preprocess: Preprocess | None) -> dict[str, Any]:
    """The :func:`load_dataset` arguments that read data set ``name`` as a model with ``preprocess`` reads
    pictures: a folder's images through that preprocessing (other sets have their own normalisation)."""
    return {"preprocess": asdict(preprocess)} if preprocess and name.strip().startswith("folder:") else {}


def _folder_preprocess(given: dict[str, Any] | None, size: int | None) -> Preprocess:
    """A folder's preprocessing: the one ``given`` (JSON lists back to tuples), else ``FOLDER_SIZE`` px
    squashed with mean = std = 0.5; ``size`` replaces its side."""
    if given is None:
        base = Preprocess(size=(FOLDER_SIZE,) * 2, crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3, squash=True)
    else:
        base = Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
    return base if size is None else replace(base, size=(size, size))


def _resized(data: Dataset, size: int | None) -> Dataset:
    """The set's pictures resized to ``size`` x ``size`` (bilinear, antialiased; normalising is per-channel
    affine, so resizing the normalised tensors equals normalising the resized pictures)."""
    if size is None:
        return data
    for split in ("train", "test"):
        x = data.split(split)[0]
        resized = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                                                  align_corners=False)
        setattr(data, f"{split}_x", resized)
    data.preprocess = replace(data.preprocess, size=(size, size))
    return data


def blockdigits(*, seed: int = 0, classes: list[int] | None = None, signal_top_only: bool = False,
                test_frac: float = 0.2) -> Dataset:
    """BlockMNIST from scikit-learn's digits: each 8x8 digit upscaled to 20x20 and centred in a 28x28 block."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    y = digits.target.astype(np.int64)
    keep = np.isin(y, classes) if classes else np.ones_like(y, dtype=bool)
    if not keep.any():
        raise DatasetError(f"blockdigits has classes 0..9; none of {classes} is one")
    blocks = _digit_blocks(digits.images[keep] / 16.0)
    rng = np.random.default_rng(seed)
    top = np.ones(len(blocks), dtype=bool) if signal_top_only else rng.random(len(blocks)) < 0.5
    x, null = _stack_blocks(blocks, top)
    indices = np.arange(len(blocks))
    train, test = train_test_split(indices, test_size=test_frac, random_state=seed, stratify=y[keep])
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return Dataset("blockdigits-top" if signal_top_only else "blockdigits", to(x[train]), to(y[keep][train]),
                   to(x[test]), to(y[keep][test]), list(DIGITS), _identity((2 * BLOCK, BLOCK), 1),
                   null_masks={"train": to(null[train]), "test": to(null[test])})


def _digit_blocks(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) in [0, 1] -> (N, 28, 28): bilinear upscaling to 20x20, 4 pixels of margin (as MNIST)."""
    small = torch.from_numpy(images.astype(np.float32))[:, None]
    big = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    return torch.nn.functional.pad(big.clamp(0, 1), (4, 4, 4, 4))[:, 0].numpy()


def _stack_blocks(signal: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 56, 28) with the signal block on top where ``top``, and the null-block masks."""
    null = np.zeros((BLOCK, BLOCK), dtype=np.float32)
    a, b = NULL_SQUARE
    null[a:b, a:b] = 1.0
    n = len(signal)
    x = np.empty((n, 1, 2 * BLOCK, BLOCK), dtype=np.float32)
    mask = np.zeros((n, 1, 2 * BLOCK, BLOCK), dtype=bool)
    x[top, 0, :BLOCK], x[top, 0, BLOCK:] = signal[top], null
    x[~top, 0, :BLOCK], x[~top, 0, BLOCK:] = null, signal[~top]
    mask[top, 0, BLOCK:], mask[~top, 0, :BLOCK] = True, True
    return x, mask


def synthetic(*, seed: int = 0, n_train: int = 2000, n_test: int = 1000, dim: int = 10) -> Dataset:
    """x = (2y - 1) e_j, j = 0 with probability 1/d, else uniform among the rest (so j is uniform).

    Each split has exactly balanced labels (in shuffled order), so the training mean is exactly 0 and a masked
    coordinate (set to that mean) is indistinguishable from a kept zero: masks cannot leak the label.
    """
    rng = np.random.default_rng(seed)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = rng.permutation(np.arange(n) % 2)
        j = np.where(rng.random(n) < 1 / dim, 0, rng.integers(1, dim, n))
        x = np.zeros((n, dim), dtype=np.float32)
        x[np.arange(n), j] = 2.0 * y - 1.0
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    (train_x, train_y), (test_x, test_y) = draw(n_train), draw(n_test)
    return Dataset("synthetic", train_x, train_y, test_x, test_y, ["negative", "positive"])


def _identity(size: tuple[int, int], channels: int) -> Preprocess:
    return Preprocess(size=size, crop_pct=1.0, mean=(0.0,) * channels, std=(1.0,) * channels,
                      interpolation="bilinear", channels=channels, squash=True)


def _subset(data: Dataset, classes: list[int] | None, n_train: int | None, n_test: int | None,
            seed: int) -> Dataset:
    """Keep the given classes, then the first n (after a seeded shuffle) of each split."""
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = data.split(split)
        keep = torch.isin(y, torch.tensor(classes)) if classes else torch.ones_like(y, dtype=torch.bool)
        index = keep.nonzero()[:, 0]
        if n is not None and n < len(index):
            order = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))
            index = index[order[:n]].sort().values
        if len(index) == 0:
            raise DatasetError(f"{data.name}: no {split} examples left with classes {classes}")
        setattr(data, f"{split}_x", x[index])
        setattr(data, f"{split}_y", y[index])
        if data.null_masks is not None:
            data.null_masks[split] = data.null_masks[split][index]
    return data


_STATS = {"MNIST": ((0.1307,), (0.3081,)), "FashionMNIST": ((0.2860,), (0.3530,)),
          "CIFAR10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
          "SVHN": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))}


def _torchvision(name: str, data_dir: str | None, classes: list[int] | None) -> Dataset:
    """A torchvision data set as tensors; downloads only into ``data_dir`` (or ~/.cache/attrib/data)."""
    canonical = TORCHVISION.get(name.lower())
    if canonical is None:
        raise DatasetError(f"unknown torchvision data set {name!r}; use one of: {', '.join(TORCHVISION.values())}")
    root = Path(data_dir or Path.home() / ".cache" / "attrib" / "data").expanduser()
    splits = [_torchvision_split(canonical, root, train) for train in (True, False)]
    mean, std = _STATS[canonical]
    preprocess = Preprocess(size=tuple(splits[0][0].shape[2:]), crop_pct=1.0, mean=mean, std=std,
                            interpolation="bilinear", channels=len(mean), squash=True)
    norm = lambda x: (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]  # noqa: E731
    labels = _torchvision_labels(canonical)
    (tx, ty), (vx, vy) = splits
    return Dataset(f"torchvision:{canonical}", norm(tx), ty, norm(vx), vy, labels, preprocess)


def _torchvision_split(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    kwargs = {"split": "train" if train else "test"} if name == "SVHN" else {"train": train}
    try:
        try:
            ds = cls(str(root), download=False, **kwargs)
        except (RuntimeError, FileNotFoundError):
            ds = cls(str(root), download=True, **kwargs)
    except Exception as error:  # network errors come in many types
        raise DatasetError(f"cannot load torchvision {name} from {root} and cannot download it "
                           f"({type(error).__name__}); download it where you have a network and pass "
                           f"--data-dir FOLDER") from None
    data = ds.data
    data = torch.as_tensor(np.asarray(data))
    if data.ndim == 3:
        data = data[:, None]
    elif data.shape[-1] == 3:
        data = data.permute(0, 3, 1, 2)
    targets = getattr(ds, "targets", None)
    targets = getattr(ds, "labels") if targets is None else targets
    return data.float().div(255.0).contiguous(), torch.as_tensor(np.asarray(targets), dtype=torch.long)


def _torchvision_labels(name: str) -> list[str]:
    if name == "CIFAR10":
        return ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    if name == "FashionMNIST":
        return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                "Ankle boot"]
    return list(DIGITS)


def _folder(root: Path, seed: int, preprocess: Preprocess) -> Dataset:
    """An ImageFolder tree, or a .zip / .tar holding one, read through ``preprocess`` (image files only; hidden
    files and folders, as .ipynb_checkpoints/, are no class and no example); unreadable images are left out, each
    with its one-line reason in ``skipped``."""
    from attrib.data.archives import is_archive
    from attrib.data.images import InputError

    classes, parts, skipped = _archive_tree(root) if is_archive(root) and root.is_file() else _folder_tree(root)
    tensors = []
    for where, by_class in parts:
        xs, ys = [], []
        for label, name in enumerate(classes):
            for load in by_class.get(name, []):
                try:
                    xs.append(preprocess(load()))
                    ys.append(label)
                except InputError as error:
                    skipped.append(str(error))
        if not xs:
            raise DatasetError(f"{where} holds no readable images")
        tensors.append((torch.stack(xs), torch.tensor(ys)))
    if len(tensors) == 1:
        tensors = _split(*tensors[0], seed)
    (tx, ty), (vx, vy) = tensors
    return Dataset(f"folder:{root}", tx, ty, vx, vy, classes, preprocess, skipped=skipped)


Tree = tuple[list[str], list[tuple[str, dict[str, list[Callable[[], Any]]]]], list[str]]  # classes, parts, skipped


def _folder_tree(root: Path) -> Tree:
    """The classes (sorted class folders of ``root/train``, or of ``root``) and, for each part (train and test, or
    the whole tree), each class's image loaders."""
    from attrib.data.images import image_files, load_image

    if not root.is_dir():
        raise DatasetError(f"folder data set {root} does not exist or is not a folder (or a .zip / .tar of one)")
    parts = [root / "train", root / "test"] if (root / "train").is_dir() and (root / "test").is_dir() else [root]
    classes = sorted(p.name for p in parts[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{parts[0]} has no class subfolders (expected FOLDER/CLASS/image.png)")
    return classes, [(str(part), {name: [partial(load_image, str(path)) for path in image_files(part / name)]
                                  for name in classes if (part / name).is_dir()}) for part in parts], []


def _archive_tree(path: Path) -> Tree:
    """:func:`_folder_tree` of the tree inside a .zip or .tar (as Kaggle ships its data sets), read in place; a
    single folder that holds the whole tree (``flowers.zip``'s ``flowers/``) is looked through."""
    from attrib.data.archives import ArchiveError, archive_members
    from attrib.data.images import IMAGE_SUFFIXES, member_source

    try:
        members, cut = archive_members(path, IMAGE_SUFFIXES)
    except ArchiveError as error:
        raise DatasetError(f"folder data set {path}: {error}") from None
    files = [(PurePosixPath(member).parts, read) for member, read in members]
    while files and len({parts[0] for parts, _ in files}) == 1 and all(len(parts) > 2 for parts, _ in files) \
            and files[0][0][0] not in ("train", "test"):
        files = [(parts[1:], read) for parts, read in files]
    tops = {parts[0] for parts, _ in files if len(parts) > 2}
    splits = ["train", "test"] if {"train", "test"} <= tops else [None]
    by_part: dict[str | None, dict[str, list[Callable[[], Any]]]] = {split: {} for split in splits}
    for parts, read in files:
        split, rest = (parts[0], parts[1:]) if splits[0] else (None, parts)
        if split in by_part and len(rest) > 1:
            by_part[split].setdefault(rest[0], []).append(member_source(f"{path}/{'/'.join(parts)}", read).load)
    classes = sorted(by_part[splits[0]])
    if not classes:
        raise DatasetError(f"{path} has no class folders (expected CLASS/image.png inside it)")
    where = [f"{path}/{split}" if split else str(path) for split in splits]
    return classes, list(zip(where, by_part.values())), [f"{path}: {cut}"] if cut else []


def _split(x: torch.Tensor, y: torch.Tensor, seed: int, test_frac: float = 0.2):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = max(1, round(test_frac * len(y)))
    return (x[order[n_test:]], y[order[n_test:]]), (x[order[:n_test]], y[order[:n_test]])
