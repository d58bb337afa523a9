"""Markdown tables for the benchmark scripts' reports (pandas' ``to_markdown`` needs tabulate, not installed here)."""

import pandas as pd


def cell(value: object) -> str:
    """:return: ``value`` as a table cell: floats with 3 significant digits, or as integers from 100 on."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def markdown_table(table: pd.DataFrame) -> str:
    """:return: ``table`` (its columns and rows, not its index) as a markdown table."""
    lines = [list(table.columns), ["---"] * table.shape[1], *([cell(v) for v in row] for row in table.itertuples(index=False))]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)
