"""The access matrices: who may do what, table by table (SQL) and endpoint by endpoint (API).

``render_access_matrix()`` renders both to the Markdown of ``docs/access-matrix.md``;
``tests/security/test_access_matrix_api.py`` fails when that file is out of date.
"""

from pathlib import Path

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "access-matrix.md"
REGENERATE = "UPDATE_ACCESS_MATRIX=1 make test (or UPDATE_ACCESS_MATRIX=1 .venv/bin/python -m pytest tests/security)"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def render_access_matrix() -> str:
    """Both matrices, with their legends, as the Markdown of docs/access-matrix.md."""
    from tests.security import test_access_matrix_api as api
    from tests.security import test_access_matrix_sql as sql

    def sql_cell(cell):
        return cell if cell == sql.NA else f"`{cell}`"

    sql_rows = [
        [f"`{table}`", op, *map(sql_cell, cells)] for table, ops in sql.MATRIX.items() for op, cells in ops.items()
    ]
    api_rows = []
    for key, cells in api.MATRIX.items():
        method, path, body = api.request_of(key)
        request = f"`{path}`" + (f" `{api.body_text(body)}`" if body else "")
        api_rows.append([method.upper(), request, *map(api.cell_text, cells)])
    return "\n".join(
        [
            "# Access matrix",
            "",
            "Generated from `tests/security/test_access_matrix_sql.py` and `tests/security/test_access_matrix_api.py`,",
            "where every cell is executed against a real database; the suite fails when a cell differs, or when a",
            "table or an endpoint has no row. Do not edit by hand: regenerate with `UPDATE_ACCESS_MATRIX=1 make test`.",
            "",
            "## SQL: every table × operation × actor",
            "",
            sql.LEGEND.strip(),
            "",
            markdown_table(["table", "operation", *sql.ACTORS], sql_rows),
            "",
            "## API: every endpoint × method × actor",
            "",
            api.LEGEND.strip(),
            "",
            markdown_table(["method", "path (under `/api/v1/`) and body", *api.ACTORS], api_rows),
            "",
        ]
    )
