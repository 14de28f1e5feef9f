"""Image preprocessing as the model's own config describes it: resize, centre-crop, normalise.

``view`` gives the RGB image exactly as the model sees it (resized and cropped, not normalised), so heatmaps
overlay the pixels they explain; ``tensor`` normalises that view into the model's input space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from attrib.errors import UsageError

ENLARGED = 4  # an image enlarged more than this to fill the model's input is warned of (Preprocess.enlarged)
WHOLE_RESIZE_PIXELS = 4_000_000  # above this the crop's region alone is resized (equal to within one 8-bit level)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class Preprocess:
    """Attributes:
        size: (height, width) of the model input.
        crop_pct: the centre crop keeps this fraction of the resized image (timm's convention); 1.0 = no crop.
        mean, std: per-channel normalisation of [0, 1] pixel values.
        interpolation: "bilinear", "bicubic", "nearest" or "lanczos".
        channels: 3 for RGB models, 1 for grayscale.
        squash: resize straight to ``size`` / ``crop_pct`` ignoring the aspect ratio (as many Hugging Face
            processors do), then centre-crop to ``size``.
        crop_offset: "round" places an odd spare pixel of the crop as torchvision (timm) does, "floor" as
            Hugging Face processors do.
        pad: timm's crop_mode "border": the longer side to size / crop_pct keeping the aspect ratio, padded with
            the mean colour to at least ``size``, then centre-cropped to ``size``.
        crop_first: Perceiver's processor: the centre ``crop_pct`` x the shorter side high (and ``size``'s
            aspect wide) is cut out first, then resized to ``size``.
    """

    size: tuple[int, int] = (224, 224)
    crop_pct: float = 0.875
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    channels: int = 3
    squash: bool = False
    crop_offset: str = "round"
    pad: bool = False
    crop_first: bool = False

    def view(self, image: Image.Image) -> Image.Image:
        """Resize (the shorter side to size / crop_pct, or squashed to size / crop_pct), then centre-crop to
        ``size``; sizes are truncated as torchvision (timm) and Hugging Face processors truncate them."""
        image = image.convert("RGB" if self.channels == 3 else "L")
        height, width = self.size
        resample = _RESAMPLE.get(self.interpolation, Image.Resampling.BICUBIC)
        if self.squash and self.crop_pct >= 1:
            return image.resize((width, height), resample)
        if self.pad:
            return self._letterbox(image, resample)
        if self.crop_first:
            cut_h = int(self.crop_pct * min(image.size))
            cut_w = int(cut_h * width / height)
            left, top = (image.width - cut_w) // 2, (image.height - cut_h) // 2
            return image.crop((left, top, left + cut_w, top + cut_h)).resize((width, height), resample)
        if self.squash:
            new = (_floor(width / self.crop_pct), _floor(height / self.crop_pct))
        else:
            short = _floor(max(height, width) / self.crop_pct)
            scale = short / min(image.size)
            new = (short if image.width <= image.height else max(width, int(image.width * scale)),
                   short if image.height < image.width else max(height, int(image.height * scale)))
        left, top = self._offset(new[0] - width), self._offset(new[1] - height)
        if new[0] * new[1] > WHOLE_RESIZE_PIXELS:  # a long strip (a 5000 x 3 panorama would be 426,666 px wide):
            sx, sy = new[0] / image.width, new[1] / image.height  # resize only the part the crop keeps
            box = (left / sx, top / sy, (left + width) / sx, (top + height) / sy)
            return image.resize((width, height), resample, box=box)
        return image.resize(new, resample).crop((left, top, left + width, top + height))

    def _letterbox(self, image: Image.Image, resample) -> Image.Image:
        """timm's "border" mode: resize so that the image fits in size / crop_pct, pad, centre-crop."""
        height, width = self.size
        ratio = max(image.height / _floor(height / self.crop_pct), image.width / _floor(width / self.crop_pct))
        image = image.resize((round(image.width / ratio), round(image.height / ratio)), resample)
        fill = tuple(round(255 * m) for m in self.mean)
        canvas = Image.new(image.mode, (max(width, image.width), max(height, image.height)),
                           fill if image.mode == "RGB" else fill[0])
        canvas.paste(image, ((canvas.width - image.width) // 2, (canvas.height - image.height) // 2))
        left, top = self._offset(canvas.width - width), self._offset(canvas.height - height)
        return canvas.crop((left, top, left + width, top + height))

    def _offset(self, spare: int) -> int:
        return spare // 2 if self.crop_offset == "floor" else int(round(spare / 2.0))

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalisation's mean and std as float32 tensors (C, 1, 1)."""
        return (torch.tensor(self.mean, dtype=torch.float32)[:, None, None],
                torch.tensor(self.std, dtype=torch.float32)[:, None, None])

    def tensor(self, view: Image.Image) -> torch.Tensor:
        """Normalise a view (already resized and cropped) into a (C, H, W) float32 tensor."""
        array = np.asarray(view, dtype=np.float32) / 255.0
        if array.ndim == 2:
            array = array[:, :, None]
        x = torch.from_numpy(array.copy()).permute(2, 0, 1)
        mean, std = self._statistics()
        return (x - mean) / std

    def solid(self, pixel: float) -> torch.Tensor:
        """The model input (C, 1, 1) of a picture whose every pixel is ``pixel`` (in [0, 1]) in each channel."""
        mean, std = self._statistics()
        return (pixel - mean) / std

    def picture(self, x: torch.Tensor) -> Image.Image | None:
        """A (C, H, W) model input as a picture again (what :meth:`tensor` normalised, to 8 bits); None where the
        input has another number of channels than this normalisation's."""
        if x.ndim != 3 or x.shape[0] not in (1, 3) or len(self.mean) not in (1, x.shape[0]):
            return None
        mean, std = self._statistics()
        pixels = ((x.detach().float().cpu() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)
        array = pixels.permute(1, 2, 0).numpy()
        return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)

    def enlargement(self, image_size: tuple[int, int]) -> float:
        """About how many times an image of ``image_size`` (width, height) is enlarged along its more enlarged
        side: its shorter side fills the input (a crop), or each side does (squash), or only the longer one does
        (``pad``: a strip is letterboxed, not enlarged)."""
        height, width = self.size
        scales = (height / max(image_size[1], 1), width / max(image_size[0], 1))
        return min(scales) if self.pad else max(scales)

    def enlarged(self, image_size: tuple[int, int]) -> str | None:
        """What to say of an image so small (a thumbnail, a strip) that the model sees it enlarged over
        :data:`ENLARGED` times (its map is then of the enlargement's blur more than of the picture), else None."""
        factor = self.enlargement(image_size)
        if factor <= ENLARGED:
            return None
        height, width = self.size
        return f"the image is {image_size[0]}x{image_size[1]} px, enlarged {factor:.0f}x to the model's " \
               f"{width}x{height} input"

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.tensor(self.view(image))


def for_channels(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    """RGB statistics (a mean or std) for a model of ``channels`` channels: as they are, or their mean for a
    grayscale one (pretrained configs describe RGB)."""
    return (sum(values) / len(values),) if channels == 1 else tuple(values)


MODES = ("center", "squash", "border")  # timm's crop modes: --preprocess mode=...
PREPROCESS_KEYS = ("size", "crop_pct", "mean", "std", "interpolation", "mode")


def overridden(preprocess: Preprocess, settings: list[str] | tuple[str, ...]) -> Preprocess:
    """``preprocess`` with ``KEY=VALUE`` settings applied (``--preprocess``), for a fine-tune that reads pictures
    otherwise than its architecture's pretrained weights: ``size=384`` (or ``HxW``), ``crop_pct=1``, ``mean=0.5``
    (one value for every channel) or ``mean=0.49,0.48,0.45``, ``std=...``, ``interpolation=bilinear``,
    ``mode=center|squash|border``. A UsageError names a bad setting."""
    changes: dict = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in PREPROCESS_KEYS:
            raise UsageError(f"--preprocess {setting!r}: expected KEY=VALUE, KEY one of {', '.join(PREPROCESS_KEYS)}")
        try:
            changes.update(_setting(preprocess, key, value))
        except ValueError as error:
            why = "not a number" if re.match("invalid literal|could not convert", str(error)) else error
            raise UsageError(f"--preprocess {setting}: {why}") from None
    return replace(preprocess, **changes)


def _setting(preprocess: Preprocess, key: str, value: str) -> dict:
    if key == "size":
        sides = [int(side) for side in value.lower().split("x")]
        if len(sides) not in (1, 2) or min(sides) < 1:
            raise ValueError("a size in pixels, N or HxW")
        if sides[0] * sides[-1] > Image.MAX_IMAGE_PIXELS:  # a typo (size=22400) would fill the memory at once
            raise ValueError(f"at most {Image.MAX_IMAGE_PIXELS:,} pixels, the largest picture attrib reads")
        return {"size": (sides[0], sides[-1])}
    if key == "crop_pct":
        crop = float(value)
        if not 0 < crop <= 1:
            raise ValueError("the share of the resized picture the centre crop keeps, in (0, 1]")
        return {"crop_pct": crop}
    if key in ("mean", "std"):
        values = tuple(float(v) for v in value.split(","))
        values = values * preprocess.channels if len(values) == 1 else values
        if len(values) != preprocess.channels or not np.isfinite(values).all() or (key == "std" and min(values) <= 0):
            raise ValueError(f"one finite number, or one per channel ({preprocess.channels})"
                             + (", each > 0" if key == "std" else ""))
        return {key: values}
    if key == "interpolation":
        if value not in _RESAMPLE:
            raise ValueError(f"one of {', '.join(_RESAMPLE)}")
        return {"interpolation": value}
    if value not in MODES:
        raise ValueError(f"one of {', '.join(MODES)}")
    return {"squash": value == "squash", "pad": value == "border", "crop_first": False}


def _floor(size: float) -> int:
    """floor, as timm and torchvision size a resize, forgiving float error: a crop_pct that is a ratio of two
    sizes (400 -> 224 is 0.56) gives 399.99999999999994 for 400."""
    return int(size + 1e-9)
