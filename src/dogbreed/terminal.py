"""What the CLI shows on a terminal, through rich: aligned tables as text, and a spinner on stderr
while a command waits.

    print(text_table(("RUN", "ACCURACY"), [("run-1", "91.2%")], right=(1,)))
    with waiting("starting the local cloud"):
        ...
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.table import Table

# Wide enough that no row is ever cut or folded: a row wider than the terminal wraps there, as a
# long line of text does, and a piped table (a file, `| grep`, a test) keeps one line per row.
_RENDER_WIDTH = 1000


def text_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    right: Iterable[int] = (),
    indent: int = 0,
) -> str:
    """`headers` over a rule, then `rows`, columns aligned (the `right` ones to the right); cells are
    plain text (no rich markup)."""
    right_aligned = set(right)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 2, 0, 0))
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in right_aligned else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=_RENDER_WIDTH, color_system=None, markup=False, highlight=False, emoji=False
    )
    console.print(table)
    text = buffer.getvalue()
    return "\n".join(" " * indent + line.rstrip() for line in text.rstrip("\n").splitlines())


@contextmanager
def waiting(message: str) -> Iterator[None]:
    """A spinner with `message` on stderr while the block runs (on a terminal; else one line)."""
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        print(f"{message} ...", file=sys.stderr, flush=True)
        yield
        return
    with console.status(message):
        yield
