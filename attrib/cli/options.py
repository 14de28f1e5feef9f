"""Click options shared by the image commands."""

from __future__ import annotations

import click

MODEL_HELP = "timm:NAME, hf:ORG/NAME, a local HF folder, sample:NAME; default: embedded EfficientNet-Lite0."


def model_options(command):
    """--model/-M SPEC, --weights FILE, --no-pretrained."""
    for option in reversed((
            click.option("--model", "-M", "model_spec", default=None, metavar="SPEC", help=MODEL_HELP),
            click.option("--weights", type=click.Path(dir_okay=False),
                         help="Local state dict (.pt/.pth/.safetensors)."),
            click.option("--no-pretrained", is_flag=True, help="timm: random weights instead of downloading."))):
        command = option(command)
    return command
