"""``attrib report RUN_DIR -o report.html``: render a run folder, recomputing nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from attrib.cli.common import (Command, check_html_name, check_not_in_run, check_replaceable, check_writable,
                               signals_as_interrupt, stopped_by)
from attrib.cli.ui import UI

STDOUT = "-"  # -o - / --png -: write to standard output

EPILOG = """\b
Examples:
  attrib report attrib-runs/20261127-101500 -o report.html
  attrib explain photos/ --out run1 && attrib report run1 -o run1.html
  attrib report run1 --png overview.png            the contact sheet only (inputs x methods)
  attrib report run1 -o - | gzip > run1.html.gz    the report on standard output"""


@click.command(cls=Command, epilog=EPILOG)
@click.argument("run_dir", type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Where to write the HTML file ('-': standard output) [default: report.html, unless only --png is "
                   "asked for].")
@click.option("--png", "png_path", type=click.Path(dir_okay=False),
              help="Explain runs: also write the contact sheet (inputs x methods) here ('-': standard output).")
@click.option("--max-inputs", default=200, show_default=True, type=click.IntRange(0),
              help="Explain and explain-text runs: inputs or texts shown (0: all); the rest stay in the run folder.")
@click.option("--quiet", "-q", is_flag=True, help="Only errors.")
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks of unexpected errors.")
def report(run_dir: str, output: str | None, png_path: str | None, max_inputs: int, quiet: bool,
           verbose: bool) -> None:
    """Write one self-contained HTML report (and, with --png, a contact sheet) for a run folder (or its run.json)."""
    from attrib.report.html import contact_sheet_png, report_text
    from attrib.runs import run_folder
    from attrib.runs.atomic import utf8

    ui = UI(quiet=quiet)
    run_dir = str(run_folder(run_dir))
    html = output or (None if png_path else "report.html")
    check_outputs(html, png_path)
    writes = []  # (where, names it may replace, what it is, its bytes)
    if png_path:
        writes.append((png_path, ("overview.png",), "the contact sheet", lambda: contact_sheet_png(run_dir)))
    if html:
        writes.append((html, (".html", ".htm"), "the report", lambda: utf8(report_text(run_dir, max_inputs or None))))
    for path, keeps, _, _ in writes:
        if path != STDOUT:
            check_file(Path(path), keeps, Path(run_dir), html=path == html)
    with signals_as_interrupt() as caught:
        for path, _, what, make in writes:
            shown = f"{what} on standard output" if path == STDOUT else path
            _write(ui, shown, lambda path=path, make=make: save(path, make()), Path(run_dir), verbose, caught)


def check_outputs(html: str | None, png_path: str | None) -> None:
    """Usage errors, before any work, for outputs named as the other kind or both sent to standard output."""
    if html and html != STDOUT:
        check_html_name(html, "-o", "the contact sheet is --png FILE")
    if html == STDOUT and png_path == STDOUT:
        raise click.UsageError("-o - and --png - both write to standard output: send one of them to a file")
    if png_path == STDOUT and sys.stdout.isatty():
        raise click.UsageError("--png - writes the PNG picture to standard output, here a terminal: redirect it "
                               "(--png - > sheet.png) or give a file name")
    if png_path and png_path != STDOUT and Path(png_path).suffix.lower() != ".png":
        raise click.UsageError(f"--png writes a PNG picture: name it FILE.png (got {png_path})")


def check_file(path: Path, keeps: tuple[str, ...], run_dir: Path, html: bool) -> None:
    """Usage errors, before any work, where writing the file ``path`` would replace what it must not."""
    check_writable(path, "the output", folder=False)
    check_not_in_run(path, run_dir, "the output", keeps)
    if html:
        check_replaceable(path, "the output")
    else:
        check_not_an_input(path, run_dir)


def save(path: str, data: bytes) -> None:
    """The report or the contact sheet, written atomically, or on standard output (``-``) in one write."""
    from attrib.runs.atomic import atomic_write_bytes

    if path != STDOUT:
        atomic_write_bytes(path, data)
        return
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def _write(ui: UI, path: str, write: Callable[[], None], run_dir: Path, verbose: bool, caught: list[int]) -> None:
    """Write one output; any failure is one line (with -v, an unexpected one is its traceback), and a stop
    (Ctrl-C, SIGTERM, SIGHUP) leaves no part of it."""
    from attrib.errors import AttribError, first_line

    try:
        write()
    except AttribError as error:
        raise click.UsageError(str(error)) from None
    except BrokenPipeError:  # -o - | head: click ends quietly, as for any command's output cut short
        raise
    except OSError as error:  # the run's files (unreadable), or the output's folder: missing rights, a full disk
        read = error.filename is not None and Path(error.filename).resolve().is_relative_to(run_dir.resolve())
        raise click.UsageError(f"cannot read {error.filename}: {error.strerror or error}" if read else
                               f"cannot write {path}: {error.strerror or error}") from None
    except KeyboardInterrupt as stop:
        stopped, code = stopped_by(stop, caught)
        ui.error(f"{stopped}: {path} was not written")
        raise SystemExit(code) from None
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if verbose:
            raise
        ui.error(f"unexpected {type(error).__name__}: {first_line(error)} (run with -v for the traceback)")
        raise SystemExit(1) from None
    ui.info(f"wrote {path}")


def check_not_an_input(path: Path, run_dir: Path) -> None:
    """A usage error when the contact sheet would overwrite one of the run's input images."""
    from attrib.runs import load_run

    if not path.is_file():
        return
    try:
        inputs = load_run(run_dir).record.get("inputs", [])
    except Exception:  # noqa: BLE001 - an unreadable record is reported by the write itself
        return
    if any(e.get("path") and Path(e["path"]).resolve() == path.resolve() for e in inputs):
        raise click.UsageError(f"cannot write the contact sheet {path}: it is one of the run's input images; "
                               "give a new name")
