"""Rich tables for the terminal (built here, printed through cli/ui.py)."""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.console import Console, ConsoleOptions, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from attrib.errors import counted
from attrib.formats import percent


def titled(title: str, table: Table, note: str | None = None) -> Group:
    """The title (rich markup) on its own line above the table, and the note (plain text) on its own line below:
    as a table's own title or caption rich wraps them to the table's width, which broke a short text's header
    after every word and a one-column DiffROAR table's legend over four lines."""
    parts = [Text.from_markup(title, style="table.title", emoji=False), table]  # a name's ":dog:" kept as it is
    return Group(*parts, Text(note, style="table.caption")) if note else Group(*parts)


def input_table(entry: dict[str, Any]) -> Group:
    """One input: its top predictions, then per method the target, completeness gap and time."""
    title = escape(entry["name"]) + (" [dim](already done)[/dim]" if entry.get("skipped") else "")
    best = entry["predictions"][0]["index"] if entry["predictions"] else None
    if entry.get("true_label") is not None and best != entry["given"]:
        title += f" [red]misclassified: its true class is {escape(entry['true_label'])} ({entry['given']})[/red]"
    table = Table(show_edge=False)
    for column in ("", "class", "prob / target", "gap", "time"):
        table.add_column(column, overflow="fold")  # a long name is broken, never cut short
    for rank, p in enumerate(entry["predictions"], 1):
        table.add_row(f"#{rank}", escape(f"{p['label']} ({p['index']})"), f"{p['prob']:.3f}", "", "")
    for a in entry["attributions"]:
        gap = "" if a["completeness_gap"] is None else percent(a["completeness_gap"])
        target = "" if a["target"] is None else escape(f"{a['target_label']} ({a['target']})" + (
            f" vs {a['versus_label']} ({a['versus']})" if a.get("versus") is not None else ""))
        table.add_row(f"[bold]{escape(a['method'])}[/bold]", target, "", gap, f"{a['seconds']:.2f}s")
    return titled(title, WordWrapped(table))


def diffroar_table(record: dict[str, Any]) -> Group:
    """DiffROAR per method (rows) and k (columns): mean +- std over seeds, with acc(top) / acc(bottom)."""
    rows = record["results"]
    ks = sorted({r["k"] for r in rows})
    title = f"DiffROAR — {escape(record['model']['name'])} on {escape(record['dataset']['name'])}"
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("method", overflow="fold")  # a long name is broken, never cut short
    for k in ks:
        table.add_column(f"k={k:g}", justify="right", no_wrap=True)
    for method in dict.fromkeys(r["method"] for r in rows):
        cells = []
        for k in ks:
            r = next((r for r in rows if r["method"] == method and r["k"] == k), None)
            cells.append("" if r is None else _cell(r))
        table.add_row(escape(method), *cells)
    return titled(title, WordWrapped(table), "DiffROAR (± std over seeds); dim: acc(top-k kept)/acc(bottom-k kept)")


def _cell(r: dict[str, Any]) -> str:
    """The value, its spread over seeds on a line of its own (a narrow terminal cut "± 0.01" short on one
    line), then acc(top)/acc(bottom)."""
    spread = f"\n± {r['std']:.3f}" if r.get("n_seeds", 1) > 1 else ""
    return f"{_signed_style(r['diffroar'])}{spread}\n[dim]{r['acc_top']:.2f}/{r['acc_bottom']:.2f}[/dim]"


def _signed_style(value: float) -> str:
    color = "green" if value > 0.05 else "red" if value < -0.05 else "default"
    return f"[{color}]{value:+.3f}[/{color}]"


def share_table(shares: dict[str, float]) -> Group:
    """blockdigits: share of |attribution| on the null block per method (0.5 = no preference)."""
    table = Table(show_edge=False)
    table.add_column("method")
    table.add_column("null-block share", justify="right")
    for method, value in shares.items():
        table.add_row(escape(method), f"{value:.3f}")
    return titled("Share of |attribution| on the null block (test set; lower = less leakage)", table)


STRONGEST = 3  # words named with their scores per method: colours alone say nothing in a log or a pipe


def text_panel(entry: dict[str, Any]) -> Group:
    """One text: per method, the words coloured by relevance (red raises the target's probability, blue lowers
    it; scaled per method by the largest |score|; a text's pair after "‖"), then the strongest words with their
    scores."""
    title = (f"{escape(entry['name'])}: predicted {escape(entry['prediction']['label'])} "
             f"({entry['prediction']['prob']:.3f}); explaining {escape(entry['target_label'])}"
             + (f" against {escape(entry['versus_label'])} ({entry['versus_prob']:.3f})"
                if entry.get("versus_label") is not None else "")
             + (" (its gold label)" if entry.get("target_from") == "gold label" else "")
             + (f"; its gold label: {escape(entry['gold_label'])}" if entry.get("gold_label") is not None
                and entry.get("target_from") != "gold label" else ""))
    if entry.get("cut"):
        title += f" (its first {entry['cut']['explained']} of {entry['cut']['words']} words: the token limit)"
    table = Table(show_edge=False, show_header=False)
    table.add_column("method", overflow="fold")  # long names and scores are broken, never cut short
    table.add_column("words", overflow="fold")
    table.add_column("strongest", style="dim", overflow="fold")
    for method, scores in entry["scores"].items():
        scale = max((abs(s) for s in scores), default=0.0) or 1.0
        line = Text()
        for i, (word, score) in enumerate(zip(entry["words"], scores)):
            if i == entry.get("pair_start"):
                line.append("‖ ", style="dim")  # the pair's words follow
            line.append(word, style=_relevance_style(score / scale))
            line.append(" ")
        order = sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:STRONGEST]
        strongest = ", ".join(f"{entry['words'][i]}={scores[i]:+.2g}" for i in order if scores[i])  # pairs unbroken
        gap = entry.get("gaps", {}).get(method)
        strongest += "" if gap is None else f"\ncompleteness gap {percent(gap)}"
        table.add_row(escape(method), line, escape(strongest))
    return titled(title, WordWrapped(table))


def _relevance_style(value: float) -> str:
    """Background from white to red (positive) or blue (negative)."""
    fade = int(255 - 150 * min(1.0, abs(value)))  # black text stays legible
    colour = f"rgb(255,{fade},{fade})" if value >= 0 else f"rgb({fade},{fade},255)"
    return f"black on {colour}"


def correlation_table(table: dict[str, dict[str, float | None]], counts: dict[str, dict[str, int]]) -> Group:
    """Pearson correlation between methods, averaged over the texts where both vary (``counts`` per pair)."""
    methods = list(table)
    out = Table(show_edge=False)
    out.add_column("", overflow="fold")  # a long name is broken, never cut short
    for m in methods:
        out.add_column(escape(m), justify="right", overflow="fold")
    for a in methods:
        out.add_row(escape(a), *("1" if a == b else "—" if table[a].get(b) is None else f"{table[a][b]:.2f}"
                                 for b in methods))
    n = sorted({k for row in counts.values() for k in row.values()})
    over = counted(n[0], "text") if len(n) == 1 else f"{n[0]}-{n[-1]} texts per pair"
    return titled(f"Pearson correlation between methods (mean over {over} where both vary)", WordWrapped(out))


def sanity_tables(record: dict[str, Any]) -> list[Group]:
    """Verdicts first, then the numbers behind them."""
    tables = []
    verdicts = Table(show_edge=False, pad_edge=False)  # flush left, as the tables below it
    for column in ("method", "test", "", "reason"):
        verdicts.add_column(column)
    for v in record["verdicts"]:
        mark = {True: "[green]pass[/green]", False: "[red]fail[/red]"}.get(v["passed"], "[yellow]unsure[/yellow]")
        verdicts.add_row(escape(v["method"]), escape(v["test"]), mark, escape(v["reason"]))
    tables.append(titled("Verdicts", verdicts))
    specs = (("randomization", "Randomization: similarity to the original maps",
              ("method", "mode", "layer", "depth", "spearman_abs", "spearman_signed", "ssim", "hog")),
             ("robustness", "Robustness: similarity of clean and perturbed maps",
              ("method", "perturbation", "radius", "topk_intersection", "kendall_tau", "spearman", "cosine", "ssim")),
             ("completeness", "Completeness gap (mean over inputs)",
              ("method", "steps", "default", "passes", "converged", "gap", "gap_stderr", *LEFT_OUT)))
    marked = [{**r, "default": "set" if r.get("set") else r.get("default")} for r in record["completeness"]]
    for key, title, columns in specs:
        rows = marked if key == "completeness" else record[key]  # the verdict's budget: "yes", or "set" by --set
        if rows:
            shown = tuple(c for c in columns if c not in LEFT_OUT or any(row.get(c) for row in rows))
            tables.append(_rows_table(title, rows, shown))
    return tables


LEFT_OUT = ("undefined", "not_finite")  # inputs left out of a mean gap: shown where there are any
FORMATS = {"passes": "{:.0f}".format, "converged": "{:.0%}".format, "gap": percent, "gap_stderr": percent}  # else _fmt


def _rows_table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Group:
    """One row per record (a column no record has a value for is left out); where that is wider than the
    terminal, one table per method under its name, so that names are not broken mid-word."""
    columns = tuple(c for c in columns if any(row.get(c) is not None for row in rows))
    rest = tuple(c for c in columns if c != "method")
    per_method = [part for method in dict.fromkeys(row["method"] for row in rows) for part in (
        Text(method, style="bold"), _table([row for row in rows if row["method"] == method], rest))]
    return titled(title, Fits(_table(rows, columns), Group(*per_method)))


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> "WordWrapped":
    cells = [[FORMATS[c](row[c]) if c in FORMATS and isinstance(row.get(c), float)
              else _fmt(row.get(c), (row.get("spread") or {}).get(c) if row.get("draws", 1) > 1 else None)
              for c in columns] for row in rows]
    table = Table(show_edge=False, pad_edge=False)  # two more characters for the cells
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold",  # a name is broken, never cut short
                         justify="left" if column in ("method", "mode", "layer", "perturbation") else "right")
    for row in cells:
        table.add_row(*row)
    return WordWrapped(table)


class Fits:
    """``wide`` where it fits the width it is printed at without breaking a word, else ``narrow`` (rich asks at
    print time, so a log 120 columns wide gets the one table and an 80-column terminal the narrow layout)."""

    def __init__(self, wide: "WordWrapped", narrow: Any) -> None:
        self.wide, self.narrow = wide, narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        yield self.wide if self.wide.least_width() <= options.max_width else self.narrow


class WordWrapped:
    """A table narrowed to the width it is printed at by wrapping its cells at spaces: the widest column gives
    way first, down to its longest word. Rich would narrow every column alike, breaking "perturbation" after
    11 letters, or with least widths cut the last column's numbers short. Where even the longest words do not
    fit, the longest of them are broken (folded), never cut."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.extents = [self._extent(column) for column in table.columns]  # (longest word, longest line)

    def least_width(self) -> int:
        return sum(word for word, _ in self.extents) + self._overhead()

    def _overhead(self) -> int:
        """Padding on both sides of each column (but the outer sides without pad_edge), a rule between columns,
        and the edges where drawn."""
        return 3 * len(self.extents) - 1 - (0 if self.table.pad_edge else 2) + (2 if self.table.show_edge else 0)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        room = options.max_width - self._overhead()
        chosen = [line for _, line in self.extents]
        for floors in ([word for word, _ in self.extents], [1] * len(chosen)):
            while sum(chosen) > room and any(c > f for c, f in zip(chosen, floors)):
                widest = max((i for i, f in enumerate(floors) if chosen[i] > f), key=lambda i: chosen[i])
                chosen[widest] -= 1
        for column, (_, line), width in zip(self.table.columns, self.extents, chosen):
            column.width = width if width < line else None
        yield self.table

    @staticmethod
    def _extent(column) -> tuple[int, int]:
        texts = [Text.from_markup(str(t), emoji=False).plain for t in (column.header, *column.cells)]
        lines = [line for text in texts for line in text.splitlines()] or [""]
        words = [word for line in lines for word in re.split(r"(?<!±) +", line)] or [""]  # "± 0.01" is one
        return max(map(len, words)), max(map(len, lines))


def _fmt(value: Any, spread: float | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return f"{value:.3f}" + (f"\n± {spread:.3f}" if spread is not None else "")  # narrow: the spread below
    return escape(str(value))


def confusions_line(confusions: list[dict[str, Any]], shown: int = 3) -> str | None:
    """The most frequent confusions in one line ("most confused: tabby as tiger cat (12), ..."), else None."""
    def name(label: str | None, index: int) -> str:
        return f"{label.split(',')[0]} ({index})" if label and label != str(index) else str(index)

    parts = [f"{name(c.get('given_label'), c['given'])} as {name(c.get('predicted_label'), c['predicted'])} "
             f"x{c['count']}" for c in confusions[:shown]]
    return "most confused: " + ", ".join(parts) if parts else None
