"""Many workers on one study, against a real PostgreSQL: exact budgets, killed workers, database restarts.

The stub framework stands in for training: what is under test here is coordination. One test at the
end runs the real PyTorch adapter with two workers and exports the best model.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl_tl.tuning.retries import MAX_RETRIES
from tests.conftest import STUB_PLUGIN
from tests.support.postgres_server import PASSWORD

pytestmark = pytest.mark.postgres

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "automl_tl", *args]


def environment(url: str | None, **extra: str) -> dict[str, str]:
    values = {**os.environ, "STUB_EPOCH_SECONDS": "0.15", "PYTHONUNBUFFERED": "1", **extra}
    if url is not None:
        values["AUTOML_TL_STORAGE"] = url
    return values


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def prepare(data: Path, url: str, name: str, trials: int, workers: int = 0, heartbeat: int = 1) -> subprocess.CompletedProcess:
    """Create the study once (``--workers 0``), as a cluster's set-up step would."""
    result = run(cli("search", str(data), "--study", name, "--trials", str(trials), "--epochs", "2", "--image-size", "16",
                     "--framework", "stub", "--plugin", STUB_PLUGIN, "--workers", str(workers), "--heartbeat", str(heartbeat)),
                 environment(url))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def start_worker(url: str, name: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(cli("worker", "--study", name, "--plugin", STUB_PLUGIN, "--lines"),
                            env=environment(url, **extra), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until_joined(worker: subprocess.Popen) -> bool:
    """Read the worker's output until it has joined the study; False if it exits first."""
    for line in worker.stdout:
        if "joins study" in line:
            return True
    return False


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def check_invariants(study: optuna.Study, budget: int) -> dict[str, int]:
    """Exactly ``budget`` finished; numbers unique and gapless; nothing left running or waiting;
    the best value is the best completed value; every failed trial was retried or gave up."""
    trials = study.get_trials(deepcopy=False)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(len(trials)))
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == budget
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    completed = [t.value for t in trials if t.state == TrialState.COMPLETE]
    assert study.best_value == max(completed)
    fresh = [tuple(sorted(t.params.items())) for t in trials if "retry_of" not in t.user_attrs and t.params]
    assert len(set(fresh)) == len(fresh), "two workers proposed the same parameters"
    failed = [t for t in trials if t.state == TrialState.FAIL]
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", [])}
    unaccounted = [t.number for t in failed if t.number not in retried and len(t.system_attrs.get("retry_history", [])) < MAX_RETRIES]
    details = [(t.number, t.user_attrs, t.system_attrs, t.params) for t in failed if t.number in unaccounted]
    assert not unaccounted, f"failed trials neither retried nor given up: {details}"
    return {"trials": len(trials), "finished": len(finished), "failed": len(failed), "retried": len(retried)}


def test_four_workers_finish_exactly_the_budget(small_sample, postgres_url):
    result = run(cli("search", str(small_sample), "--study", "four", "--trials", "40", "--epochs", "2", "--image-size", "16",
                     "--framework", "stub", "--plugin", STUB_PLUGIN, "--workers", "4", "--heartbeat", "1"),
                 environment(postgres_url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 workers finished the study" in result.stdout
    counts = check_invariants(load(postgres_url, "four"), 40)
    assert counts["failed"] == 0
    assert PASSWORD not in result.stdout + result.stderr


def test_a_worker_killed_again_and_again_loses_no_trial_and_the_budget_is_exact(small_sample, postgres_url, tmp_path):
    """Three steady workers, and a fourth that is SIGKILLed every few seconds and replaced."""
    prepare(small_sample, postgres_url, "kills", trials=40)
    steady = [start_worker(postgres_url, "kills", STUB_EPOCH_SECONDS="1.0") for _ in range(3)]
    victim = start_worker(postgres_url, "kills", STUB_EPOCH_SECONDS="1.0")
    kills, rng = 0, random.Random(4)
    started = time.perf_counter()
    while time.perf_counter() - started < 240 and any(w.poll() is None for w in steady):
        if not wait_until_joined(victim):
            break  # the study met its budget while the victim was starting
        time.sleep(rng.uniform(0.5, 3.0))  # a trial takes about 2 s: most kills land mid-trial
        if victim.poll() is not None:
            break
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        victim = start_worker(postgres_url, "kills", STUB_EPOCH_SECONDS="1.0")
    outputs = [w.communicate(timeout=180)[0] for w in [*steady, victim]]
    assert all(w.returncode == 0 for w in [*steady, victim]), "\n".join(outputs)
    wall = time.perf_counter() - started
    study = load(postgres_url, "kills")
    counts = check_invariants(study, 40)
    failed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL]
    assert kills >= 3 and 1 <= len(failed) <= kills  # a kill during start-up leaves nothing to retry
    assert all("heartbeats" in t.user_attrs["fail_reason"] for t in failed)
    figures = {"kills": kills, "wall_s": round(wall, 1), **counts}
    (tmp_path / "kill_figures.json").write_text(json.dumps(figures))
    print(f"kill test: {figures}")


def test_sigterm_hands_the_running_trial_back_to_the_queue(small_sample, postgres_url):
    prepare(small_sample, postgres_url, "term", trials=6)
    worker = start_worker(postgres_url, "term", STUB_EPOCH_SECONDS="3")
    deadline = time.time() + 60
    while not load(postgres_url, "term").get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        assert time.time() < deadline and worker.poll() is None
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=60)[0]
    assert worker.returncode == 130, output
    trials = load(postgres_url, "term").get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "interrupted" in failed[0].user_attrs["fail_reason"]
    retry = [t for t in trials if t.state == TrialState.WAITING]
    assert len(retry) == 1 and retry[0].params == failed[0].params and retry[0].user_attrs["retry_of"] == failed[0].number


def test_a_database_restart_stops_the_workers_cleanly_and_resume_ends_at_the_budget(small_sample, postgres_server, postgres_url):
    prepare(small_sample, postgres_url, "restart", trials=30)
    workers = [start_worker(postgres_url, "restart") for _ in range(3)]
    deadline = time.time() + 120
    while len(load(postgres_url, "restart").get_trials(deepcopy=False, states=FINISHED)) < 8:
        assert time.time() < deadline
        time.sleep(0.3)
    postgres_server.stop()
    try:
        outputs = [w.communicate(timeout=120)[0] for w in workers]
    finally:
        postgres_server.start()
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 2, output
        message = " ".join(output.split())  # rich wraps long lines
        assert "Lost the study database" in message and "run the same command again" in message
        assert PASSWORD not in output
    before = len(load(postgres_url, "restart").get_trials(deepcopy=False, states=FINISHED))
    assert 8 <= before < 30
    resumed = [start_worker(postgres_url, "restart") for _ in range(2)]
    outputs = [w.communicate(timeout=180)[0] for w in resumed]
    assert all(w.returncode == 0 for w in resumed), "\n".join(outputs)
    check_invariants(load(postgres_url, "restart"), 30)


def test_raising_the_budget_on_resume_adds_exactly_that_many_trials(small_sample, postgres_url):
    prepare(small_sample, postgres_url, "grow", trials=6, workers=2)
    assert len(load(postgres_url, "grow").get_trials(deepcopy=False, states=FINISHED)) == 6
    prepare(small_sample, postgres_url, "grow", trials=9, workers=2)
    check_invariants(load(postgres_url, "grow"), 9)


def test_a_worker_with_other_data_is_refused(small_sample, medium_sample, postgres_url):
    prepare(small_sample, postgres_url, "print", trials=4)
    result = run(cli("worker", "--study", "print", "--data", str(medium_sample), "--plugin", STUB_PLUGIN),
                 environment(postgres_url))
    assert result.returncode == 2
    assert "different setup" in result.stderr and "the data changed" in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


def test_a_worker_for_a_study_that_was_never_prepared_says_how_to_prepare_it(postgres_url):
    result = run(cli("worker", "--study", "nothing", "--plugin", STUB_PLUGIN), environment(postgres_url))
    assert result.returncode == 2
    assert "--workers 0" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_database_is_a_clear_error_without_the_password(small_sample, postgres_server):
    url = postgres_server.url().replace(f":{postgres_server.port}/", ":1/")
    for args in (cli("worker", "--study", "x"), cli("search", str(small_sample), "--framework", "stub", "--plugin",
                                                     STUB_PLUGIN, "--workers", "2", "--storage", url)):
        result = run(args, environment(url))
        assert result.returncode == 2, result.stderr
        assert "Cannot open the study storage" in result.stderr
        assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_real_workers_share_a_study_and_the_best_model_exports(small_sample, postgres_url, tmp_path):
    env = environment(postgres_url)
    search = run(cli("search", str(small_sample), "--study", "real", "--trials", "4", "--epochs", "2", "--image-size", "32",
                     "--backbones", "mobilenet_v2", "--workers", "2", "--artifacts", str(tmp_path / "shared")), env, timeout=600)
    assert search.returncode == 0, search.stdout + search.stderr
    check_invariants(load(postgres_url, "real"), 4)
    out = tmp_path / "export"
    export = run(cli("export", "real", "--format", "onnx", "-o", str(out)), env)
    assert export.returncode == 0, export.stdout + export.stderr
    image = next((small_sample / "cat").glob("*.png"))
    predict = run(cli("predict", str(out), str(image), "--json"), env)
    assert predict.returncode == 0 and json.loads(predict.stdout)[0]["top"], predict.stderr
