"""Workers on one PostgreSQL study: wall time of 1 worker, 4 workers, and 4 workers with one killed again and again.

Uses the stub framework (each epoch sleeps, like a trial that waits on its accelerator), so the
figures measure coordination, not training. Starts its own PostgreSQL server like the tests do.

    .venv/bin/python bench/workers.py [--trials 40] [--epoch-seconds 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402

STUB = str(ROOT / "tests" / "stub_plugin.py")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def automl_tl(*args: str) -> list[str]:
    return [sys.executable, "-m", "automl_tl", *args]


def prepare(data: str, url: str, name: str, trials: int, env: dict[str, str]) -> None:
    subprocess.run(automl_tl("search", data, "--study", name, "--trials", str(trials), "--epochs", "2", "--image-size", "16",
                             "--framework", "stub", "--plugin", STUB, "--workers", "0", "--heartbeat", "1"),
                   env=env, check=True, capture_output=True)


def worker(name: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(automl_tl("worker", "--study", name, "--plugin", STUB, "--lines"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def joined(process: subprocess.Popen) -> bool:
    return any("joins study" in line for line in process.stdout)


def run(data: str, server: PostgresServer, name: str, trials: int, workers: int, kill: bool, env: dict[str, str]) -> dict:
    url = server.create_database(name)
    env = {**env, "AUTOML_TL_STORAGE": url}
    prepare(data, url, name, trials, env)
    started = time.perf_counter()
    steady = [worker(name, env) for _ in range(workers - 1 if kill else workers)]
    kills, rng = 0, random.Random(4)
    if kill:
        victim = worker(name, env)
        while any(p.poll() is None for p in steady) and joined(victim):
            time.sleep(rng.uniform(0.5, 3.0))
            if victim.poll() is not None:
                break
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            kills += 1
            victim = worker(name, env)
        steady.append(victim)
    for process in steady:
        process.communicate()
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=url)
    all_trials = study.get_trials(deepcopy=False)
    return {"workers": workers, "kills": kills, "wall_s": round(wall, 1),
            "finished": sum(t.state in FINISHED for t in all_trials),
            "failed": sum(t.state == TrialState.FAIL for t in all_trials),
            "retries": sum("retry_of" in t.user_attrs for t in all_trials),
            "left_running_or_waiting": sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in all_trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epoch-seconds", type=float, default=1.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "workers.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import tempfile

    from automl_tl.data.sample import write_sample

    data = str(write_sample(Path(tempfile.mkdtemp()) / "animal_mnist", limit_per_class=20, progress=False))
    env = {**os.environ, "STUB_EPOCH_SECONDS": str(args.epoch_seconds), "PYTHONUNBUFFERED": "1",
           "AUTOML_TL_STUDIES": tempfile.mkdtemp(prefix="automl-tl-workers-")}  # never the user's studies
    server = PostgresServer()
    try:
        rows = [run(data, server, "one", args.trials, 1, False, env),
                run(data, server, "four", args.trials, 4, False, env),
                run(data, server, "four_killed", args.trials, 4, True, env)]
    finally:
        server.close()
    single = rows[0]["wall_s"]
    for row in rows:
        label = f"{row['workers']} worker(s)" + (f", one SIGKILLed {row['kills']} times" if row["kills"] else "")
        print(f"{label:<40} {row['wall_s']:>6}s  ({single / row['wall_s']:.2f}x a single worker)  finished {row['finished']}, "
              f"failed {row['failed']}, retries {row['retries']}, left running/waiting {row['left_running_or_waiting']}")
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
