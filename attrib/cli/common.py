"""What every job command shares: the run options (--seed --device --out --html --json -q -v) and the one
runner for the command tail (UI, run folder, the job, the terminal view, HTML, JSON, exit code)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from attrib.cli import completion
from attrib.cli.ui import UI
from attrib.errors import counted

NO_PRETRAINED_HELP = "Random weights: the model's architecture only (the same fixed-seed draw on every run)."
IMAGE_SIZE_HELP = ("Resize a torchvision or folder data set's pictures to PX x PX [default: a folder is read as the "
                   "model reads pictures; torchvision sets at their own size].")
MODEL_HELP = ("timm:NAME, torchvision:NAME, hf:ORG/NAME, a local HF folder, sample:NAME, your code's "
              "FILE.py:NAME[(ARGS)]; default: embedded EfficientNet-Lite0.")


class Command(click.Command):
    """A command that refuses an option given an empty value (``--out ""``, ``-M "$UNSET"``) before any work: the
    option would otherwise read as left out, its default taking the place of what was meant (``--html ""`` wrote
    no report, ``-M ""`` explained with the default model). An empty --pair is a text's own error."""

    EMPTY_ALLOWED = frozenset({"pairs"})

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        empty = None if ctx.resilient_parsing else _empty_option(self.params, args, self.EMPTY_ALLOWED)  # (Tab)
        if empty is not None:
            raise click.UsageError(f"{empty} is empty (an unset shell variable?): give it a value, or leave it out",
                                   ctx)
        return super().parse_args(ctx, args)


def _empty_option(params: list[click.Parameter], args: list[str], allowed: frozenset[str]) -> str | None:
    """The first option in ``args`` given an empty (or blank) value, as ``--opt ""`` or ``--opt=``; else None."""
    takes_value = {name for p in params if isinstance(p, click.Option) and not p.is_flag and not p.count
                   and p.name not in allowed for name in (*p.opts, *p.secondary_opts)}
    for at, token in enumerate(args):
        if token == "--":
            return None
        name, equals, value = token.partition("=")
        if equals and name.startswith("--") and name in takes_value:  # -M=x is -M "=x"
            given = value
        elif token in takes_value and at + 1 < len(args):
            given = args[at + 1]
        else:
            continue
        if not given.strip():
            return name
    return None


def listed(values: tuple[str, ...] | str | None) -> list[str]:
    """The entries of a list option given comma-separated, repeated, or both (--k 0.1 --k 0.2,0.3: three)."""
    values = (values,) if isinstance(values, str) else values or ()
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@dataclass
class Common:
    """The options every job command takes."""

    seed: int = 0
    device: str = "auto"
    out_dir: str | None = None
    html_path: str | None = None
    json_mode: bool = False
    quiet: bool = False
    verbose: bool = False


_COMMON_OPTIONS = (
    click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of all random draws."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option("--out", "out_dir", type=click.Path(file_okay=False),
                 help="Run folder [default: attrib-runs/<time>]."),
    click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML report here."),
    click.option("--json", "json_mode", is_flag=True, help="Print the results as one JSON object on stdout."),
    click.option("--quiet", "-q", is_flag=True, help="Only errors."),
    click.option("--verbose", "-v", is_flag=True, help="More detail (and tracebacks of unexpected errors)."),
)


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the run options; the command receives them as one ``common: Common`` argument."""
    @functools.wraps(command)
    def wrapper(*args: Any, seed, device, out_dir, html_path, json_mode, quiet, verbose, **kwargs: Any) -> Any:
        return command(*args, common=Common(seed, device, out_dir, html_path, json_mode, quiet, verbose), **kwargs)

    for option in reversed(_COMMON_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


LABELS_OPTION = click.option("--labels", "labels", type=click.Path(dir_okay=False), metavar="FILE",
                             help="Class names: one per line (synset_words.txt too), a JSON list or {index: name}.")


PREPROCESS_OPTION = click.option(
    "--preprocess", "preprocess", multiple=True, metavar="KEY=VALUE",
    help="How the model reads pictures, where a fine-tune differs from its architecture's weights (repeatable): "
         "size=384 (or HxW), crop_pct=1, mean=0.5 (or R,G,B), std=..., interpolation=bilinear, "
         "mode=center|squash|border.")


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--model/-M SPEC, --weights FILE, --no-pretrained, --labels FILE, --preprocess KEY=VALUE."""
    for option in reversed((
            click.option("--model", "-M", "model_spec", default=None, metavar="SPEC", help=MODEL_HELP,
                         shell_complete=completion.model_spec),
            click.option("--weights", type=click.Path(dir_okay=False),
                         help="Local weights: a state dict or training checkpoint (.pt/.pth/.ckpt/.safetensors)."),
            click.option("--no-pretrained", is_flag=True,
                         help=NO_PRETRAINED_HELP),
            LABELS_OPTION, PREPROCESS_OPTION)):
        command = option(command)
    return command


def method_options(default_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--method/-m NAME (repeatable) and --set KEY=VALUE (repeatable)."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                               shell_complete=completion.method_settings(completion.IMAGES),
                               help="Method option (repeatable); METHOD.KEY=VALUE for one method only.")(command)
        return click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
                            shell_complete=completion.method_names(completion.IMAGES),
                            help=f"Method name or alias (repeatable; default {default_help}). "
                                 "See `attrib methods`.")(command)
    return decorate


def text_model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The text commands' classifier and methods: --model/-M SPEC, --lm SPEC, --method/-m NAME, --set KEY=VALUE,
    --n-samples, --n-steps, --batch-size, --trust-remote-code; the command receives them as one ``text`` dict of
    the text jobs' options (attrib.jobs.explain_text.TextModelOptions)."""
    @functools.wraps(command)
    def wrapper(*args: Any, model_spec, lm_spec, methods, settings, n_samples, n_steps, batch_size,
                trust_remote_code, **kwargs: Any) -> Any:
        text = {"model": model_spec, "lm": lm_spec, "settings": list(settings), "n_samples": n_samples,
                "n_steps": n_steps, "batch_size": batch_size, "trust_remote_code": trust_remote_code,
                **({"methods": list(methods)} if methods else {})}
        return command(*args, text=text, **kwargs)

    for option in reversed((
            click.option("--model", "-M", "model_spec", required=True, metavar="SPEC",
                         shell_complete=completion.folder,
                         help="Hugging Face sequence classifier: hub id (online) or a local save_pretrained folder."),
            click.option("--lm", "lm_spec", default=None, metavar="SPEC", shell_complete=completion.folder,
                         help="Masked LM for olm/olm_s: hub id or local folder [default: bert-base-uncased]."),
            click.option("--method", "-m", "methods", multiple=True, metavar="NAME",
                         shell_complete=completion.method_names(completion.TEXTS),
                         help="olm, olm_s, unk, delete, gradient, gradient_x_input, ig, ... (repeatable; default "
                              "olm, olm_s)."),
            click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                         shell_complete=completion.method_settings(completion.TEXTS),
                         help="Method option (repeatable; wins over --n-samples/--n-steps); METHOD.KEY=VALUE for "
                              "one method only."),
            click.option("--n-samples", default=100, show_default=True, type=click.IntRange(1),
                         help="n_samples of every method (OLM: LM draws per word)."),
            click.option("--n-steps", default=100, show_default=True, type=click.IntRange(1),
                         help="n_steps of every method (IG's steps)."),
            click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1),
                         help="Sentences per forward."),
            click.option("--trust-remote-code", is_flag=True, help="Allow the model repos' own code to run."))):
        wrapper = option(wrapper)
    return wrapper


def pair_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--pair TEXT (repeatable) and --pair-column: the second text of a pair classifier's inputs."""
    command = click.option("--pair-column", help="CSV/JSONL column with each row's second text (read with the text, "
                                                 "as a pair).")(command)
    return click.option("--pair", "pairs", multiple=True, metavar="TEXT",
                        help="A second text read with the text (NLI's hypothesis, a question's passage): one per "
                             "TEXT, in order.")(command)


def executor_options(unit: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--executor local|ray, --address, --gpus-per-UNIT, --cpus-per-UNIT; the command receives them as one
    ``executor: ExecutorSpec`` argument (checked when the job starts)."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, executor, address, gpus, cpus, **kwargs: Any) -> Any:
            from attrib.executors import ExecutorSpec

            return command(*args, executor=ExecutorSpec(executor, address, cpus, gpus), **kwargs)

        for option in reversed((
                click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                             help="Where the work runs: this process, or a Ray cluster (pip install 'attrib[ray]')."),
                click.option("--address", metavar="auto|HOST:PORT",
                             help="Ray: attach to this cluster [default: start a local one for this command]."),
                click.option(f"--gpus-per-{unit}", "gpus", type=click.FloatRange(0), default=0.0, metavar="F",
                             help=f"Ray: GPUs per {unit} (fractions share a GPU) [default: 0, CPU only]."),
                click.option(f"--cpus-per-{unit}", "cpus", type=click.FloatRange(0, min_open=True), metavar="N",
                             help=f"Ray: CPUs per {unit} (torch threads in it) [default: 1]."))):
            wrapper = option(wrapper)
        return wrapper
    return decorate


WARNINGS_SHOWN = 20  # a large run's warnings past these are counted, not printed (-v prints every one)


class CliEvents:
    """A job's events on the terminal: progress bars by key, messages by level, items shown as they finish."""

    def __init__(self, ui: UI, progress: Any, on_item: Callable[[UI, dict, dict], None] | None = None) -> None:
        self.ui, self.progress, self.on_item = ui, progress, on_item
        self.tasks: dict[str, Any] = {}
        self.totals: dict[str, int | None] = {}
        self.warned = 0
        self.info, self.detail, self.error = ui.info, ui.detail, ui.error

    def warning(self, text: str) -> None:
        self.warned += 1
        if self.ui.verbose or self.warned <= WARNINGS_SHOWN:
            self.ui.warn(text)

    def held_back(self) -> str | None:
        """The line that counts the warnings not printed, if any."""
        hidden = 0 if self.ui.verbose else self.warned - WARNINGS_SHOWN
        if hidden <= 0:
            return None
        return (f"{counted(hidden, 'more warning')} not shown (-v shows every one; the run folder and the HTML "
                "report keep what each input's were about)")

    def task(self, key: str, description: str, total: int | None) -> None:
        self.totals[key] = total
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total)
        else:
            self.progress.update(self.tasks[key], description=description, total=total, completed=0, visible=True)

    def advance(self, key: str, n: int = 1, description: str | None = None) -> None:
        if key in self.tasks:
            extra = {"description": description} if description else {}
            self.progress.update(self.tasks[key], advance=n, **extra)

    def shrink(self, key: str, n: int) -> None:
        if key in self.tasks and n > 0 and self.totals.get(key) is not None:
            self.totals[key] -= n
            self.progress.update(self.tasks[key], total=self.totals[key])

    def item(self, entry: dict) -> None:
        if self.on_item is not None:
            self.on_item(self.ui, entry, self.totals)


@dataclass
class View:
    """How a command presents its job's record: the terminal view, the --json object, the exit code."""

    show: Callable[[UI, dict, Path], None] = lambda ui, record, out: None
    json: Callable[[dict, Path], Any] | None = None
    exit_code: Callable[[dict], int] = lambda record: 0
    on_item: Callable[[UI, dict, dict], None] | None = None  # (ui, finished item, task totals)
    interrupted: str = "{stopped}"  # what Ctrl-C (or SIGTERM, SIGHUP) leaves, said with "interrupted" (or "stopped
    # by SIGTERM") as {stopped}, the run folder as {out}, "the same command" (with --out where the folder was the
    # default) as {again}
    resumes: bool = False  # whether a rerun into the folder goes on from what an interrupted run finished


RESUMES = "{stopped}; what finished is kept in {out}: {again} goes on from there"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit, a container or service stopped) or SIGHUP (the terminal or the SSH
    session closed), handled as Ctrl-C is: what finished is kept, and the same command goes on from it."""

    def __init__(self, signum: int = 15) -> None:
        import signal

        super().__init__(signum)
        self.name, self.exit_code = signal.Signals(signum).name, 128 + signum


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[list[int]]:
    """Within: SIGTERM, and SIGHUP unless it is ignored (nohup), raise :class:`Terminated` in the main thread
    (elsewhere, signals cannot be handled). Yields the list of signals caught: code that turns every
    KeyboardInterrupt into a plain one (Ray's waits do, in their C++ core) does not hide which it was."""
    import signal
    import threading

    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def stop(signum: int, frame: Any) -> None:
        caught.append(signum)
        raise Terminated(signum)

    hangup = getattr(signal, "SIGHUP", None)  # (none on Windows)
    handled = [signal.SIGTERM] + ([hangup] if hangup and signal.getsignal(hangup) is not signal.SIG_IGN else [])
    previous = {signum: signal.signal(signum, stop) for signum in handled}
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stopped_by(stop: KeyboardInterrupt, caught: list[int]) -> tuple[str, int]:
    """What stopped a command, and its exit code: ("interrupted", 130) for Ctrl-C, ("stopped by SIGTERM", 143) or
    ("stopped by SIGHUP", 129) for a signal :func:`signals_as_interrupt` caught (even where a library turned its
    :class:`Terminated` into a plain KeyboardInterrupt)."""
    stop = Terminated(caught[0]) if caught and not isinstance(stop, Terminated) else stop
    return (f"stopped by {stop.name}", stop.exit_code) if isinstance(stop, Terminated) else ("interrupted", 130)


def run_job(common: Common, job: Any, options: Any, view: View, prefix: str = "") -> None:
    """Run ``job.run(options, store, events)`` and finish the command; never returns (exits with the code).

    A user error (AttribError) is a usage error (exit 2, one line); anything else is one line naming its type
    and pointing to -v, which shows the traceback instead.
    """
    ui = UI(quiet=common.quiet, verbose=common.verbose, json_mode=common.json_mode)
    if common.out_dir == "-":
        raise click.UsageError("--out - names no folder: give the run's folder (--json prints the results on "
                               "standard output)")
    out = Path(common.out_dir or Path("attrib-runs") / time.strftime(f"{prefix}%Y%m%d-%H%M%S"))
    check_writable(out)
    if common.html_path:
        check_html_option(Path(common.html_path), out)
    if common.out_dir:
        return _run_and_finish(common, job, options, view, ui, out, again="the same command")  # (exits)
    made = [folder for folder in (out, *out.parents) if not folder.exists()]
    out = claim_new_folder(out)  # the default folder is this run's alone, whoever else starts in this second
    try:
        _run_and_finish(common, job, options, view, ui, out, again=f"the same command with --out {out}")
    finally:
        with contextlib.suppress(OSError):  # only while empty: the run stopped before writing (a usage error)
            for folder in [out, *made[1:]]:
                folder.rmdir()


def check_html_option(path: Path, out: Path) -> None:
    """Usage errors, before any work, where ``--html PATH`` would replace what it must not, or (``-``) write the
    report into the tables or JSON on standard output."""
    if str(path) == "-":
        raise click.UsageError("--html - would write the report into the results on standard output: give a file "
                               "name, or write it there afterwards with attrib report RUN_FOLDER -o -")
    check_html_name(str(path), "--html")
    check_writable(path, "the report", folder=False)
    check_not_in_run(path, out, "the report")
    check_replaceable(path, "the report")


def claim_new_folder(path: Path) -> Path:
    """Create and return ``path``, or ``path-2``, ``path-3``, ... where it exists (each made atomically: runs
    started in the same second get a folder each)."""
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")


def _run_and_finish(common: Common, job: Any, options: Any, view: View, ui: UI, out: Path, again: str) -> None:
    """The job into ``out``, then the terminal view, the report and the exit (see :func:`run_job`); ``again``
    says what goes on from an interrupted run."""
    from attrib.errors import AttribError, first_line
    from attrib.runs import RunStore

    caught: list[int] = []  # (bound again by the with: the signals that stopped the job)
    try:
        with signals_as_interrupt() as caught, ui.progress() as progress, warnings.catch_warnings():
            warnings.showwarning = _shown_by(ui, warnings.showwarning)
            events = CliEvents(ui, progress, view.on_item)
            record = job.run(options, RunStore(out), events)
    except AttribError as error:
        raise click.UsageError(first_line(error, limit=2000)) from None
    except KeyboardInterrupt as stop:
        stopped, code = stopped_by(stop, caught)
        kept = not view.resumes or RunStore(out).read_record()  # (while the model loaded: nothing yet)
        with contextlib.suppress(OSError):  # (after SIGHUP the terminal may be gone)
            ui.error(view.interrupted.format(out=out, again=again, stopped=stopped) if kept else
                     f"{stopped} before any work")
        sys.exit(code)
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if isinstance(error, OSError) and error.filename is not None and Path(error.filename).is_relative_to(out):
            kept = f"; what finished is kept there: {again} goes on from it once it can be written" \
                if view.resumes and out.is_dir() else ""  # (none: the folder could not be made)
            ui.error(f"cannot write the run folder: {error.strerror or error}: {error.filename}{kept}")
            sys.exit(1)
        if common.verbose:
            raise
        if isinstance(error, OSError) and error.filename is not None and error.strerror:  # a file given to it
            raise click.UsageError(f"{error.filename}: {error.strerror}") from None
        ui.error(f"unexpected {type(error).__name__}: {first_line(error)} (run with -v for the traceback)")
        sys.exit(1)
    if held := events.held_back():
        ui.warn(held)
    view.show(ui, record, out)
    if common.html_path:
        write_html(ui, out, common.html_path)
    if common.json_mode and view.json is not None:
        ui.emit_json(view.json(record, out))
    sys.exit(view.exit_code(record))


def _shown_by(ui: UI, default: Callable[..., None]) -> Callable[..., None]:
    """attrib's own Python warnings (a model in training mode, an image processor attrib only approximates) as
    the command's warning lines; anything else as Python shows it."""
    package = Path(__file__).parents[1]

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if Path(filename).is_relative_to(package):
            ui.warn(str(message))
        else:
            default(message, category, filename, lineno, file, line)
    return show


def check_html_name(path: str, flag: str, instead: str = "name it FILE.html") -> None:
    """A usage error, before any work, when an HTML report is to be written under a picture's name (HTML in a
    file named .png opens as a broken picture)."""
    from attrib.data.images import IMAGE_SUFFIXES

    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        raise click.UsageError(f"{flag} writes the HTML report, not a picture ({path}); {instead}")


def check_replaceable(path: Path, what: str, keeps: tuple[str, ...] = (".html", ".htm")) -> None:
    """A usage error, before any work, when ``path`` is an existing file whose name does not end in ``keeps``:
    an HTML report replaces an earlier report, never an input image, a file of texts or anything else."""
    if path.is_file() and not path.name.lower().endswith(keeps):
        raise click.UsageError(f"cannot write {what} {path}: that file exists and is not an HTML report (an input?); "
                               "give a new name")


def check_not_in_run(path: Path, run: Path, what: str, keeps: tuple[str, ...] = (".html", ".htm")) -> None:
    """A usage error, before any work, when writing ``path`` would overwrite a file of the run folder ``run``:
    inside it, only a top-level file that is no record of the run may be written, new or (name ending in
    ``keeps``) an earlier report."""
    from attrib.runs.store import INPUTS, RUN_JSON

    target, root = path.resolve(), run.resolve()
    if root not in target.parents:
        return
    if target.parent != root or target.name in (RUN_JSON, INPUTS) or \
            (target.exists() and not target.name.lower().endswith(keeps)):
        raise click.UsageError(f"cannot write {what} {path}: {target.relative_to(root)} belongs to the run (its "
                               "record, arrays and pictures); write it beside the run folder, or under another name")


def check_writable(path: Path, what: str = "the run folder", folder: bool = True) -> None:
    """A usage error, before any work, when ``path`` (a folder, or a file with ``folder`` False) cannot be
    created or written; checked on the nearest folder that exists, so that nothing is created here."""
    try:
        if not folder and path.is_dir():
            raise click.UsageError(f"cannot write {what} {path}: it is a folder")
        start = path if folder else path.absolute().parent
        existing = next(p for p in (start, *start.absolute().parents) if p.exists())
    except OSError as error:  # a name the file system cannot take (over 255 bytes), a folder it may not look in
        raise click.UsageError(f"cannot write {what} {path}: {error.strerror or error}") from None
    if not existing.is_dir():
        raise click.UsageError(f"cannot write {what} {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise click.UsageError(f"cannot write {what} {path}: {existing} is not writable")


def wrote(out: Path, *names: str) -> str:
    """'wrote OUT/a, b and c/' naming only what the run folder holds: a run whose inputs all failed wrote no
    arrays or pictures, and the summary line must not say it did."""
    held = [name for name in names if name and (out / name).exists()]
    listed = ", ".join(held[:-1]) + " and " + held[-1] if len(held) > 1 else "".join(held)
    return f"wrote {out}/{listed}"


def write_html(ui: UI, out: Path, html_path: str) -> None:
    from attrib.errors import AttribError
    from attrib.report.html import write_report

    try:
        write_report(out, html_path)
    except OSError as error:
        ui.error(f"cannot write the report {html_path}: {error.strerror or error} (the run is in {out})")
        sys.exit(1)
    except AttribError as error:  # a record the report cannot render: one line, the run kept
        ui.error(f"cannot write the report {html_path}: {error} (the run is in {out})")
        sys.exit(1)
    ui.info(f"wrote {html_path}")


def show_confusions(ui: UI, confusions: list[dict]) -> None:
    """The most frequent confusions of a run with given classes, in one line (none: nothing)."""
    from attrib.render.terminal import confusions_line

    line = confusions_line(confusions)
    if line:
        ui.info(line)
