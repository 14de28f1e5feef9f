"""The types every model adapter produces: :class:`Model` and :class:`ModelError` (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.errors import AttribError
from attrib.models.preprocess import Preprocess


class ModelError(AttribError):
    """A model that cannot be resolved or loaded; the message is one line for the user."""


def check_finite(module: torch.nn.Module, name: str) -> None:
    """ModelError when a parameter holds NaN or inf, or a buffer NaN (BatchNorm statistics): the weights of a
    diverged run or a corrupted file, whose every output and attribution would be NaN."""
    bad = [key for key, t in module.named_parameters() if t.is_floating_point() and not bool(t.isfinite().all())]
    bad += [key for key, t in module.named_buffers() if t.is_floating_point() and bool(t.isnan().any())]
    if bad:
        shown = ", ".join(bad[:2]) + (f" and {len(bad) - 2} more" if len(bad) > 2 else "")
        raise ModelError(f"{name} has NaN or infinite weights ({shown}): a diverged training run or a corrupted "
                         "file; its outputs and attributions would be meaningless")


def hub_unreachable(error: BaseException) -> str:
    """For an error that says the Hugging Face hub could not be reached for a file not in the cache, how to be
    told at once: without a network the hub's client retries each file for about 25 s (minutes behind a
    firewall) unless HF_HUB_OFFLINE is set. "" for any other error, or where it is set."""
    if hub_offline() or not out_of_reach(error):
        return ""
    return "; without a network, set HF_HUB_OFFLINE=1 to be told at once rather than after the hub's retries"


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE is set (as the hub's client reads it)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def out_of_reach(error: BaseException) -> bool:
    """Whether an error (or one in its cause chain) says a file is neither in the hub's cache nor fetchable: no
    network, or HF_HUB_OFFLINE set."""
    seen: BaseException | None = error
    for _ in range(20):  # a cause chain, never a loop
        if seen is None:
            return False
        if type(seen).__name__ == "LocalEntryNotFoundError":  # by name: its module moved between hub releases
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class Model:
    """What the rest of attrib sees of a model: a plain module from (B, C, H, W) (kind "image") or (B, D)
    (kind "vector") to logits (B, K).

    Attributes:
        factory: builds a freshly initialised module of the same architecture (DiffROAR's retraining, data
            randomization); None when the spec cannot say how.
        card: what is known of how the model was trained (sample models: data set, recipe, accuracies).
        multi_label: the classes are independent (read through a sigmoid, not a softmax).
        assumed: what the loader had to assume of how the model reads pictures, as no config of it says (a Hugging
            Face folder without its processor, your own model code): warned of as it loads, and kept in the run
            records' warnings (:func:`attrib.jobs.common.assumed_reading`), unless ``--preprocess`` says how.
        weights: the local weights file it was given ({"file", "sha256"}), so that records of runs with other
            weights differ (None: the spec's own weights).
    """

    module: torch.nn.Module
    preprocess: Preprocess | None
    labels: list[str]
    kind: str
    name: str
    factory: Callable[[], torch.nn.Module] | None = None
    card: dict[str, Any] = field(default_factory=dict)
    multi_label: bool = False
    assumed: str = ""
    weights: dict[str, str] | None = None

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def score_kind(self) -> str:
        """How predictions are shown: "softmax", "sigmoid" (multi-label) or "output" (a one-output model)."""
        from attrib.targets import score_kind

        return score_kind(self.n_classes, self.multi_label)

    def outputs_on(self, x: torch.Tensor, what: str = "") -> torch.Tensor:
        """The module's outputs on a couple of ``x``'s rows (no gradient, on the module's device); ModelError
        naming ``what`` and its shape when the model cannot take them (a data set of another size or depth)."""
        device = next((p.device for p in self.module.parameters()), torch.device("cpu"))
        try:
            with torch.no_grad():
                return self.module.eval()(x[:2].to(device))
        except Exception as error:  # noqa: BLE001 - shape errors come in many types
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            reason = reason if len(reason) <= 160 else reason[:160].rsplit(" ", 1)[0] + " …"
            what = f"{what} " if what else ""
            raise ModelError(f"{self.name} cannot take {what}inputs of shape {tuple(x.shape[1:])}: {reason}") from None

    def describe(self) -> dict[str, Any]:
        """The model as run records hold it."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "n_classes": self.n_classes,
                               "scores": self.score_kind}
        if self.preprocess is not None:
            pre = self.preprocess
            out.update(input_size=list(pre.size), mean=list(pre.mean), std=list(pre.std),
                       resize={"crop_pct": pre.crop_pct, "squash": pre.squash, "interpolation": pre.interpolation,
                               "crop_offset": pre.crop_offset})
            if pre.pad:  # only then: earlier runs' records stay equal and their folders resume
                out["resize"]["pad"] = True
            if pre.crop_first:
                out["resize"]["crop_first"] = True
        if self.card:
            out["card"] = self.card
        if self.weights:  # only then: records of runs without --weights stay equal and their folders resume
            out["weights"] = self.weights
        return out
