"""The one terminal wrapper: status and progress to stderr, data (tables, --json) to stdout.

rich honours NO_COLOR; progress bars are shown only on a terminal and never with --quiet or --json.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape


class UI:
    """Messages by level (-q shows only errors, -v adds details) and optional progress bars."""

    def __init__(self, quiet: bool = False, verbose: bool = False, json_mode: bool = False) -> None:
        self.quiet, self.verbose, self.json_mode = quiet, verbose, json_mode
        for stream in (sys.stdout, sys.stderr):
            _tolerant(stream)
        # emoji=False: rich would print a name holding ":dog:" (sample:dog: unknown sample) with a dog in it
        self.err = Console(stderr=True, highlight=False, emoji=False)
        self.out = Console(highlight=False, emoji=False, width=_table_width(sys.stdout))

    def info(self, text: str) -> None:
        if not self.quiet:
            self._message(escape(text))

    def detail(self, text: str) -> None:
        if self.verbose and not self.quiet:
            self._message(f"[dim]{escape(text)}[/dim]")

    def warn(self, text: str) -> None:
        if not self.quiet:
            self._message(f"[yellow]warning:[/yellow] {escape(text)}")

    def error(self, text: str) -> None:
        self._message(f"[red]error:[/red] {escape(text)}")

    def _message(self, markup: str) -> None:
        """One message, one line in a log or pipe (rich would break it at 80 columns there, and a grep for
        'error:' would miss the rest); a terminal wraps it at words."""
        self.err.print(markup, soft_wrap=not self.err.is_terminal)

    def show(self, renderable: Any) -> None:
        """Data for the reader (tables): stdout, unless --json or --quiet; in a log or pipe without the spaces
        rich pads every line with to the table's width."""
        if self.json_mode or self.quiet:
            return
        if self.out.is_terminal:
            self.out.print(renderable)
            return
        with self.out.capture() as captured:
            self.out.print(renderable)
        sys.stdout.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
        sys.stdout.flush()

    def emit_json(self, obj: Any) -> None:
        from attrib.runs.atomic import json_text

        sys.stdout.write(json_text(obj, indent=2) + "\n")
        sys.stdout.flush()

    @property
    def live(self) -> bool:
        return self.err.is_terminal and not self.quiet and not self.json_mode

    @contextmanager
    def progress(self) -> Iterator[Any]:
        """A rich Progress on a terminal, else a no-op object with the same methods."""
        if not self.live:
            yield _NoProgress()
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), _RateColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())  # descriptions: names as they are
        with Progress(*columns, console=self.err, transient=True) as progress:
            yield progress


LOG_WIDTH = 120  # tables written to a log or pipe: rich's 80 columns there folded a sanity table's every name


def _tolerant(stream: Any) -> None:
    """A file name that is not UTF-8 prints with its odd bytes as ``caf\\xe9.jpg`` where the stream would fail
    on them (a UTF-8 locale's strict handler) or show the surrogate (stderr's); the C locale's writes the bytes."""
    if getattr(stream, "errors", None) in ("strict", "backslashreplace") and hasattr(stream, "reconfigure"):
        from attrib.runs.atomic import SHOW_BYTES

        stream.reconfigure(errors=SHOW_BYTES)


def _table_width(stream: Any) -> int | None:
    """The width of tables on ``stream``: the terminal's, or COLUMNS when set, else LOG_WIDTH."""
    if os.environ.get("COLUMNS") or (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return LOG_WIDTH


def _RateColumn():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second of the task."""

        def render(self, task) -> Text:
            return Text(f"{task.speed:.1f}/s" if task.speed else "", style="dim")

    return RateColumn()


class _NoProgress:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass
