from automl_tl.tuning.fingerprint import describe_changes, make_fingerprint
from automl_tl.tuning.space import search_space, space_json


def _fp(manifest="m", backbones=("a",), epochs=4, size=32):
    return make_fingerprint(manifest, space_json(search_space(list(backbones), epochs)), epochs, size)


def test_identical_fingerprints_have_no_changes():
    assert describe_changes(_fp(), _fp()) == []


def test_each_change_is_named():
    assert any("data changed" in c for c in describe_changes(_fp(), _fp(manifest="other")))
    assert any("--epochs changed from 4 to 5" in c for c in describe_changes(_fp(), _fp(epochs=5)))
    assert any("--image-size changed from 32 to 64" in c for c in describe_changes(_fp(), _fp(size=64)))
    changes = describe_changes(_fp(), _fp(backbones=("a", "b")))
    assert any("'backbone'" in c for c in changes)


def test_a_study_from_before_the_conditional_space_is_refused_with_one_clear_reason():
    old = _fp()
    del old["space_layout"]  # fingerprints written before the conditional space have no layout
    old["search_space"]["switch_epoch"]["attributes"]["high"] = 4  # and a switch epoch that reached the last epoch
    (change,) = describe_changes(old, _fp())
    assert "earlier automl-tl" in change and "only the parameters it uses" in change, change
    assert "switch_epoch" not in change, "the range that follows from the layout is not listed as a change of its own"


def test_a_study_from_before_per_block_rates_is_refused_naming_what_is_now_searched():
    old = _fp()
    del old["search_space"]["block_lr_decay"]
    (change,) = describe_changes(old, _fp())
    assert "'block_lr_decay' was added" in change and "per-block fine-tuning rates" in change, change
    assert "shown, reported and exported" in change


def test_a_study_from_before_fitted_heads_is_refused_naming_what_is_now_searched():
    old = _fp()
    del old["search_space"]["head_fit"], old["search_space"]["head_l2"]
    fit, l2 = describe_changes(old, _fp())
    assert "'head_fit' was added" in fit and "fitted to convergence" in fit and "shown, reported and exported" in fit
    assert "'head_l2' was added" in l2 and "L2 strength" in l2


def test_a_study_from_before_augmented_views_resumes_because_the_search_does_not_choose_them():
    old = _fp()
    old["search_space"]["augment"]["attributes"]["choices"] = ["none", "hflip"]  # what studies before views recorded
    assert describe_changes(old, _fp()) == []
