"""Reference sets for Expected Gradients.

The default, used when no ``--background DIR`` is given: the four built-in sample images as the model sees
them, their blurred copies (Gaussian, sigma = 10% of the image side) and four images of uniform pixel noise
(seeded) — 12 references. Never the explained image alone, which would give all-zero attributions.
"""

from __future__ import annotations

import hashlib

import torch
from PIL import Image

from attrib.data.images import InputError, expand_inputs, load_sample, SAMPLE_NAMES
from attrib.errors import counted
from attrib.methods.baselines import gaussian_blur
from attrib.models.preprocess import Preprocess
from attrib.rng import Stream, generator

DEFAULT_DESCRIPTION = ("built-in: 4 sample images (chelsea, coffee, rocket, astronaut), their blurred copies "
                       "and 4 uniform-noise images")


def default_background(preprocess: Preprocess, seed: int = 0) -> tuple[torch.Tensor, str]:
    """The default reference set (see the module docstring) and its description."""
    samples = torch.stack([preprocess(load_sample(name)) for name in SAMPLE_NAMES])
    blurred = gaussian_blur(samples, 0.1 * max(preprocess.size))
    height, width = preprocess.size
    noise = []
    for i in range(len(SAMPLE_NAMES)):
        pixels = torch.randint(0, 256, (height, width, preprocess.channels), generator=generator(seed, Stream.BACKGROUND_NOISE, i),
                               dtype=torch.uint8)
        noise.append(preprocess.tensor(Image.fromarray(pixels.squeeze(-1).numpy())))
    return torch.cat([samples, blurred, torch.stack(noise)]), DEFAULT_DESCRIPTION


def folder_background(folder: str, preprocess: Preprocess) -> tuple[torch.Tensor, str]:
    """Every image under ``folder``, preprocessed; one InputError counting the unreadable ones and naming the
    first (a reference set is not silently changed: the user fixes or removes them)."""
    sources = expand_inputs([folder])
    images, bad = [], []
    for source in sources:
        try:
            images.append(preprocess(source.load()))
        except InputError as error:
            bad.append(str(error))
    if bad and len(sources) == 1:  # one file, or a folder without images
        raise InputError(f"background {bad[0]}")
    if bad:
        raise InputError(f"background {folder}: {len(bad)} of {len(sources)} files cannot be read, e.g. {bad[0]}; "
                         "fix or remove them")
    if not images:
        raise InputError(f"{folder}: no background images")
    stacked = torch.stack(images)  # its digest in the description: other pictures under the same name are another set
    digest = hashlib.sha256(stacked.numpy().tobytes()).hexdigest()[:12]
    return stacked, f"{counted(len(images), 'image')} from {folder} (sha256 {digest})"
