"""`dogbreed.terminal.text_table`: the CLI's tables, aligned by rich, cells as plain text."""

from __future__ import annotations

from dogbreed.terminal import text_table


def test_columns_line_up_under_their_headers_and_numbers_align_right() -> None:
    text = text_table(
        ("RUN", "ACCURACY", "MODEL"), [("run-1", "91.2%", "a"), ("run-22", "8.0%", "b")], right=(1,)
    )

    header, rule, first, second = text.splitlines()
    assert header.split() == ["RUN", "ACCURACY", "MODEL"]
    assert set(rule.strip()) == {"─"}
    # the right-aligned column ends where its header ends; the others start where theirs start
    assert first.index("91.2%") + len("91.2%") == header.index("ACCURACY") + len("ACCURACY")
    assert second.index("8.0%") + len("8.0%") == header.index("ACCURACY") + len("ACCURACY")
    assert first.index("a") == header.index("MODEL") == second.index("b")
    assert first.index("run-1") == second.index("run-22") == 0


def test_cells_are_plain_text_never_markup_and_long_cells_are_not_folded() -> None:
    long_name = "dogbreed-local-" + "x" * 150
    text = text_table(("NAME", "NOTE"), [(long_name, "[bold]literal[/bold]"), ("short", 3)], indent=2)

    lines = text.splitlines()
    assert len(lines) == 4  # one line per row: piped output is never wrapped
    assert long_name in lines[2] and "[bold]literal[/bold]" in lines[2]
    assert all(line.startswith("  ") for line in lines)
    assert lines[3].split() == ["short", "3"]


def test_a_table_without_rows_is_its_headers() -> None:
    assert text_table(("A", "B"), []).splitlines()[0].split() == ["A", "B"]
