"""The caches' notices travel as ``CacheNotice`` warnings to whoever shows them, never through a global list."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from automl_tl.runtime import notices
from automl_tl.runtime.notices import CacheNotice, count_notice, notice_once, receiving_notices


def test_a_notice_is_a_warning_a_host_program_can_see(tmp_path: Path) -> None:
    from automl_tl.data.cache_entries import note_rebuilt

    with pytest.warns(CacheNotice, match="computed again"):
        note_rebuilt(tmp_path)
    with pytest.warns(CacheNotice, match="^the text$"):
        notice_once("the text")
    assert not [name for name, value in vars(notices).items()
                if isinstance(value, (list, dict, set)) and not name.startswith("__")], "no global list of notices"


def test_an_inbox_says_each_text_once_and_counts_a_topic_in_one_line() -> None:
    with warnings.catch_warnings(record=True) as others, receiving_notices() as inbox:
        warnings.simplefilter("always", UserWarning)
        for _ in range(2):
            notice_once("once")
            count_notice("topic", lambda count: f"{count} events")
            count_notice("topic", lambda count: f"{count} events")
        assert inbox.take() == ["once", "4 events"] and inbox.take() == []
        warnings.warn("not a notice", UserWarning, stacklevel=1)
    assert [str(w.message) for w in others] == ["not a notice"]  # other warnings are shown as before


def test_the_search_display_says_the_notices_met_while_it_runs() -> None:
    from automl_tl.tuning.progress import SearchProgress

    out = io.StringIO()
    with SearchProgress(Console(file=out, width=200), 2, 0, None, bars=False) as progress:
        notice_once("the cache is full")
        progress.trial_finished(0, "COMPLETE", 0.5, "trial 0 done")
    assert "note the cache is full" in " ".join(out.getvalue().split())
    with pytest.warns(CacheNotice):  # once the display is gone, a notice is an ordinary warning again
        notice_once("later")
