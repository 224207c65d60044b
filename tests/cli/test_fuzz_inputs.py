"""Hostile inputs, generated from a seed: every one ends with exit code 0 or 2, never a traceback, and
changes nothing outside the tool's own folders (the studies folder, the cache, an export's -o).

Four kinds of input: CSV manifests, model folders, storage URLs and CLI numbers. The default run
makes a few hundred cases; `pytest -m fuzz_long tests/cli/test_fuzz_inputs.py` runs ten times as many.
Set AUTOML_TL_FUZZ_SEED to try other seeds; a failure names the seed, the case and its input.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from automl_tl.cli import main
from tests.conftest import STUB_PLUGIN
from tests.support.images import make_class_tree, write_image

SEED = int(os.environ.get("AUTOML_TL_FUZZ_SEED", "20261201"))
STUB = ["--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "1", "--image-size", "16", "--no-smart-start"]
SECRET = "Sup3rS3cretPw"


# -- the property -----------------------------------------------------------------------------
def tree_state(root: Path, skip: tuple[Path, ...]) -> dict[str, str]:
    """Every path under ``root`` (except the tool's own folders) with a digest of its content."""
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if any(path == s or s in path.parents for s in skip):
            continue
        if path.is_symlink():
            state[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[str(path)] = "dir"
    return state


def run_case(argv: list[str], watched: Path, own: tuple[Path, ...], label: str) -> tuple[int, str]:
    """Run the CLI in-process on one case and check the property; returns (exit code, output)."""
    before = tree_state(watched, own)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - the property is that nothing escapes
            pytest.fail(f"seed {SEED}, {label}: {type(exc).__name__}: {exc}\nargv: {argv!r}")
    output = out.getvalue() + err.getvalue()
    assert code in (0, 2), f"seed {SEED}, {label}: exit {code}\nargv: {argv!r}\n{output[-2000:]}"
    assert "Traceback" not in output, f"seed {SEED}, {label}: a traceback\nargv: {argv!r}\n{output[-2000:]}"
    after = tree_state(watched, own)
    changed = sorted(set(before.items()) ^ set(after.items()))
    assert not changed, f"seed {SEED}, {label}: changed outside the tool's folders: {changed[:5]}\nargv: {argv!r}"
    return code, output


@pytest.fixture
def workspace(tmp_path: Path, isolated_studies: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: a tiny data set, and an empty working directory the CLI runs in."""
    make_class_tree(tmp_path / "user" / "data", {"cat": 4, "dog": 4, "emu": 3})
    (tmp_path / "user" / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "user" / "cwd")
    return tmp_path / "user"


# -- CSV manifests ----------------------------------------------------------------------------
CELLS = ["cat/0.png", "dog/1.png", "emu/2.png", "../data/cat/0.png", "/etc/passwd", "cat\x00/0.png", "", " ",
         '"', '"cat/0.png', 'cat/0.png"', "cat/0.png\n", "[/]", "[bold red]x", "C:\\x.png", "cat/../../x.png",
         "é.png", "cat/0.PNG", "dog", "cat", "emu", "\ufeffpath", "label", "a" * 300]


def random_manifest(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    rows = [["path", "label"]] if rng.random() < 0.8 else [[rng.choice(CELLS) for _ in range(rng.randrange(1, 4))]]
    for _ in range(rng.randrange(0, 12)):
        rows.append([rng.choice(CELLS) for _ in range(rng.choice((1, 2, 2, 2, 3)))])
    separator = rng.choice([",", ",", ",", ";", "\t"])
    text = rng.choice(["\n", "\r\n", "\r"]).join(separator.join(row) for row in rows)
    if rng.random() < 0.2:
        position = rng.randrange(len(text) + 1)
        text = text[:position] + rng.choice(['"', "\x00", "\ufeff", "\\", "\u2028"]) + text[position:]
    encoding = rng.choice(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])
    return text.encode(encoding, errors="replace")


def manifest_cases(count: int, workspace: Path) -> None:
    rng = random.Random(SEED)
    data = workspace / "data"
    own = (Path(os.environ["AUTOML_TL_STUDIES"]),)
    for case in range(count):
        manifest = data / f"fuzz-{case}.csv"
        manifest.write_bytes(random_manifest(rng))
        argv = ["search", str(manifest), "--trials", "1", "--timeout", "20", "--study", f"f{case}", *STUB]
        run_case(argv, workspace, own, f"manifest case {case} ({manifest.read_bytes()[:120]!r})")
        manifest.unlink()


# -- model folders ----------------------------------------------------------------------------
@pytest.fixture
def real_export(small_cnn_exports: Path) -> Path:
    """A real ONNX export of a small_cnn trial, copied and mutated by every case."""
    return small_cnn_exports / "onnx"


HOSTILE_VALUES: list[object] = [None, True, -1, 0, 1, 3, 60_000, 2**63, 1e308, float("nan"), "", "x", "../x",
                                "/etc/passwd", "onnx", "torchscript", "savedmodel", "keras", "torch", "[/]", [],
                                [1, 2, 3], ["a"], ["a", "a"], {}, {"a": 1}, [0.5, 0.5, 0.5], [0, 0, 0]]


def mutate_model_folder(folder: Path, rng: random.Random) -> str:
    """One hostile edit of an export folder; returns what it did."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    target = rng.choice(files)
    kind = rng.randrange(6) if target.suffix == ".json" else rng.randrange(3)
    if kind == 0:
        target.write_bytes(target.read_bytes()[: rng.randrange(max(1, target.stat().st_size))])
        return f"truncated {target.name}"
    if kind == 1:
        target.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(64))))
        return f"random bytes in {target.name}"
    if kind == 2:
        target.unlink()
        return f"removed {target.name}"
    try:
        data = json.loads(target.read_bytes())
    except ValueError:  # an earlier edit of this case already broke it
        data = None
    if isinstance(data, dict) and data and kind in (3, 4):
        field = rng.choice(sorted(data))
        if kind == 3:
            data[field] = rng.choice(HOSTILE_VALUES)
        else:
            del data[field]
        target.write_text(json.dumps(data))
        return f"{target.name}: {'set' if kind == 3 else 'removed'} {field!r}"
    if isinstance(data, list) and data and kind in (3, 4):
        data[rng.randrange(len(data))] = rng.choice(HOSTILE_VALUES)
        target.write_text(json.dumps(data))
        return f"{target.name}: an entry set"
    target.write_text(json.dumps(rng.choice(HOSTILE_VALUES)))
    return f"{target.name} replaced by a value"


def model_cases(count: int, workspace: Path, real_export: Path) -> None:
    rng = random.Random(SEED + 1)
    image = write_image(workspace / "photo.png", size=(40, 13))
    codes: dict[int, int] = {}
    for case in range(count):
        folder = workspace / "model"
        shutil.copytree(real_export, folder)
        edits = [mutate_model_folder(folder, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
        command = rng.choice(["predict", "evaluate"])
        argv = ["predict", str(folder), str(image), "--json"] if command == "predict" else \
            ["evaluate", str(folder), str(workspace / "data")]
        code, _ = run_case(argv, workspace, (Path(os.environ["AUTOML_TL_STUDIES"]),), f"model case {case}: {'; '.join(edits)}")
        codes[code] = codes.get(code, 0) + 1
        shutil.rmtree(folder)
    assert codes.get(2, 0) > count // 2, f"most hostile model folders must be refused: {codes}"


# -- storage URLs -----------------------------------------------------------------------------
URL_PARTS = ["postgresql://", "postgresql:/", "postgresql//", "postgres://", "postgresql+psycopg://", "sqlite:///",
             "sqlite://", "sqlite:", "mysql://", "redis://", "file://", "", "://", "http://"]
USERINFO = [f"u:{SECRET}@", f"u:{SECRET}@@", f"u:{SECRET[:5]}@{SECRET[5:]}@", f":{SECRET}@", f"u:{SECRET}#x@",
            f"u:{SECRET}/x@", "", "u@", f"u:{SECRET}"]
HOSTS = ["127.0.0.1:1", "localhost:1", "[::1]:1", "127.0.0.1", ""]
TAILS = ["/db", "", f"/db?password={SECRET}", "/db?sslmode=disable", "/../x.db", "/\x00", "/db#frag", "//x"]


def random_url(rng: random.Random, workspace: Path) -> str:
    if rng.random() < 0.3:  # SQLite paths: under a file, under /proc, inside the user's folder, nowhere
        where = rng.choice([workspace / "data" / "cat" / "0.png" / "x.db", Path("/proc/1/x.db"),
                            workspace / "data" / "new" / "x.db", workspace / "nowhere" / "deep" / "x.db",
                            workspace / "data", Path("/")])
        return rng.choice(["sqlite:///", "sqlite:////", "sqlite://"]) + str(where).lstrip("/" if rng.random() < 0.5 else "")
    return rng.choice(URL_PARTS) + rng.choice(USERINFO) + rng.choice(HOSTS) + rng.choice(TAILS)


def url_cases(count: int, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(SEED + 2)
    own = (Path(os.environ["AUTOML_TL_STUDIES"]),)
    for case in range(count):
        url = random_url(rng, workspace)
        command = rng.choice([["show", "s"], ["studies"], ["export", "s", "--format", "onnx", "-o", "out"],
                              ["worker", "--study", "s"]])
        if rng.random() < 0.5 or "\x00" in url:  # an environment variable cannot hold a NUL byte
            argv = [*command, "--storage", url]
        else:
            monkeypatch.setenv("AUTOML_TL_STORAGE", url)
            argv = command
        _, output = run_case(argv, workspace, own, f"url case {case} ({url!r})")
        monkeypatch.delenv("AUTOML_TL_STORAGE", raising=False)
        for fragment in (SECRET, SECRET[:5], SECRET[5:]):
            assert fragment not in output, f"seed {SEED}, url case {case}: the password shows in {output!r}"


# -- CLI numbers ------------------------------------------------------------------------------
NUMBERS = ["-1", "0", "1", "2", "-5", "2147483648", str(2**40), str(2**64), "1e308", "inf", "-inf", "nan", "abc",
           "", " ", "0x10", "1.5", "-0", "007", "1_000", "٣"]
SEARCH_OPTIONS = ["--trials", "--epochs", "--image-size", "--timeout", "--seed", "--max-pixels", "--heartbeat",
                  "--workers"]


def number_cases(count: int, workspace: Path) -> None:
    rng = random.Random(SEED + 3)
    own = (Path(os.environ["AUTOML_TL_STUDIES"]),)
    data = str(workspace / "data")
    for case in range(count):
        option, value = rng.choice(SEARCH_OPTIONS), rng.choice(NUMBERS)
        if option == "--workers" and value.strip() in ("1", "007"):
            value = "-1"  # a real worker process per case would take the suite's time; --workers 1 is tested elsewhere
        settings = {"--trials": "1", "--timeout": "20", "--epochs": "1", "--image-size": "16", option: value}
        argv = ["search", data, "--study", f"n{case}", "--plugin", STUB_PLUGIN, "--framework", "stub",
                "--no-smart-start", *[part for pair in settings.items() for part in pair]]
        run_case(argv, workspace, own, f"number case {case} ({option} {value!r})")
    for case in range(count // 4):
        argv = rng.choice([["predict", "model", "x.png", "--top", rng.choice(NUMBERS)],
                           ["export", "s", "--format", "onnx", "-o", "out", "--trial", rng.choice(NUMBERS)]])
        run_case(argv, workspace, own, f"number case p{case} ({argv!r})")


# -- the tests --------------------------------------------------------------------------------
def test_fuzzed_csv_manifests(workspace):
    manifest_cases(100, workspace)


def test_fuzzed_model_folders(workspace, real_export):
    model_cases(80, workspace, real_export)


def test_fuzzed_storage_urls(workspace, monkeypatch):
    url_cases(80, workspace, monkeypatch)


def test_fuzzed_cli_numbers(workspace):
    number_cases(60, workspace)


@pytest.mark.fuzz_long
def test_many_more_fuzzed_inputs(workspace, real_export, monkeypatch):
    manifest_cases(1000, workspace)
    model_cases(800, workspace, real_export)
    url_cases(800, workspace, monkeypatch)
    number_cases(600, workspace)
