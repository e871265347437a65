"""Hand-written SQL for the judging hot path.

Each of these replaces an ORM query that cost more to build (1-2 ms of Python per call) than to
run. They return partial model instances made with Model.from_db, so any field not selected is
deferred and loads on access instead of holding a wrong default. Plain SQL that both PostgreSQL
and SQLite accept; row locks are added on PostgreSQL only (SQLite's IMMEDIATE transactions
serialise writers instead)."""

from django.db import connection

from annotation.models import Assignment, Batch, Profile


def _one(sql: str, params) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _all(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _from_db(model, fields: list[str], values):
    """A partial instance; JSON fields parsed the way the ORM would. Model.from_db expects the
    values in the model's field order, whatever order the query selected them in."""
    by_attname = {}
    for name, value in zip(fields, values):
        field = model._meta.get_field(name)
        if hasattr(field, "from_db_value") and value is not None:
            value = field.from_db_value(value, None, connection)
        by_attname[field.attname] = value
    ordered = [f.attname for f in model._meta.concrete_fields if f.attname in by_attname]
    return model.from_db(connection.alias, ordered, [by_attname[a] for a in ordered])


def for_update(alias: str) -> str:
    return f" FOR UPDATE OF {alias}" if connection.vendor == "postgresql" else ""


def token_user(key: str):
    """(user, profile) of an API token, or None; the user's other fields stay deferred."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    row = _one(
        "SELECT u.id, u.username, u.is_active, u.is_staff, u.is_superuser, "
        "p.id, p.role, p.specialty_id, p.is_active, p.can_adjudicate, p.credentials "
        f"FROM authtoken_token t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
        "LEFT JOIN annotation_profile p ON p.user_id = u.id WHERE t.key = %s",
        [key],
    )
    if row is None:
        return None
    user = _from_db(user_model, ["id", "username", "is_active", "is_staff", "is_superuser"], row[:5])
    if row[5] is not None:
        profile = _from_db(Profile, ["id", "role", "specialty", "is_active", "can_adjudicate", "credentials"], row[5:])
        profile.user_id = user.pk
        user.profile = profile
    return user


_BATCH_FIELDS = ["id", "name", "state", "calibration_rate", "lease_seconds", "rubric", "rationale_policy"]
_BATCH_COLUMNS = ", ".join(f"b.{Batch._meta.get_field(f).column}" for f in _BATCH_FIELDS)


def open_batches(*, specialty_id: int, batch_id: int | None) -> dict[int, Batch]:
    sql = f"SELECT {_BATCH_COLUMNS} FROM annotation_batch b WHERE b.state = 'open' AND b.specialty_id = %s"
    params = [specialty_id]
    if batch_id is not None:
        sql += " AND b.id = %s"
        params.append(batch_id)
    return {row[0]: _from_db(Batch, _BATCH_FIELDS, row) for row in _all(sql, params)}


def held_lease_id(*, rater_id: int, now, batch_id: int | None) -> int | None:
    sql = "SELECT id FROM annotation_assignment WHERE rater_id = %s AND status = 'leased' AND expires_at > %s"
    params = [rater_id, now]
    if batch_id is not None:
        sql += " AND batch_id = %s"
        params.append(batch_id)
    row = _one(sql + " LIMIT 1", params)
    return row[0] if row else None


def pair_slots_add(*, pair_id: int, delta: int) -> None:
    _one_write("UPDATE annotation_pair SET open_slots = open_slots + %s WHERE id = %s", [delta, pair_id])


def pair_judged(*, pair_id: int) -> int:
    """Count a pair's first judgment by one more rater; returns the pair's new count."""
    return _one("UPDATE annotation_pair SET judgments_count = judgments_count + 1 WHERE id = %s "
                "RETURNING judgments_count", [pair_id])[0]


def batch_judged(*, batch_id: int, first: bool, regular: bool, pair_judgments: int) -> None:
    """Keep the batch's progress counters for one judgment row. `first`: not a correction;
    `regular`: not a calibration pair; `pair_judgments`: the pair's count after this judgment
    (the pair becomes complete when it reaches raters_per_pair). Every judgment row can change an
    agreement figure, so the same UPDATE bumps data_version (one write of the batch row, not two).
    Run it last in the transaction: every judgment of the batch updates this one row, so its lock
    is held briefly."""
    counted = first and regular
    _one_write(
        "UPDATE annotation_batch SET judgment_rows = judgment_rows + 1, data_version = data_version + 1, "
        "judgments_done = judgments_done + %s, "
        "pairs_complete = pairs_complete + (CASE WHEN %s AND raters_per_pair = %s THEN 1 ELSE 0 END) WHERE id = %s",
        [1 if counted else 0, counted, pair_judgments, batch_id],
    )


def rater_judged(*, rater_id: int, added: int, time_ms_delta: int, timed_delta: int) -> None:
    """Keep a rater's counters over their current judgments (a correction replaces one: added=0)."""
    _one_write(
        "UPDATE annotation_profile SET judgments_count = judgments_count + %s, "
        "time_spent_ms_total = time_spent_ms_total + %s, time_spent_n = time_spent_n + %s WHERE user_id = %s",
        [added, time_ms_delta, timed_delta, rater_id],
    )


def batch_pairs_added(*, batch_id: int, regular: int, calibration: int) -> None:
    _one_write("UPDATE annotation_batch SET pairs_count = pairs_count + %s, calibration_count = calibration_count + %s "
               "WHERE id = %s", [regular, calibration, batch_id])


def batch_data_changed(*, batch_id: int) -> None:
    """Bump the batch's data_version, which keys its cached agreement reports. Call inside the
    transaction of every write that can change a figure, as its last statement: the row lock it
    takes is then held only until the commit."""
    _one_write("UPDATE annotation_batch SET data_version = data_version + 1 WHERE id = %s", [batch_id])


def _one_write(sql: str, params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_ASSIGNMENT_FIELDS = ["id", "pair", "batch", "rater", "a_shown_first", "status", "is_calibration", "expires_at"]


def assignment_locked(*, assignment_id: int, rater_id: int, now) -> tuple[Assignment, bool] | None:
    """The caller's assignment with its batch, row-locked; (assignment, lease_still_valid)."""
    a_cols = ", ".join(f"a.{Assignment._meta.get_field(f).column}" for f in _ASSIGNMENT_FIELDS)
    row = _one(
        f"SELECT {a_cols}, a.expires_at > %s, {_BATCH_COLUMNS} FROM annotation_assignment a "
        f"JOIN annotation_batch b ON b.id = a.batch_id WHERE a.id = %s AND a.rater_id = %s" + for_update("a"),
        [now, assignment_id, rater_id],
    )
    if row is None:
        return None
    n = len(_ASSIGNMENT_FIELDS)
    # expires_at is compared in SQL (as a flag) and kept out of the instance: raw SQLite returns text.
    assignment = _from_db(Assignment, _ASSIGNMENT_FIELDS[:-1], row[: n - 1])
    assignment.batch = _from_db(Batch, _BATCH_FIELDS, row[n + 1:])
    return assignment, bool(row[n])


def judgment_by_key(*, rater_id: int, key: str) -> tuple[int, int] | None:
    """(judgment id, assignment id) already stored under this idempotency key, if any."""
    return _one("SELECT id, assignment_id FROM annotation_judgment WHERE rater_id = %s AND idempotency_key = %s",
                [rater_id, key])


def pairs_left_for_rater(*, batch_id: int, rater_id: int, cap: int) -> int:
    """Open regular pairs of a batch that the rater holds no live or finished assignment on, up to cap."""
    return _one(
        "SELECT COUNT(*) FROM (SELECT p.id FROM annotation_pair p "
        "WHERE p.batch_id = %s AND p.gold_preference IS NULL AND p.open_slots > 0 "
        "AND NOT EXISTS (SELECT 1 FROM annotation_assignment y WHERE y.pair_id = p.id AND y.rater_id = %s "
        "AND y.status <> 'expired') ORDER BY p.open_slots, p.id LIMIT %s) AS open_pairs",
        [batch_id, rater_id, cap],
    )[0]
