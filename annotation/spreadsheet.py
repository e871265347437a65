"""CSV for people who open it in a spreadsheet. A cell that starts with =, +, -, @, a tab or a
carriage return is a formula to Excel, LibreOffice and Google Sheets ("=HYPERLINK(...)" in a
rationale or a batch name would run when an admin opens the download). Every CSV we serve goes
through `csv_text`, which prefixes such text cells with a single quote (OWASP's advice); numbers
stay numbers, so a negative kappa is still -0.12."""

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """The value to write in a CSV cell: text that a spreadsheet would read as a formula gets a
    leading apostrophe; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """Rows as CSV text with a header, every cell (and column name) made spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([spreadsheet_safe(c) for c in columns])
    for row in rows:
        writer.writerow([spreadsheet_safe(row.get(c, "")) for c in columns])
    return out.getvalue()
