"""User errors: one line for the person at the terminal, no traceback.

Every error a user can cause (a bad option, an unknown model or method, an unreadable file) derives from
:class:`AttribError`; the command line catches these and nothing broader. ``UsageError`` is also a
``ValueError`` so that library callers who catch ``ValueError`` keep working. The wording helpers below
(``first_line``, ``counted``, ``duration``, ``similar``) keep the commands' messages alike.
"""

from __future__ import annotations


class AttribError(Exception):
    """Base of every user error; its message is one line."""


class UsageError(AttribError, ValueError):
    """An option, name or value the user gave that cannot work (a bad seed, target, device, method option)."""


class TooLargeError(AttribError, MemoryError):
    """One input does not fit in the device's memory even alone (the engine runs chunks of one row at least)."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message without its closing full stop (its type name when empty)."""
    lines = str(error).strip().strip('"').splitlines()
    return lines[0][:limit].rstrip(". ") if lines else type(error).__name__


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 input', '3 inputs' ('1 class', '3 classes' with ``plural``): a count in a message."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def a_type(value: object) -> str:
    """'an int', 'a dict', 'an ImageClassifierOutput', 'None': what a value is, as a message names it."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def duration(seconds: float) -> str:
    """'0.4 s', '12 s', '2.5 min': a span of time in a message, short spans to a tenth of a second."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def similar(text: str, known: list[str], n: int = 5, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` known names holding ``text``, closest first ('resnet5' finds resnet50 before cspresnet50),
    else up to ``n`` that look alike: the "did you mean" of an unknown name."""
    import difflib

    holding = [name for name in known if text in name]
    if holding:
        return sorted(holding, key=lambda name: (not name.startswith(text),
                                                 -difflib.SequenceMatcher(None, text, name).ratio(), name))[:n]
    return difflib.get_close_matches(text, known, n=n, cutoff=cutoff)
