"""Untrusted text as data: one small, pure function per place text is shown.

Alert fields (title, key, site, detector, notes, labels) come from outside: detectors,
webhooks, the Prefect UI's forms. Wherever AxTrace shows them they must read as the text they
are, never act as markup of the place they are shown in:

- :func:`markdown_text` for Markdown (the run's artifact, the Resume form): inline markup,
  links, images, HTML, table cells and autolinks are escaped, line breaks become spaces;
- :func:`markdown_link` for a link whose address is untrusted (http(s) only, encoded);
- :func:`console_text` for Rich (the CLI): a ``rich.text.Text``, which Rich never reads as
  markup or emoji codes (escaping with ``rich.markup.escape`` inside markup strings is not
  exact: a trailing or doubled backslash, or ``\\[``, prints differently or eats a tag);
- :func:`csv_cell` for CSV: formula prefixes neutralised (OWASP's rule);
- :func:`without_mass_mentions` for chat notifications: ``@channel``, ``@here``,
  ``@everyone``, ``<!channel>`` and the like no longer mention anyone.

The Markdown and Rich forms also drop control characters (terminal escape sequences, bidi
overrides) with :func:`printable`; CSV keeps the text exact, as auditors need it.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from rich.text import Text

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 and C1 controls, DEL, bidi controls; a lone surrogate (not text) reads as U+FFFD.
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")
_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Characters that may start or end Markdown syntax anywhere in a line (CommonMark + GFM):
# escapes, code, emphasis, strikethrough, links, images, HTML, entities, tables, headings.
_MD_INLINE = re.compile(r"([\\`*_{}\[\]()<>#!|~&$@])")
# ... and what makes a list item or block quote at the start of a value, or an autolink.
_MD_START = re.compile(r"^(\s*)([-+=>]|\d+(?=[.)]))")
_MD_AUTOLINK = re.compile(r"(?i)(www)\.|:(?=/)")

_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")

# Mentions that reach everyone in a channel: Slack, Mattermost, Discord, Rocket.Chat, Matrix,
# Teams (text), Zulip (``@**all**``), Google Chat (``<users/all>``).
_MASS_WORDS = r"channel|here|everyone|all|room|group|team|stream|topic|everybody|allchannel"
_MASS_AT = re.compile(rf"(?i)@(?=(?:_?\*\*)?(?:{_MASS_WORDS})\b)")
# Slack's ``<!channel>``, ``<!here>``, ``<!subteam^ID>``; Discord's role ``<@&ID>``.
_SPECIAL = re.compile(r"(?i)<(?=!|@&|users/all>)")
ZERO_WIDTH_SPACE = "\u200b"


def printable(value: object) -> str:
    """``value`` as one line of text: line breaks and tabs become a space, other control
    characters (ESC of terminal sequences, NUL, DEL, C1, bidi overrides) are dropped, and
    lone surrogates become U+FFFD."""
    text = "" if value is None else str(value)
    text = _SURROGATE.sub("\ufffd", text)
    text = _BREAKS.sub(" ", text)
    return _CONTROL.sub("", text)


def markdown_text(value: object) -> str:
    """``value`` as literal text inside a Markdown line (a paragraph, heading or table cell).

    Every character that could open or close Markdown or HTML syntax is backslash-escaped,
    so a title like ``[click](http://x) | 1 | fake row`` reads as that text; ``http://`` and
    ``www.`` lose their autolink, and a value cannot start a list, quote or heading."""
    text = _MD_INLINE.sub(r"\\\1", printable(value))
    text = _MD_AUTOLINK.sub(lambda m: f"{m[1]}\\." if m[1] else "\\:", text)
    return _MD_START.sub(_escape_start, text)


def _escape_start(match: re.Match[str]) -> str:
    space, mark = match[1], match[2]
    return f"{space}{mark}\\" if mark[0].isdigit() else f"{space}\\{mark}"


def markdown_link(label: str, url: str | None, *, empty: str = "") -> str:
    """A Markdown link to ``url`` if it is http(s), its address percent-encoded so it cannot
    leave the link; otherwise the address as plain text (``empty`` when there is none)."""
    if not url:
        return empty
    clean = printable(url).strip()
    if not clean.lower().startswith(("http://", "https://")):
        return markdown_text(clean)
    address = quote(clean, safe="/:?#@!$&'*+,;=%-._~[]")
    return f"[{markdown_text(label)}](<{address}>)"


def console_text(value: object, style: str = "") -> Text:
    """``value`` for Rich output, as a ``Text`` (print it, add it to a table, or join it with
    ``Text.assemble``): control characters dropped, and ``[bold]``, ``[/]`` or ``:warning:``
    in a title print as written; they cannot style, link or crash the CLI."""
    return Text(printable(value), style=style)


def labelled(label: str, style: str, message: object) -> Text:
    """``<label> <message>`` for the CLI's error and warning lines: the label styled, the
    message printed as written (:func:`console_text`)."""
    return Text.assemble((label, style), " ", console_text(message))


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet reads as a formula (OWASP, CSV injection): text that
    starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their full-width
    forms) gets a leading single quote. Numbers, ``None`` and other text are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def without_mass_mentions(text: str) -> str:
    """``text`` with mass mentions neutralised: a zero-width space after the ``@`` of
    ``@channel``, ``@here``, ``@everyone``, ``@all`` ... and after the ``<`` of Slack's
    ``<!channel>``, ``<!here>``, ``<!subteam^...>``, Discord's ``<@&role>`` and Google
    Chat's ``<users/all>``, so they read the same and notify no one."""
    text = _MASS_AT.sub("@" + ZERO_WIDTH_SPACE, text)
    return _SPECIAL.sub("<" + ZERO_WIDTH_SPACE, text)
