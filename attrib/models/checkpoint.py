"""Loading local weights safely: .pt/.pth with ``weights_only=True``, or .safetensors."""

from __future__ import annotations

from pathlib import Path

import torch

from attrib.errors import first_line
from attrib.models.base import ModelError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, never executing pickled code; ModelError with one line on failure."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any decoding failure is a malformed file for the user
        raise ModelError(f"cannot read weights {path}: {first_line(error)}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"weights {path} do not hold a state dict of tensors")
    return state


def load_state_dict(module: torch.nn.Module, path: str | Path) -> None:
    """Load a file's state dict into ``module`` strictly; a mismatch is one ModelError line."""
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        text = str(error).replace("\n", " ").replace("\t", "")
        raise ModelError(f"weights {path} do not fit the model: {text[:300]}") from None
