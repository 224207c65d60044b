"""Artifacts shared through an S3-compatible store (moto stands in for the server)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

pytest.importorskip("moto")
boto3 = pytest.importorskip("boto3")
from moto import mock_aws  # noqa: E402

from automl_tl.errors import UserError  # noqa: E402
from automl_tl.storage.mirror import S3Mirror  # noqa: E402


@pytest.fixture
def bucket(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="models")
        yield "models"


def test_a_folder_round_trips_and_a_folder_without_its_marker_is_not_served(bucket, tmp_path):
    source = tmp_path / "trial-0003"
    (source / "sub").mkdir(parents=True)
    (source / "weights.pt").write_bytes(b"w" * 1000)
    (source / "sub" / "head.npz").write_bytes(b"h")
    mirror = S3Mirror("s3://models/team/study")
    mirror.push_folder(source, "trial-0003")
    assert not mirror.pull_folder("trial-0003", tmp_path / "copy")  # no trial.json: incomplete
    (source / "trial.json").write_text(json.dumps({"trial": 3}))
    mirror.push_folder(source, "trial-0003")
    assert mirror.pull_folder("trial-0003", tmp_path / "copy")
    assert (tmp_path / "copy" / "weights.pt").read_bytes() == b"w" * 1000
    assert (tmp_path / "copy" / "sub" / "head.npz").read_bytes() == b"h"
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="models")["Contents"]]
    assert all(k.startswith("team/study/trial-0003/") for k in keys)


def test_keys_that_climb_out_of_the_trial_folder_are_refused(bucket, tmp_path):
    client = boto3.client("s3")
    client.put_object(Bucket="models", Key="p/trial-0001/trial.json", Body=b"{}")
    client.put_object(Bucket="models", Key="p/trial-0001/../../evil.txt", Body=b"x")
    with pytest.raises(UserError, match="outside its trial folder"):
        S3Mirror("s3://models/p").pull_folder("trial-0001", tmp_path / "t")
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_missing_bucket_is_a_clear_error(bucket):
    with pytest.raises(UserError, match="cannot reach bucket 'nope'"):
        S3Mirror("s3://nope/x")


def test_a_search_uploads_completed_trials_and_another_machine_fetches_them(bucket, stub_plugins, small_sample, tmp_path):
    from optuna.trial import TrialState

    from automl_tl.data import FolderDataset, load_table
    from automl_tl.deploy.export import fetch_remote_artifacts
    from automl_tl.distributed.loop import run_search
    from automl_tl.storage.artifacts import read_trial, remote_study_folder, study_key
    from automl_tl.storage.urls import artifact_places, storage_url
    from automl_tl.tuning.settings import SearchSettings

    local, remote = artifact_places("s3s", "s3://models/shared")
    assert remote == "s3://models/shared/s3s"
    table = load_table(FolderDataset().discover(str(small_sample)), 16, show_progress=False)
    settings = SearchSettings(study_name="s3s", storage_url=storage_url("s3s", None), artifacts=local,
                              artifacts_remote=remote, trials=3, epochs=2, image_size=16, backbones=["stub_net"],
                              data_location=str(small_sample))
    result = run_search(settings, stub_plugins, table, Console(quiet=True))
    assert result.study.user_attrs["artifacts"] == remote
    completed = result.study.get_trials(states=(TrialState.COMPLETE,))
    key = study_key(result.study)
    keyed_remote = remote_study_folder(remote, key)
    elsewhere = tmp_path / "other-machine"
    for trial in completed:
        fetch_remote_artifacts(keyed_remote, elsewhere, trial.number)
        meta = json.loads((elsewhere / f"trial-{trial.number:04d}" / "trial.json").read_text())
        assert meta["trial"] == trial.number
    assert (elsewhere / "parity.npz").is_file() and (elsewhere / "study.json").is_file()
    read_trial(elsewhere, completed[0].number, "s3s", key)  # the fetched copy proves it is this study's
    with pytest.raises(UserError, match="no saved artifact"):
        fetch_remote_artifacts(keyed_remote, elsewhere, 99)
