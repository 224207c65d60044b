"""--image-size auto and the study's resize rule: chosen from the data, recorded, kept on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automl_tl.cli import main
from automl_tl.data.resolution import AUTO_MIN_SIZE, NativeSizes, choose_image_size, native_size, study_rule, typical_shorter_side
from automl_tl.types import BackboneSpec, ImageItem, ResizeRule, WeightsInfo
from tests.conftest import STUB_PLUGIN
from tests.support.images import write_image

STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "1", "--trials", "1"]


def spec(name: str, native: int = 224, crop: float | None = 0.875, interpolation: str = "bilinear",
         pretrained: bool = True) -> BackboneSpec:
    weights = WeightsInfo("w", lambda: True) if pretrained else None
    return BackboneSpec(name, "torch", lambda p: None, ("a", "b"), 8, default_image_size=native, weights=weights,
                        crop_pct=crop, interpolation=interpolation)


@pytest.mark.parametrize("typical,expected", [(28, AUTO_MIN_SIZE), (32, 48), (60, 64), (100, 112), (111, 112),
                                              (112, 224), (152, 224), (350, 224), (3000, 224), (None, 224)])
def test_auto_size_follows_the_images_and_the_native_size(typical: int | None, expected: int) -> None:
    chosen = choose_image_size(typical, 224, 1000, None)
    assert chosen.image_size == expected
    assert (str(typical) in chosen.reason) if typical else "unknown" in chosen.reason


def test_auto_size_fits_a_time_budget() -> None:
    roomy = choose_image_size(400, 224, 870, 600, cores=2)
    assert roomy.image_size == 224
    tight = choose_image_size(400, 224, 50_000, 600, cores=2)
    assert tight.image_size < 224 and "--timeout" in tight.reason
    assert choose_image_size(400, 224, 10**9, 1, cores=1).image_size == AUTO_MIN_SIZE


def test_the_study_rule_is_the_backbones_when_they_agree() -> None:
    assert study_rule([spec("a"), spec("b")], "crop")[0] == ResizeRule("crop", 0.875, "bilinear")
    rule, why = study_rule([spec("a"), spec("b", crop=0.9, interpolation="bicubic")], "crop")
    assert rule == ResizeRule("crop", 1.0, "bilinear") and "different" in why
    # A from-scratch network states no crop and has no say.
    assert study_rule([spec("a", crop=0.9), spec("s", crop=None, pretrained=False)], "crop")[0].crop_pct == 0.9
    assert study_rule([spec("a")], "pad")[0] == ResizeRule("pad", 1.0, "bilinear")
    assert native_size([spec("a", 256), spec("s", 32, pretrained=False)]) == 256


MIXED = [spec("mobilenet", 224), spec("lite0", 224), spec("lite1", 240), spec("lite2", 260),
         spec("scratch", 32, crop=None, pretrained=False)]


def test_backbones_of_several_native_sizes_train_photos_at_the_smallest_and_say_who_runs_below_theirs() -> None:
    natives = NativeSizes.of(MIXED)
    assert natives.sizes == {224: ("mobilenet", "lite0"), 240: ("lite1",), 260: ("lite2",)}  # scratch has no say
    # Images at least half of the smallest native size go to it: 115 px stamps too, which half of 260 alone
    # would have left at 128 px, below every backbone's native size.
    for typical in (115, 130, 400, None):
        chosen = choose_image_size(typical, natives, 1000, None)
        assert chosen.image_size == 224
        assert "mobilenet, lite0's; lite1 at 240 px; lite2 at 260 px run below theirs" in chosen.reason
    small = choose_image_size(100, natives, 1000, None)
    assert small.image_size == 112 and "not blown up to the backbones' native 224-260 px" in small.reason
    tight = choose_image_size(400, natives, 6000, 300, cores=2)
    assert tight.image_size < 224 and "--timeout" in tight.reason
    # One native size: as before, and said as before.
    assert choose_image_size(400, NativeSizes.of(MIXED[:2]), 1000, None).reason.endswith("the backbones' native 224 px")
    assert NativeSizes.of([spec("s", 32, pretrained=False)]).smallest == 32 and NativeSizes.of([]).smallest == 224
    assert max(NativeSizes.of(MIXED).sizes) == 260


def test_a_search_over_backbones_of_two_native_sizes_says_which_size_and_why(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "two_sizes.py"
    plugin.write_text(
        "from automl_tl.hookspecs import hookimpl\n"
        "from automl_tl.types import BackboneSpec, WeightsInfo\n\n\n"
        "@hookimpl\n"
        "def register_backbones(register):\n"
        "    for name, size in ((\"small_native\", 224), (\"large_native\", 260)):\n"
        "        register(BackboneSpec(name=name, framework=\"stub\", factory=lambda pretrained: None,\n"
        "                              blocks=(\"b0\", \"b1\"), feature_dim=8, default_image_size=size,\n"
        "                              weights=WeightsInfo(\"stub weights\", lambda: True)))\n")
    data = photo_folder(tmp_path / "photos", per_class=4, size=(150, 115))
    assert main(["search", str(data), "--study", "n", *STUB, "--plugin", str(plugin),
                 "--backbones", "small_native,large_native", "--no-smart-start"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Input 224 px" in out and "typically 115 px" in out and "small_native's; large_native at 260 px run below" in out


def test_the_typical_size_is_read_from_headers(tmp_path: Path) -> None:
    for i, size in enumerate([(300, 200), (400, 250), (90, 500), (640, 480), (20, 20)]):
        write_image(tmp_path / "data" / "a" / f"{i}.jpg", size=size)
    (tmp_path / "data" / "a" / "bad.jpg").write_bytes(b"junk")  # ignored here, reported when decoding
    paths = sorted((tmp_path / "data" / "a").iterdir())
    assert typical_shorter_side([ImageItem(p, p.name, 0) for p in paths]) == 200


def photo_folder(root: Path, per_class: int = 6, size: tuple[int, int] = (120, 80)) -> Path:
    seed = 0
    for name in ("a", "b", "c"):
        for i in range(per_class):
            write_image(root / name / f"{i}.jpg", size=size, seed=seed)
            seed += 1
    return root


def test_search_says_which_size_and_why_and_show_repeats_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = photo_folder(tmp_path / "photos")
    assert main(["search", str(data), "--study", "p", *STUB]) == 0
    out = capsys.readouterr().out
    assert "Input 80 px" in out and "typically 80 px" in out and "centre square" in out
    assert main(["show", "p", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["input"]
    assert shown["image_size"] == 80 and shown["resize"] == "crop" and "typically 80 px" in shown["why"]
    assert main(["show", "p"]) == 0
    assert "Input: 80 px" in capsys.readouterr().out


def test_a_resumed_study_keeps_its_size_and_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = photo_folder(tmp_path / "photos")
    assert main(["search", str(data), "--study", "r", *STUB, "--image-size", "32", "--resize", "pad"]) == 0
    capsys.readouterr()
    # auto on resume: the size and rule the study began with, whatever auto would choose today.
    assert main(["search", str(data), "--study", "r", *STUB[:-1], "2"]) == 0
    out = capsys.readouterr().out
    assert "Input 32 px (the study began with it)" in out and "padded" in out
    # An explicit, different rule is refused, and the message says how to resume.
    assert main(["search", str(data), "--study", "r", *STUB[:-1], "3", "--resize", "stretch"]) == 2
    err = capsys.readouterr().err
    assert "resize rule changed from pad:1:bilinear to stretch:1:bilinear" in err and "--resize pad" in err


def test_image_size_must_be_auto_or_a_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["search", "--image-size", "big"])
    assert info.value.code == 2 and "--image-size" in capsys.readouterr().err
    for bad in ("8", "5000"):
        assert main(["search", str(tmp_path), "--image-size", bad]) == 2
        assert "choose auto, or between 16 and 1024" in capsys.readouterr().err


def test_auto_epochs_give_small_data_more_epochs_and_resume_keeps_them(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from automl_tl.training.schedule import auto_epochs

    assert [auto_epochs(n) for n in (30, 515, 7008, 9600, 50_000)] == [12, 12, 6, 4, 4]
    data = photo_folder(tmp_path / "photos")
    stub = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--image-size", "16"]
    assert main(["search", str(data), "--study", "e", "--trials", "1", *stub]) == 0
    assert "12 epochs per trial at most (auto: about 600 steps over" in capsys.readouterr().out
    assert main(["search", str(data), "--study", "e", "--trials", "2", *stub]) == 0
    assert "12 epochs per trial at most (the study began with it)" in capsys.readouterr().out
    assert main(["search", str(data), "--study", "e", "--trials", "3", *stub, "--epochs", "5"]) == 2
    assert "--epochs changed from 12 to 5" in capsys.readouterr().err
