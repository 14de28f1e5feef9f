"""``attrib report RUN_DIR -o report.html``: render a run folder, recomputing nothing."""

from __future__ import annotations

import click

from attrib.cli.ui import UI


EPILOG = """\b
Examples:
  attrib report attrib-runs/20261127-101500 -o report.html
  attrib explain photos/ --out run1 && attrib report run1 -o run1.html"""


@click.command(epilog=EPILOG)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output", "-o", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the HTML file.")
@click.option("--max-inputs", default=200, show_default=True, type=click.IntRange(0),
              help="Explain runs: inputs shown (0: all); the rest stay in the run folder.")
@click.option("--quiet", "-q", is_flag=True)
def report(run_dir: str, output: str, max_inputs: int, quiet: bool) -> None:
    """Write one self-contained HTML report for a run folder."""
    from attrib.errors import AttribError
    from attrib.report.html import write_report

    ui = UI(quiet=quiet)
    try:
        write_report(run_dir, output, max_inputs or None)
    except AttribError as error:
        raise click.UsageError(str(error)) from None
    ui.info(f"wrote {output}")
