"""The ``attrib`` command line. Commands live in their own modules and import torch only when they run."""

from __future__ import annotations

import click

from attrib import __version__

EPILOG = """\b
Examples:
  attrib explain                           explain the built-in sample images with IG
  attrib explain photo.jpg -m ig -m smoothgrad --html report.html
  attrib explain photos/ -M timm:resnet50 --target "tabby cat"
  attrib explain-text "a great film" -M ./sst2-classifier --lm bert-base-uncased
  attrib diffroar -M sample:blockdigits-robust   evaluate methods by remove-and-retrain
  attrib sanity -M sample:blockdigits-standard    do the maps depend on the model? survive noise?
  attrib sanity-text "a great film" -M ./sst2-classifier -m unk -m ig   ... a text classifier's word scores?
  attrib report attrib-runs/<time> -o report.html
  attrib methods                           list methods, options and costs
  attrib models                            list model kinds and sample models
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="attrib")
def main() -> None:
    """Explain why an image or text classifier made a prediction, and check whether the explanation deserves trust."""


def _register() -> None:
    from attrib.cli.diffroar import diffroar
    from attrib.cli.explain import explain
    from attrib.cli.explain_text import explain_text
    from attrib.cli.listing import methods, models
    from attrib.cli.report import report
    from attrib.cli.sanity import sanity, sanity_text

    for command in (explain, explain_text, diffroar, sanity, sanity_text, report, methods, models):
        main.add_command(command)


_register()
