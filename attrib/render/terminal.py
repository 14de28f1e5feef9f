"""Rich tables for the terminal (built here, printed through cli/ui.py)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table


def input_table(entry: dict[str, Any]) -> Table:
    """One input: its top predictions, then per method the target, completeness gap and time."""
    title = escape(entry["name"]) + (" [dim](already done)[/dim]" if entry.get("skipped") else "")
    table = Table(title=title, title_justify="left", show_edge=False)
    if entry["status"] != "ok":
        table.add_column("error", style="red")
        table.add_row(escape(str(entry["error"])))
        return table
    for column in ("", "class", "prob / target", "gap", "time"):
        table.add_column(column)
    for rank, p in enumerate(entry["predictions"], 1):
        table.add_row(f"#{rank}", escape(f"{p['label']} ({p['index']})"), f"{p['prob']:.3f}", "", "")
    for a in entry["attributions"]:
        gap = "" if a["completeness_gap"] is None else f"{a['completeness_gap']:.2%}"
        target = "" if a["target"] is None else escape(f"{a['target_label']} ({a['target']})")
        table.add_row(f"[bold]{escape(a['method'])}[/bold]", target, "", gap, f"{a['seconds']:.2f}s")
    return table
