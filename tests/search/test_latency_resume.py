"""``search --max-latency-ms`` on a study that exists (issue 22): kept when left out, replaced or lifted only
when asked, and said before any trial either way; never a silent change."""

from __future__ import annotations

import pytest

from automl_tl.cli import main
from automl_tl.storage.urls import storage_url
from automl_tl.study_record import SETTINGS_ATTR
from automl_tl.tuning.latency_limit import resumed_limit
from tests.conftest import STUB_PLUGIN


def attrs(limit: float | None) -> dict:
    return {SETTINGS_ATTR: {"max_latency_ms": limit}}


@pytest.mark.parametrize("given, recorded, limit, said", [
    (None, None, None, None),  # a new study without a limit
    (5.0, None, 5.0, None),  # a new study with one
    ("off", None, None, None),
    (None, attrs(5.0), 5.0, "the study's limit is kept: architectures slower than 5 ms"),
    (5.0, attrs(5.0), 5.0, None),
    (2.0, attrs(5.0), 2.0, "replaces the study's limit of 5 ms"),
    (9.0, attrs(5.0), 9.0, "trials the earlier limit kept from training stay pruned"),
    ("off", attrs(5.0), None, "--max-latency-ms off lifts the study's limit of 5 ms"),
    (3.0, attrs(None), 3.0, "earlier trials ran without a limit"),
    (3.0, {}, 3.0, "earlier trials ran without a limit"),  # a study from before latency limits
    ("off", attrs(None), None, None),
    (None, attrs(None), None, None),
])
def test_resumed_limit(given, recorded, limit, said):
    chosen, note = resumed_limit(given, recorded if recorded is not None else None)
    assert chosen == limit
    if said is None:
        assert note is None
    else:
        assert note is not None and said in note


def search(capsys, data, *extra: str) -> tuple[int, str]:
    code = main(["search", str(data), "--study", "lat", "--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs",
                 "1", "--image-size", "16", "--no-smart-start", *extra])
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def stored_limit() -> float | None:
    import optuna

    study = optuna.load_study(study_name="lat", storage=storage_url("lat", None))
    return study.user_attrs[SETTINGS_ATTR]["max_latency_ms"]


def test_a_resumed_search_keeps_changes_or_lifts_the_limit_and_says_so(small_sample, capsys):
    code, text = search(capsys, small_sample, "--trials", "1", "--max-latency-ms", "50")
    assert code == 0 and "Latency limit" not in text, text  # a new study: the option says it all
    code, text = search(capsys, small_sample, "--trials", "2")
    assert code == 0 and "Latency limit the study's limit is kept: architectures slower than 50 ms" in text, text
    assert stored_limit() == 50
    code, text = search(capsys, small_sample, "--trials", "3", "--max-latency-ms", "20")
    assert code == 0 and "--max-latency-ms 20 replaces the study's limit of 50 ms" in text, text
    assert stored_limit() == 20
    code, text = search(capsys, small_sample, "--trials", "4", "--max-latency-ms", "20")
    assert code == 0 and "Latency limit" not in text, text
    code, text = search(capsys, small_sample, "--trials", "5", "--max-latency-ms", "off")
    assert code == 0 and "--max-latency-ms off lifts the study's limit of 20 ms" in text, text
    assert stored_limit() is None


def test_a_limit_added_to_a_study_that_had_none_is_said(small_sample, capsys):
    assert search(capsys, small_sample, "--trials", "1")[0] == 0
    code, text = search(capsys, small_sample, "--trials", "2", "--max-latency-ms", "30")
    assert code == 0 and "--max-latency-ms 30 applies from now on" in text and "ran without a limit" in text, text
    assert stored_limit() == 30


@pytest.mark.parametrize("value", ["abc", "-3", "0", "nan", "inf"])
def test_a_limit_that_is_neither_milliseconds_nor_off_is_refused(value, small_sample, capsys):
    try:
        code, text = search(capsys, small_sample, "--trials", "1", "--max-latency-ms", value)
    except SystemExit as usage_error:  # argparse's own refusal of a word that is not "off"
        code, text = usage_error.code, capsys.readouterr().err
    assert code == 2 and "--max-latency-ms" in text and "Traceback" not in text
