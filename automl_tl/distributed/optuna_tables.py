"""The one place automl-tl reads Optuna's own database tables directly.

Optuna's storage API has no query for "the RUNNING trials whose heartbeat is older than N
seconds", and admission needs that answer inside its advisory lock, in one round trip. So this
module holds the only SQL on Optuna's tables (``trials`` and ``trial_heartbeats``), and
``COLUMNS_USED`` lists every table and column it touches. Those tables are Optuna's internals,
not its API: pyproject.toml pins Optuna's major version, ``schema_mismatches`` names whatever a
live database lacks, admission checks it once per process before its first query, and
tests/distributed/test_optuna_schema.py checks it against the tables ``optuna.storages.RDBStorage``
creates, so a schema change fails loudly instead of as an SQL error deep in a worker.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

__all__ = ["COLUMNS_USED", "RUNNING", "STALE_SQL", "schema_mismatches", "stale_running_trials"]

COLUMNS_USED: dict[str, tuple[str, ...]] = {
    "trials": ("trial_id", "study_id", "state"),
    "trial_heartbeats": ("trial_id", "heartbeat"),
}
RUNNING = TrialState.RUNNING.name  # Optuna's state column stores the enum's name

# RUNNING trials whose heartbeat is older than the grace period, or that have none at all. Every
# admission writes the first heartbeat before it releases the lock, so under the lock a trial with
# none belongs to a worker that died in those few milliseconds. Optuna writes heartbeats with the
# database's clock (a timestamp without time zone), so they are compared with LOCALTIMESTAMP.
# PostgreSQL only (make_interval): SQLite studies have one process, and no heartbeats to judge.
STALE_SQL = (
    "SELECT t.trial_id FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
    f"WHERE t.study_id = :study_id AND t.state = '{RUNNING}' "
    "AND (h.trial_id IS NULL OR h.heartbeat < LOCALTIMESTAMP - make_interval(secs => :grace))"
)


def stale_running_trials(connection: Any, study_id: int, grace_s: float) -> list[int]:
    """The ids of the study's RUNNING trials whose worker has been silent for over ``grace_s``
    seconds (``connection``: an open SQLAlchemy connection to the study's PostgreSQL database)."""
    import sqlalchemy

    rows = connection.execute(sqlalchemy.text(STALE_SQL), {"study_id": study_id, "grace": grace_s}).fetchall()
    return [int(trial_id) for (trial_id,) in rows]


def schema_mismatches(bind: Any) -> list[str]:
    """What the database behind ``bind`` (an SQLAlchemy engine or connection) lacks of the tables
    and columns in ``COLUMNS_USED``: one sentence per missing table or column, naming it; empty
    when everything this module's SQL reads is there."""
    import sqlalchemy

    inspector = sqlalchemy.inspect(bind)
    tables = set(inspector.get_table_names())
    problems = []
    for table, columns in COLUMNS_USED.items():
        if table not in tables:
            problems.append(f"Optuna's table {table!r} is missing (tables there: {', '.join(sorted(tables)) or 'none'})")
            continue
        present = {column["name"] for column in inspector.get_columns(table)}
        problems += [f"Optuna's table {table!r} has no column {column!r} (columns there: {', '.join(sorted(present))})"
                     for column in columns if column not in present]
    return problems
