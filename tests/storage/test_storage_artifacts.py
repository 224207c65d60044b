import numpy as np
import pytest

from automl_tl.errors import UserError
from automl_tl.runtime.interrupts import storage_write
from automl_tl.storage.artifacts import (
    claim_folder,
    discard_partial,
    finalize,
    load_parity_images,
    partial_dir,
    read_trial,
    save_parity_images,
    trial_dir,
)
from automl_tl.storage.urls import check_study_name, redact, storage_url, study_name_for
from tests.support.sample_plugins.torch_inline import random_table


def test_redact_hides_only_the_password():
    assert redact("postgresql://ann:hunter2@db:5432/s") == "postgresql://ann:***@db:5432/s"
    assert redact("sqlite:///studies/x.db") == "sqlite:///studies/x.db"


def test_study_names(isolated_studies):
    assert study_name_for("/data/flower photos/") == "flower-photos"
    assert storage_url("x", None) == f"sqlite:///{isolated_studies / 'x.db'}"
    with pytest.raises(UserError):
        check_study_name("../escape")


KEY = "a" * 32
OTHER_KEY = "b" * 32


def test_artifacts_appear_only_when_finalised(tmp_path):
    claim_folder(tmp_path, "s", KEY)
    partial = partial_dir(tmp_path, 3)
    partial.mkdir()
    (partial / "weights.pt").write_bytes(b"w")
    with pytest.raises(UserError, match="no saved artifact"):
        read_trial(tmp_path, 3, "s", KEY)
    finalize(tmp_path, 3, {"trial": 3, "study_key": KEY})
    directory, meta = read_trial(tmp_path, 3, "s", KEY)
    assert directory == trial_dir(tmp_path, 3) and meta == {"trial": 3, "study_key": KEY} and not partial.exists()
    partial_dir(tmp_path, 4).mkdir()
    discard_partial(tmp_path, 4)
    assert not partial_dir(tmp_path, 4).exists()


def test_parity_images_are_written_once(tmp_path):
    claim_folder(tmp_path, "s", KEY)
    table = random_table()
    save_parity_images(tmp_path, table)
    images = load_parity_images(tmp_path, "s", KEY)
    np.testing.assert_array_equal(images, table.images[table.splits["val"][: len(images)]])
    save_parity_images(tmp_path, random_table(seed=5))
    np.testing.assert_array_equal(load_parity_images(tmp_path, "s", KEY), images)


def test_another_studys_folder_and_trials_are_refused(tmp_path):
    """Two studies of one name (two databases, or one deleted and made again) never share artifacts."""
    claim_folder(tmp_path, "clash", KEY)
    save_parity_images(tmp_path, random_table())
    partial_dir(tmp_path, 0).mkdir()
    finalize(tmp_path, 0, {"trial": 0, "study_key": KEY})
    with pytest.raises(UserError, match="belongs to another study"):
        read_trial(tmp_path, 0, "clash", OTHER_KEY)
    with pytest.raises(UserError, match="belongs to another study"):
        load_parity_images(tmp_path, "clash", OTHER_KEY)
    with pytest.raises(UserError, match="belongs to another study"):
        claim_folder(tmp_path, "clash", OTHER_KEY)
    # a trial file copied in from another study's folder is refused even under this study's owner file
    partial_dir(tmp_path, 1).mkdir()
    finalize(tmp_path, 1, {"trial": 1, "study_key": OTHER_KEY})
    with pytest.raises(UserError, match="not trial 1 of this study"):
        read_trial(tmp_path, 1, "clash", KEY)
    with pytest.raises(UserError, match="no artifacts of study"):
        read_trial(tmp_path / "elsewhere", 0, "clash", KEY)


def test_an_unwritable_artifacts_folder_is_found_before_any_trial(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="Cannot write the study's artifacts"):
        claim_folder(blocker / "clash" / "key", "clash", KEY)


def test_interrupts_wait_for_the_storage_write_to_finish():
    import automl_tl.runtime.interrupts as interrupts
    done = []
    with pytest.raises(KeyboardInterrupt):
        with storage_write():
            interrupts._handler(15, None)  # what SIGTERM does mid-write
            done.append("write finished")
    assert done == ["write finished"]
    with pytest.raises(KeyboardInterrupt):
        interrupts._handler(15, None)  # outside a write it interrupts at once


def test_progress_shows_trial_phase_epoch_and_best():
    from rich.console import Console

    from automl_tl.tuning.progress import SearchProgress
    from automl_tl.tuning.space import config_from_params
    from automl_tl.types import EpochResult, Phase

    console = Console(record=True, width=160, force_terminal=False)
    config = config_from_params(dict(backbone="net", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-3,
                                     finetune_lr_ratio=0.1, switch_epoch=1), epochs=2, image_size=16)
    with SearchProgress(console, total_trials=2, finished=0, best=None) as progress:
        progress.trial_started(0, config)
        progress.epoch_done(0, config, EpochResult(1, Phase.FINETUNE, 0.5, 0.75, 0.7, 1.0))
        assert "finetune" in progress._task(progress.trial_task).fields["info"]
        progress.trial_finished(0, "COMPLETE", 0.75, "trial 0 done")
    text = console.export_text()
    assert "trial 0 done" in text and "best score 0.7500" in text
