"""automl_tl.distributed.optuna_tables reads Optuna's internal tables: check them against the schema
Optuna creates, so that an Optuna release that changes it fails here, naming the table and column."""

from __future__ import annotations

import re

import optuna
import pytest
import sqlalchemy

from automl_tl.distributed import optuna_tables
from automl_tl.distributed.optuna_tables import COLUMNS_USED, STALE_SQL, schema_mismatches, stale_running_trials

ALIASES = {"t": "trials", "h": "trial_heartbeats"}  # as STALE_SQL names its tables


def live_schema_problems(url: str) -> list[str]:
    optuna.storages.RDBStorage(url)  # creates Optuna's tables as this Optuna version defines them
    engine = sqlalchemy.create_engine(url)
    try:
        return schema_mismatches(engine)
    finally:
        engine.dispose()


def test_columns_used_lists_every_column_the_sql_reads():
    tables = dict(re.findall(r"(?:FROM|JOIN) (\w+) (\w)\b", STALE_SQL))
    assert {alias: table for table, alias in tables.items()} == ALIASES
    referenced = {(ALIASES[alias], column) for alias, column in re.findall(r"\b([th])\.(\w+)", STALE_SQL)}
    declared = {(table, column) for table, columns in COLUMNS_USED.items() for column in columns}
    assert referenced <= declared, f"STALE_SQL reads columns COLUMNS_USED does not list: {referenced - declared}"
    assert f"'{optuna_tables.RUNNING}'" in STALE_SQL


def test_optunas_sqlite_schema_has_every_table_and_column_we_read(tmp_path):
    problems = live_schema_problems(f"sqlite:///{tmp_path / 'schema.db'}")
    assert not problems, f"Optuna {optuna.__version__} changed the tables automl-tl reads: " + "; ".join(problems)


def test_optuna_stores_a_running_trial_under_the_state_name_the_sql_compares(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    optuna.create_study(storage=url).ask()
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        states = connection.execute(sqlalchemy.text("SELECT state FROM trials")).scalars().all()
    engine.dispose()
    assert states == [optuna_tables.RUNNING], f"Optuna {optuna.__version__} stores a running trial's state as {states}"


def test_a_missing_column_or_table_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'changed.db'}"
    optuna.storages.RDBStorage(url)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("ALTER TABLE trial_heartbeats RENAME COLUMN heartbeat TO beat_at"))
    assert schema_mismatches(engine) == [
        "Optuna's table 'trial_heartbeats' has no column 'heartbeat' (columns there: beat_at, trial_heartbeat_id, trial_id)"]
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE trial_heartbeats"))
    assert schema_mismatches(engine)[0].startswith("Optuna's table 'trial_heartbeats' is missing")
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning", "ignore::optuna.exceptions.ExperimentalWarning")
def test_on_postgresql_the_schema_matches_and_the_stale_query_finds_silent_trials(postgres_url):
    problems = live_schema_problems(postgres_url)
    assert not problems, f"Optuna {optuna.__version__} changed the tables automl-tl reads: " + "; ".join(problems)
    storage = optuna.storages.RDBStorage(postgres_url, heartbeat_interval=60)
    study = optuna.create_study(storage=storage, study_name="schema")
    silent, beating = study.ask(), study.ask()
    storage.record_heartbeat(beating._trial_id)
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert stale_running_trials(connection, study._study_id, grace_s=60.0) == [silent._trial_id]
            assert sorted(stale_running_trials(connection, study._study_id, grace_s=-3600.0)) == sorted(
                [silent._trial_id, beating._trial_id])  # a heartbeat older than "an hour from now" is stale too
    finally:
        engine.dispose()
