"""Admit trials so that a study ends with exactly its budget of finished trials, however many workers run.

A trial takes a slot from the moment it is asked: the study admits a new one only while
``finished + running < budget``. Counting and asking happen under one lock, so two workers can
never both take the last slot:

- PostgreSQL: a session-level advisory lock keyed by the study, held only for the few queries
  of one admission. It opens one short-lived connection per admission.
- SQLite: one process at a time. An exclusive ``flock`` on ``<db>.lock`` is held for the whole
  run; a second process on the same study is refused with a pointer to PostgreSQL.

A running trial holds its slot until it finishes. A worker that dies leaves its trial RUNNING;
on PostgreSQL its heartbeat goes stale, and the next admission marks it failed and queues a
retry with the same parameters, so its slot comes back. Failed trials do not count, so the
study keeps admitting until the budget of COMPLETE + PRUNED trials is met exactly.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from automl_tl.distributed.optuna_tables import schema_mismatches, stale_running_trials
from automl_tl.errors import UserError
from automl_tl.tuning.budget import FINISHED_STATES
from automl_tl.tuning.retries import STALE_REASON, fail_and_requeue


@dataclass
class Slots:
    """The study's trials as admission sees them."""

    finished: int
    running: int
    budget: int | None  # None: unbounded (``search --timeout`` without --trials), until the deadline

    @property
    def done(self) -> bool:
        return self.budget is not None and self.finished >= self.budget

    @property
    def free(self) -> int:
        if self.budget is None:
            return 1  # one more trial can always be asked
        return max(0, self.budget - self.finished - self.running)


def count_slots(study: optuna.Study, budget: int | None) -> Slots:
    trials = study.get_trials(deepcopy=False, states=FINISHED_STATES + (TrialState.RUNNING,))
    running = sum(1 for t in trials if t.state == TrialState.RUNNING)
    return Slots(finished=len(trials) - running, running=running, budget=budget)


class SingleProcessAdmission:
    """A storage that only this process writes to: no lock is needed to count and ask."""

    def admit(self, study: optuna.Study, budget: int | None, grace_s: float) -> tuple[Slots, optuna.Trial | None]:
        """Ask for a trial if a slot is free. ``grace_s``: how long a silent running trial keeps its slot."""
        return self._count_and_ask(study, budget)

    @staticmethod
    def _count_and_ask(study: optuna.Study, budget: int | None) -> tuple[Slots, optuna.Trial | None]:
        slots = count_slots(study, budget)
        return slots, (study.ask() if slots.free > 0 else None)

    def close(self) -> None:
        pass


class SqliteAdmission(SingleProcessAdmission):
    """One process per SQLite study: the lock file is held for as long as this object lives."""

    def __init__(self, db_path: Path) -> None:
        self.lock_path = db_path.with_name(db_path.name + ".lock")
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.lock_path, "a+")
        except OSError as exc:  # a read-only folder or file system, a path under a file, /proc ...
            from automl_tl.storage.urls import database_place_error

            raise database_place_error(db_path, exc) from None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise UserError(
                f"Another automl-tl process is already running the study in {db_path}. SQLite serves one worker "
                f"at a time: wait for it to finish, or put the study in PostgreSQL (--storage postgresql://...) "
                f"to run several workers on it."
            ) from None

    def close(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def advisory_key(study_name: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across machines and Python versions."""
    digest = hashlib.sha256(f"automl-tl study {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdmission(SingleProcessAdmission):
    """Admission across processes and machines through a PostgreSQL advisory lock."""

    def __init__(self, url: str, study_name: str) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        self.key = advisory_key(study_name)
        try:
            self.engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        except ModuleNotFoundError as exc:
            raise UserError(
                f"PostgreSQL's driver {exc.name!r} is not installed. Install it with: pip install 'automl-tl[postgres]'."
            ) from None
        except Exception as exc:  # a malformed URL: SQLAlchemy cannot parse it
            from automl_tl.storage.urls import cannot_open

            raise cannot_open(url, exc) from None
        self._text = sqlalchemy.text
        self._schema_checked = False

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        # No pool: closing the connection ends its session, and with it the lock, whatever happened.
        connection = self.engine.connect()
        try:
            connection.execute(self._text("SELECT pg_advisory_lock(:key)"), {"key": self.key})
            connection.commit()
            if not self._schema_checked:
                self._check_schema(connection)
            yield connection
        finally:
            connection.close()

    def _check_schema(self, connection: Any) -> None:
        """Once per process: Optuna's tables still have what automl_tl.distributed.optuna_tables reads."""
        problems = schema_mismatches(connection)
        if problems:
            raise UserError(
                f"The study's database does not have the Optuna tables that automl-tl's admission reads: "
                f"{'; '.join(problems)}. Optuna {optuna.__version__} is not the major version automl-tl was tested "
                f"with: install the Optuna version that automl-tl's pyproject.toml pins, then run again."
            )
        self._schema_checked = True

    def _fail_stale(self, connection: Any, study: optuna.Study, grace_s: float) -> None:
        for trial_id in stale_running_trials(connection, study._study_id, grace_s):
            fail_and_requeue(study, trial_id, STALE_REASON)

    def admit(self, study: optuna.Study, budget: int | None, grace_s: float) -> tuple[Slots, optuna.Trial | None]:
        with self._locked() as connection:
            self._fail_stale(connection, study, grace_s)
            slots, trial = self._count_and_ask(study, budget)
            if trial is not None:
                storage: Any = study._storage  # an RDBStorage (maybe cached): it records heartbeats
                storage.record_heartbeat(trial._trial_id)
            return slots, trial

    def close(self) -> None:
        self.engine.dispose()


class Heartbeat:
    """Records a running trial's heartbeat every ``interval`` seconds from a background thread."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self.beat, self.interval = beat, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="automl-tl heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # the database is away; the trial's next storage write reports it
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)



def wait_times(poll: float) -> Iterator[float]:
    """Sleep between admissions while every slot is taken: short at first, then ``poll``."""
    delay = min(0.2, poll)
    while True:
        yield delay
        delay = min(poll, delay * 2)
