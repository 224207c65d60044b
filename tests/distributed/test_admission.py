"""Admission and retries without a database server: slot arithmetic, lock keys, requeued trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from automl_tl.distributed.admission import Slots, advisory_key, count_slots
from automl_tl.storage.urls import redact, scrub
from automl_tl.study_record import RETRY_OF_ATTR
from automl_tl.tuning.retries import MAX_RETRIES, requeue, retry_history


def test_slots_count_running_trials_against_the_budget():
    assert Slots(finished=7, running=3, budget=10).free == 0
    assert Slots(finished=7, running=2, budget=10).free == 1
    assert not Slots(finished=7, running=3, budget=10).done  # running trials may still fail and free their slot
    assert Slots(finished=10, running=0, budget=10).done
    assert Slots(finished=12, running=1, budget=10).free == 0


def test_count_slots_sees_finished_and_running_but_not_failed_or_waiting():
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask(), 0.5)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    study.ask()
    study.enqueue_trial({"x": 1.0})
    slots = count_slots(study, budget=5)
    assert (slots.finished, slots.running, slots.free) == (2, 1, 2)


def test_advisory_keys_are_stable_signed_64_bit_and_differ_by_study():
    key = advisory_key("flowers")
    assert key == advisory_key("flowers") and key != advisory_key("flowers2")
    assert -(2 ** 63) <= key < 2 ** 63


def test_a_requeued_trial_keeps_its_parameters_and_its_history_up_to_the_limit():
    study = optuna.create_study(direction="maximize")
    trial = study.ask({"lr": FloatDistribution(1e-4, 1e-1, log=True)})
    trial.set_user_attr("smart_start", "small and similar: freeze everything")
    frozen = study.tell(trial, state=TrialState.FAIL)
    attempts = 1
    while requeue(study, frozen, "killed"):
        retry = study.ask()  # takes the WAITING copy first
        assert retry.params == frozen.params
        assert retry.user_attrs[RETRY_OF_ATTR] == frozen.number and retry.user_attrs["smart_start"].startswith("small")
        frozen = study.tell(retry, state=TrialState.FAIL)
        attempts += 1
    assert attempts == MAX_RETRIES + 1  # the first attempt and its retries
    assert retry_history(frozen) == list(range(MAX_RETRIES))
    assert not study.get_trials(states=(TrialState.WAITING,))


@pytest.mark.parametrize("url, secret", [
    ("postgresql://ann:hunter2@db:5432/s", "hunter2"),
    ("postgresql://ann:p%40ss%2Fw@db/s", "p@ss/w"),
    ("postgresql://ann@db/s?password=xyzzy&sslmode=require", "xyzzy"),
    ("postgresql://ann@db/s?sslmode=require&password=a%26b+c", "a%26b+c"),
])
def test_passwords_never_survive_redaction_or_scrubbing(url, secret):
    assert secret not in redact(url) and "***" in redact(url)
    message = f'connection to "db" failed for {secret} (raw {url})'
    assert secret not in scrub(message, url)


def test_a_password_with_url_delimiters_in_it_is_still_redacted():
    url = "postgresql://automl:pw-Zq8#never?sh/own@127.0.0.1:5432/studies"
    assert "never" not in redact(url) and redact(url).endswith("@127.0.0.1:5432/studies")
    assert "pw-Zq8" not in scrub(f"could not connect: {url}", url)
