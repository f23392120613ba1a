"""Untrusted text stays text: in Markdown, in the terminal, in CSV and in chat notifications.

Markdown is checked with a real CommonMark parser (markdown-it, with GFM tables and
strikethrough), Rich output with Rich itself, CSV with the csv module."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from rich.console import Console
from rich.text import Text

from axtrace.text import (
    ZERO_WIDTH_SPACE,
    console_text,
    csv_cell,
    markdown_link,
    markdown_text,
    printable,
    without_mass_mentions,
)

MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
# Any text, weighted towards the characters that make markup.
MARKUPISH = st.sampled_from([
    *"\\`*_{}[]()<>#!|~&$@:=+-.\n\r\t\x1b\x00\x7f ", "http://", "https://", "www.", "[/]",
    "[bold]", "<img src=x>", "&amp;", "&#91;", "1. ", "- ", "> ", "# ", "| --- |", "\x1b[2J",
    "\x1b]8;;http://x\x1b\\", "\u202e", "\ud800",
    ":warning:", "@channel", "<!here>", "@everyone", "="])
ANY_TEXT = st.lists(st.text(max_size=6) | MARKUPISH, max_size=12).map("".join)


def inline_tokens(markdown: str) -> list[str]:
    """Types of every inline token of ``markdown``."""
    return [child.type for token in MD.parse(markdown) if token.children
            for child in token.children]


def inline_text(markdown: str) -> str:
    return "".join(child.content for token in MD.parse(markdown) if token.children
                   for child in token.children)


# --------------------------------------------------------------------------- Markdown


@pytest.mark.parametrize("attack", [
    "[click](http://evil.example)", "![x](http://evil.example/pixel.png)",
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "**bold** _em_ ~~gone~~",
    "`code`", "&lt;b&gt;", "x | 99 | 2026-01-01 | resolved | mallory |",
    "line one\n| 9 | fake | row |\n", "<http://evil.example>", "\\[escaped\\]",
])
def test_markdown_shows_links_images_html_and_emphasis_as_written(attack: str) -> None:
    markdown = f"Title: {markdown_text(attack)}."
    assert set(inline_tokens(markdown)) == {"text"}
    assert inline_text(markdown) == f"Title: {printable(attack)}."


@pytest.mark.parametrize(("value", "shown"), [
    ("- item", "\\- item"), ("1. first", "1\\. first"), ("  + x", "  \\+ x"),
    ("> quote", "\\> quote"), ("# heading", "\\# heading"),
    ("https://evil.example/x", "https\\://evil.example/x"),
    ("see www.evil.example", "see www\\.evil.example"), ("ops@evil.example", "ops\\@evil.example"),
    ("berlin-plant 2.4.1", "berlin-plant 2.4.1"),
])
def test_markdown_escapes_block_starts_and_autolinks_and_leaves_plain_text_alone(
    value: str, shown: str,
) -> None:
    assert markdown_text(value) == shown


def test_markdown_and_console_drop_control_characters_and_keep_one_line() -> None:
    evil = "a\x1b[31mred\x1b[0m\x00\x07\u202eb\r\nc\td"
    assert printable(evil) == "a[31mred[0mb c d"
    assert "\x1b" not in markdown_text(evil)
    assert "\x1b" not in console_text(evil)
    assert printable("\ud800 lone surrogate") == "\ufffd lone surrogate"


@given(ANY_TEXT)
def test_any_text_is_one_plain_text_run_in_a_markdown_paragraph(value: str) -> None:
    markdown = f"x {markdown_text(value)} y"
    assert set(inline_tokens(markdown)) <= {"text"}
    assert inline_text(markdown) == f"x {printable(value)} y".strip()


@given(ANY_TEXT, ANY_TEXT)
def test_any_text_stays_in_its_markdown_table_cell(first: str, second: str) -> None:
    markdown = (f"| a | b | c |\n|---|---|---|\n"
                f"| 1 | {markdown_text(first)} | {markdown_text(second)} |\n")
    tokens = MD.parse(markdown)
    cells = [t for t in tokens if t.type == "inline"]
    assert [t.type for t in tokens].count("tr_open") == 2
    assert ["".join(child.content for child in c.children or []) for c in cells] == [
        "a", "b", "c", "1", printable(first).strip(), printable(second).strip()]
    assert all(child.type == "text" for c in cells for child in c.children or [])


def test_a_link_is_made_only_to_http_addresses_and_cannot_leave_its_brackets() -> None:
    link = markdown_link("evidence", "https://x.example/a b)(<c>|d")
    tokens = inline_tokens(f"see {link}.")
    assert tokens.count("link_open") == 1
    href = next(child.attrs["href"] for token in MD.parse(f"see {link}.") if token.children
                for child in token.children if child.type == "link_open")
    assert href == "https://x.example/a%20b%29%28%3Cc%3E%7Cd"
    assert "link_open" not in inline_tokens(markdown_link("evidence", "javascript:alert(1)"))
    assert markdown_link("evidence", None, empty="no evidence link") == "no evidence link"


# --------------------------------------------------------------------------- Rich


def printed(*parts: object) -> str:
    """What Rich prints for ``parts`` (one line, no wrapping)."""
    console = Console(record=True, width=80, soft_wrap=True, emoji=False)
    console.print(*parts)
    return console.export_text().removesuffix("\n")


@pytest.mark.parametrize("attack", [
    "[/]", "[bold", "[red]x[/red] [/bold]", "[link=http://evil.example]click[/link]",
    "trailing backslash \\", "\\[not a tag]", "\\[bold]", "\\\\[/]", "[@click=app.quit]x[/]",
    ":warning: :thumbs_up:",
])
def test_rich_markup_in_text_prints_as_written(attack: str) -> None:
    line = Text.assemble(("Alert 1", "bold"), " ", console_text(attack), " ",
                         console_text("end", style="red"))
    assert printed(line) == f"Alert 1 {attack} end"


@given(ANY_TEXT)
def test_any_text_prints_in_rich_exactly_as_its_printable_self(value: str) -> None:
    assert printed(console_text(value)) == printable(value)


def test_the_clis_print_emoji_codes_as_written() -> None:
    from axtrace import cli
    from axtrace.reports import cli as report_cli

    for console in (cli.console, cli.err, report_cli.console, report_cli.err):
        with console.capture() as captured:
            console.print("a :warning: b")
        assert captured.get().strip() == "a :warning: b"


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("formula", [
    "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\tx", "\rx",
    "\uff1d1+1",
])
def test_csv_cells_that_start_like_a_formula_get_a_leading_quote(formula: str) -> None:
    assert csv_cell(formula) == "'" + formula


@pytest.mark.parametrize("value", ["berlin-plant", "Crack on line 3", "", 42, -1.5, None])
def test_other_csv_cells_are_unchanged(value: object) -> None:
    assert csv_cell(value) == value


@given(ANY_TEXT)
def test_no_csv_cell_starts_a_formula_and_the_text_survives_a_round_trip(value: str) -> None:
    cell = csv_cell(value)
    assert isinstance(cell, str)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (value, "'" + value)
    out = io.StringIO()
    csv.writer(out).writerow([cell])
    assert next(csv.reader(io.StringIO(out.getvalue()), strict=True)) == [cell]


# --------------------------------------------------------------------------- mentions

MASS = re.compile(r"(?i)@(?:_?\*\*)?(?:channel|here|everyone|all)\b|<!|<@&|<users/all>")


@pytest.mark.parametrize("mention", [
    "@channel", "@here", "@everyone", "@all", "@Channel", "<!channel>", "<!here|here>",
    "<!everyone>", "<!subteam^S123|ops>", "@**all**", "@_**everyone**", "<@&1234>",
    "<users/all>",
])
def test_mass_mentions_are_neutralised(mention: str) -> None:
    quiet = without_mass_mentions(f"Alert: {mention} look")
    assert MASS.search(quiet) is None
    assert quiet.replace(ZERO_WIDTH_SPACE, "") == f"Alert: {mention} look"


@pytest.mark.parametrize("text", ["@anna please look", "mail ops@example.com", "@allison",
                                  "<https://x.example|link>", "all hands"])
def test_other_text_is_unchanged(text: str) -> None:
    assert without_mass_mentions(text) == text


@given(ANY_TEXT)
def test_any_text_loses_its_mass_mentions_and_nothing_else(value: str) -> None:
    quiet = without_mass_mentions(value)
    assert MASS.search(quiet) is None
    assert quiet.replace(ZERO_WIDTH_SPACE, "") == value.replace(ZERO_WIDTH_SPACE, "")
    assert without_mass_mentions(quiet) == quiet
