"""One record of a study (automl_tl/study_record.py): every attribute key is named there and nowhere else, its
records round-trip, an older format is read in one place and a newer one refused, and facts are stored, not
parsed out of sentences."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from automl_tl import study_record
from automl_tl.errors import UserError
from automl_tl.study_record import (
    FORMAT_ATTR,
    RESIZE_ATTR,
    SETTINGS_ATTR,
    STUDY_FORMAT,
    Failure,
    FoldZero,
    RetryOf,
    StudyData,
    StudySettings,
    migrated,
    stored_settings,
    study_format,
    study_rule,
)
from automl_tl.types import ResizeRule

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "automl_tl" / "study_record.py"
SETTERS = {"set_user_attr": 0, "set_system_attr": 0, "set_trial_user_attr": 1, "set_trial_system_attr": 1,
           "set_study_user_attr": 1, "set_study_system_attr": 1}  # the key's position among the arguments
READERS = {"get", "pop", "setdefault"}
ATTRS_RECEIVER = re.compile(r"(^|_)attrs$")  # trial.user_attrs, study.system_attrs, attrs, study_attrs (not h5py's f.attrs)


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _receiver_is_attrs(node: ast.AST) -> bool:
    return bool(ATTRS_RECEIVER.search(ast.unparse(node)))


def attribute_key_literals(source: str) -> list[tuple[int, str]]:
    """Where ``source`` names a study or trial attribute by a string literal: ``set_user_attr("x", ...)``,
    ``<...>attrs["x"]``, ``<...>attrs.get("x")``, ``"x" in <...>attrs`` and ``user_attrs={"x": ...}``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        keys: list[ast.AST] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            position = SETTERS.get(node.func.attr)
            if position is not None and len(node.args) > position:
                keys.append(node.args[position])
            if node.func.attr in READERS and node.args and _receiver_is_attrs(node.func.value):
                keys.append(node.args[0])
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in {"user_attrs", "system_attrs"} and isinstance(keyword.value, ast.Dict):
                    keys.extend(k for k in keyword.value.keys if k is not None)
        if isinstance(node, ast.Subscript) and _receiver_is_attrs(node.value):
            keys.append(node.slice)
        if isinstance(node, ast.Compare) and _text(node.left) is not None:
            if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) and any(map(_receiver_is_attrs, node.comparators)):
                keys.append(node.left)
        found.extend((key.lineno, text) for key in keys if (text := _text(key)) is not None)
    return found


def test_no_attribute_key_is_a_string_literal_outside_the_record():
    files = [p for top in ("automl_tl", "plugins") for p in sorted((ROOT / top).rglob("*.py"))
             if "__pycache__" not in p.parts and p != RECORD]
    found = [f"{p.relative_to(ROOT)}:{line}: {key!r}" for p in files for line, key in attribute_key_literals(p.read_text())]
    assert not found, "name these through automl_tl/study_record.py:\n" + "\n".join(found)


def test_the_scan_finds_each_way_of_naming_a_key():
    source = '''
trial.set_user_attr("a", 1)
storage.set_trial_user_attr(trial_id, "b", 2)
x = trial.user_attrs["c"]
y = attrs.get("d")
z = "e" in study.user_attrs
optuna.trial.create_trial(user_attrs={"f": 1}, system_attrs={"g": 2})
trial.set_user_attr(NAMED, 1)
meta.get("not an attribute")
'''
    assert sorted(key for _, key in attribute_key_literals(source)) == list("abcdefg")


def test_every_key_is_named_once():
    names = {name: value for name, value in vars(study_record).items()
             if name.isupper() and (name.endswith("_ATTR") or name == "DIGEST_FIELD")}
    by_value: dict[str, list[str]] = {}
    for name, value in names.items():
        by_value.setdefault(value, []).append(name)
    assert {v: n for v, n in by_value.items() if len(n) > 1} == {}
    assert len(names) >= 30


def _settings(**changes) -> StudySettings:
    values = dict(backbones=["tiny", "wide"], epochs=3, image_size=32, seed=7, pruner="asha", truncation=False,
                  heartbeat_s=10, max_pixels=1000, resize=ResizeRule("pad", 1.0, "bicubic"),
                  image_size_reason="auto: small images", cv_folds=5, max_latency_ms=2.5)
    return StudySettings(**{**values, **changes})


def test_study_settings_round_trip():
    for settings in (_settings(), _settings(max_latency_ms=None, cv_folds=0)):
        assert StudySettings.from_attrs(settings.to_attrs()) == settings
        assert stored_settings({SETTINGS_ATTR: settings.to_attrs()}) == settings


def test_search_settings_round_trip_through_the_study_record(tmp_path):
    from automl_tl.tuning.settings import SearchSettings

    search = SearchSettings(study_name="s", storage_url="sqlite:///x.db", artifacts=tmp_path, trials=5, epochs=3,
                            image_size=32, backbones=["tiny"], data_location="/data", seed=4, pruner="asha",
                            truncation=False, heartbeat_s=20, max_pixels=999, resize=ResizeRule("pad"),
                            image_size_reason="--image-size", max_latency_ms=3.0, cv_folds=3)
    stored = StudySettings.from_attrs(search.stored().to_attrs())
    worker = SearchSettings.from_stored(stored, study_name="s", storage_url="sqlite:///x.db", artifacts=tmp_path,
                                        data_location="/data")
    assert worker.stored() == search.stored()
    assert (worker.trials, worker.smart_start) == (0, False)  # a worker reads the study's budget, enqueues nothing


def test_study_data_round_trip_and_absent_until_recorded():
    data = StudyData(["cat", "dog"], "/data", {"train": 8, "val": 2, "test": 2}, 4, 48, "--image-size",
                     ResizeRule("crop", 0.875), "s3://bucket/s", "0.1")
    assert StudyData.from_attrs(data.to_attrs()) == data
    assert StudyData.from_attrs({}) is None


def test_trial_records_round_trip():
    assert FoldZero.from_attrs({study_record.FOLD_ZERO_ATTR: FoldZero(5, 0.75).to_attrs()}) == FoldZero(5, 0.75)
    assert FoldZero.from_attrs({}) is None
    retry = RetryOf(3, "killed", [1, 3])
    assert RetryOf.from_attrs(retry.user_attrs(), retry.system_attrs()) == retry
    assert RetryOf.from_attrs({}, {}) is None
    for failure in (Failure("boom"), Failure("killed; queued again", requeued=True),
                    Failure("not started: too big", requeued=True, not_started=True)):
        assert Failure.from_attrs(failure.to_attrs()) == failure
    assert Failure.from_attrs({}) is None


def test_a_format_1_study_is_read_as_what_it_did():
    old = {SETTINGS_ATTR: {"backbones": ["tiny"], "epochs": 2, "image_size": 32, "seed": 0, "pruner": "asha",
                           "truncation": True, "heartbeat_s": 10, "max_pixels": 100}}
    assert study_format(old) == 1
    current = migrated("old", old)
    assert current[FORMAT_ATTR] == STUDY_FORMAT
    assert study_rule(current) == ResizeRule("stretch")  # before resize rules every image was stretched
    settings = stored_settings(current)
    assert settings is not None and settings.cv_folds == 0 and settings.resize == ResizeRule("stretch")
    assert old == {SETTINGS_ATTR: old[SETTINGS_ATTR]}, "nothing of the study's own is changed in place"
    recorded_rule = migrated("old", {RESIZE_ATTR: ResizeRule("pad").to_dict()})
    assert study_rule(recorded_rule) == ResizeRule("pad")


def test_a_study_from_a_newer_format_is_refused_once_with_what_to_do():
    with pytest.raises(UserError, match=r"Study 'future' was written by a newer automl-tl.*Upgrade automl-tl"):
        migrated("future", {FORMAT_ATTR: STUDY_FORMAT + 1})


def test_a_newer_study_is_refused_when_it_is_resumed(tmp_path):
    from automl_tl.storage.stored_attrs import existing_study_attrs

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="future", storage=url)
    study.set_user_attr(FORMAT_ATTR, STUDY_FORMAT + 1)
    with pytest.raises(UserError, match="newer automl-tl"):
        existing_study_attrs(url, "future")


def test_orphans_are_counted_as_requeued_from_the_record_not_from_their_sentence(tmp_path, monkeypatch):
    """The count a killed search's next run reports comes from ``Failure.requeued``; the sentence may say anything."""
    from automl_tl.tuning import lifecycle, retries

    study = optuna.create_study(study_name="orphans", storage=f"sqlite:///{tmp_path / 's.db'}")
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, params={"lr": 0.1},
                                                  distributions={"lr": FloatDistribution(0.01, 1.0)}))
    monkeypatch.setattr(retries, "MAX_RETRIES", 0)  # neither can be queued again
    given_up = lifecycle.fail_orphaned_trials(study)
    assert [f.requeued for f in given_up] == [False, False]
    assert all(Failure.from_attrs(t.user_attrs) == f for t, f in zip(study.get_trials(), given_up))
    monkeypatch.setattr(retries, "MAX_RETRIES", 3)
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, params={"lr": 0.2},
                                              distributions={"lr": FloatDistribution(0.01, 1.0)}))
    (requeued,) = lifecycle.fail_orphaned_trials(study)
    assert requeued.requeued and Failure.from_attrs(study.get_trials()[2].user_attrs) == requeued


def test_the_note_on_orphans_counts_the_requeued_flag_whatever_the_sentences_say():
    from automl_tl.distributed.loop import orphans_note

    note = orphans_note([Failure("killed", requeued=True), Failure("killed; queued again", requeued=False)])
    assert "2 trial(s) left running by a killed process were failed; 1 queued again; 1 had been retried" in note


def test_commands_that_read_a_study_refuse_a_newer_format(tmp_path):
    from automl_tl.api.common import load_study

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optuna.create_study(study_name="future", storage=url).set_user_attr(FORMAT_ATTR, STUDY_FORMAT + 1)
    with pytest.raises(UserError, match="newer automl-tl"):
        load_study("future", url)


READERS_OF_THE_RECORD = ["automl_tl/report/leaderboard.py", "automl_tl/tuning/scoring.py", "automl_tl/tuning/study_data.py",
                         "automl_tl/tuning/study_input.py", "automl_tl/deploy/export.py", "automl_tl/deploy/ensemble_export.py",
                         "automl_tl/distributed/workers.py", "automl_tl/distributed/loop.py"]


# What the search loop and a worker use of the modules that create studies and run trials: to run them, not to read
# them (the loop prepares the study it runs and runs its trials; a worker joins one).
RUNS_THEM = {"automl_tl/distributed/loop.py": {"prepare_study", "fail_orphaned_trials", "INTERRUPTED", "TrialRunner"},
             "automl_tl/distributed/workers.py": {"open_study"}}


@pytest.mark.parametrize("path", READERS_OF_THE_RECORD)
def test_readers_import_the_record_not_the_modules_that_write_it(path):
    imported: set[str] = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module in {"automl_tl.tuning.lifecycle", "automl_tl.tuning.trial_runner"}:
            imported.update(alias.name for alias in node.names)
    assert imported <= RUNS_THEM.get(path, set())
