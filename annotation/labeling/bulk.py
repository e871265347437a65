"""Fast bulk inserts. On PostgreSQL rows go in with COPY under ids taken from the table's own
sequence (so they are ours alone, even with concurrent writers); elsewhere bulk_create."""

import json
from collections.abc import Sequence

from django.db import connection, models


def bulk_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple]) -> list[int]:
    """Insert rows (tuples in `columns` order, database column names) and return their new ids
    in the same order. JSON values may be given as Python objects (None is SQL NULL). Call inside a transaction."""
    if not rows:
        return []
    table = model._meta.db_table
    json_columns = {i for i, c in enumerate(columns) if isinstance(_field_by_column(model, c), models.JSONField)}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)]
            )
            ids = [r[0] for r in cursor.fetchall()]
            column_sql = ", ".join(['"id"', *(f'"{c}"' for c in columns)])
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f'COPY "{table}" ({column_sql}) FROM STDIN') as copy:
                for new_id, row in zip(ids, rows):
                    # None stays SQL NULL (as the ORM stores it), not the JSON value null.
                    copy.write_row((new_id, *(json.dumps(v) if i in json_columns and v is not None else v
                                              for i, v in enumerate(row))))
        return ids
    fields = [_field_by_column(model, c) for c in columns]
    objs = [model(**{f.attname: v for f, v in zip(fields, row)}) for row in rows]
    created = model.objects.bulk_create(objs, batch_size=2000)
    return [o.pk for o in created]


def _field_by_column(model, column: str):
    for field in model._meta.concrete_fields:
        if field.column == column:
            return field
    raise ValueError(f"{model.__name__} has no column {column!r}")
