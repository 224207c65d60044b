"""Hostile inputs, generated from a seed: every one ends with exit code 0 or 2, never a traceback, and
changes nothing outside the tool's own folders (the studies folder, the cache, an export's -o).

Eight kinds of input: CSV manifests, model folders, storage URLs, CLI numbers, labels with control
characters, databases that are not Optuna study stores, special-file targets (device, FIFO, socket,
links) for every command that writes, and cache entries with flipped bytes. The default run
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
    number_cases(30, workspace)  # each case a real (stub) search; fuzz_long runs 600


@pytest.mark.fuzz_long
def test_many_more_fuzzed_inputs(workspace, real_export, monkeypatch):
    manifest_cases(1000, workspace)
    model_cases(800, workspace, real_export)
    url_cases(800, workspace, monkeypatch)
    number_cases(600, workspace)
    label_cases(80, workspace, real_export, monkeypatch)
    database_cases(600, workspace, monkeypatch)


# -- labels with control characters ----------------------------------------------------------
LABEL_PIECES = ["\x1b[2J", "\x1b[31m", "\x1b]0;title\x07", "\x07", "\n", "\r", "\t", "\x00", "\x7f", "\x85",
                "\x9b31m", "\u202e", "\u2066", "\u2028", "\nfake.png: cat 1.000", "[bold red]", "é", " "]
ACTED_ON = "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"


def hostile_labels(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct labels, each a class number followed by control sequences, bidi overrides, a
    newline that would forge a result line, markup."""
    return [f"c{index}" + "".join(rng.choice(LABEL_PIECES) for _ in range(rng.randrange(1, 4))) for index in range(count)]


def label_cases(count: int, workspace: Path, real_export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """predict on model folders whose labels.json holds control characters: its text output (also through
    a rich console forced to act as a terminal) holds no raw control character and no forged line, and
    ``--json`` gives the exact labels back."""
    import re

    from rich.console import Console

    import automl_tl.api.model_commands as model_commands
    from automl_tl.runtime.shown_text import printable

    rng = random.Random(SEED + 4)
    own = (Path(os.environ["AUTOML_TL_STUDIES"]),)
    good = write_image(workspace / "in" / "photo.png", size=(40, 13))
    (workspace / "in" / "broken.png").write_bytes(b"\x1b[2J not an image")
    width = len(json.loads((real_export / "labels.json").read_text()))
    for case in range(count):
        folder = workspace / "model"
        shutil.copytree(real_export, folder)
        labels = hostile_labels(rng, width)
        (folder / "labels.json").write_text(json.dumps(labels))
        label = f"label case {case} ({labels!r:.300})"
        code, output = run_case(["predict", str(folder), str(good), "--json", "--top", str(width)], workspace, own, label)
        results = json.loads(output[: output.rindex("]") + 1])
        assert code == 0 and sorted(t["label"] for t in results[0]["top"]) == sorted(labels), \
            f"seed {SEED}, {label}: --json is not exact"
        for terminal in (False, True):
            with monkeypatch.context() as patch:
                for name in ("console", "err_console"):  # Console() without a file writes to the redirected stream
                    patch.setattr(model_commands, name, Console(force_terminal=terminal, width=160,
                                                                color_system="standard" if terminal else None,
                                                                stderr=name == "err_console"))
                code, output = run_case(["predict", str(folder), str(workspace / "in"), "--top", str(width)],
                                        workspace, own, f"{label}, terminal {terminal}")
            assert code == 2, f"seed {SEED}, {label}: the broken image must make exit 2"
            text = re.sub(r"\x1b\[[0-9;]*m", "", output) if terminal else output  # rich's own colours; a label's
            # own raw "\x1b[31m" would go too, but then its escaped form, checked below, would be missing
            raw = re.findall(ACTED_ON, text)
            assert not raw, f"seed {SEED}, {label}, terminal {terminal}: raw control characters {raw!r} in {output!r}"
            assert not any(line.startswith("fake.png") for line in text.splitlines()), f"seed {SEED}, {label}: forged line"
            squeezed = re.sub(r"\s", "", text)  # rich wraps long lines
            assert all(re.sub(r"\s", "", printable(name)) in squeezed for name in labels), f"seed {SEED}, {label}: {text!r}"
        shutil.rmtree(folder)


def test_fuzzed_labels_with_control_characters(workspace, real_export, monkeypatch):
    label_cases(8, workspace, real_export, monkeypatch)


# -- databases that are not ours (issue 22, item 2) --------------------------------------------
TABLE_NAMES = ["users", "studies", "trials", "version_info", "alembic_version", "[bold]x", "a\x1b[2Jb", "bell\x07",
               "line\nbreak", "é", "t" * 120]


def hostile_database(rng: random.Random, path: Path, store: Path) -> tuple[str, bool]:
    """One database a user might name with --storage; returns what it is and whether it is an Optuna store
    (maybe a damaged one, where a version message is fair)."""
    import sqlite3

    from tests.support.foreign_databases import NOT_OURS

    kind = rng.randrange(7)
    if kind == 0:
        name = rng.choice(sorted(NOT_OURS))
        NOT_OURS[name](path)
        return name, False
    if kind == 1:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
        return "random bytes", False
    if kind == 2:
        header = b"SQLite format 3\x00"
        path.write_bytes(header + bytes(rng.randrange(256) for _ in range(rng.choice((84, 500, 4080)))))
        return "a SQLite header and random bytes", False
    if kind == 3:
        names = rng.sample(TABLE_NAMES, rng.randrange(1, 5))
        connection = sqlite3.connect(path)
        for name in names:
            connection.execute(f'CREATE TABLE "{name}" (version_num TEXT)')
        if "alembic_version" in names and rng.random() < 0.7:
            connection.execute('INSERT INTO "alembic_version" VALUES (?)', (rng.choice(["v3.2.0.a", "abc123", ""]),))
        connection.commit()
        connection.close()
        ours = {"studies", "trials", "version_info"} <= set(names)
        return f"tables {names!r}", ours
    data = bytearray(store.read_bytes())
    if kind == 4:
        path.write_bytes(bytes(data[: rng.randrange(len(data))]))
        return "a truncated study store", True
    if kind == 5:
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(100, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        return "a study store with flipped bytes", True
    path.write_bytes(bytes(data))
    connection = sqlite3.connect(path)
    connection.execute("UPDATE alembic_version SET version_num = ?", (rng.choice(["v1.3.0.a", "zzz", "v3.2.0.a"]),))
    connection.commit()
    connection.close()
    return "a study store of another revision", True


def database_cases(count: int, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    rng = random.Random(SEED + 5)
    outputs = (workspace / "out", workspace / "r.html")  # what export and report may write for a real store
    own = (Path(os.environ["AUTOML_TL_STUDIES"]), *outputs)
    store = workspace.parent / "store.db"  # a real Optuna store, outside the watched folder
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{store}", direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    for case in range(count):
        database = workspace / f"db-{case}.db"
        what, ours = hostile_database(rng, database, store)
        command = rng.choice([["studies"], ["studies", "--json"], ["show", "s"], ["show", "s", "--json"],
                              ["export", "s", "--format", "onnx", "-o", str(workspace / "out")],
                              ["report", "s", "-o", str(workspace / "r.html")]])
        url = f"sqlite:///{database}"
        if rng.random() < 0.5:
            argv = [*command, "--storage", url]
        else:
            monkeypatch.setenv("AUTOML_TL_STORAGE", url)
            argv = command
        code, output = run_case(argv, workspace, own, f"database case {case} ({what}, {command[0]})")
        monkeypatch.delenv("AUTOML_TL_STORAGE", raising=False)
        if not ours:
            assert code == 2 and str(database) in " ".join(output.split()), \
                f"seed {SEED}, database case {case} ({what}): must be refused by name: {output!r}"
            assert "pip install" not in output and "upgrade" not in output.lower(), \
                f"seed {SEED}, database case {case} ({what}): not an Optuna store, yet: {output!r}"
        database.unlink()
        shutil.rmtree(outputs[0], ignore_errors=True)
        outputs[1].unlink(missing_ok=True)


def test_fuzzed_databases_that_are_not_ours(workspace, monkeypatch):
    database_cases(60, workspace, monkeypatch)


# -- special-file targets ---------------------------------------------------------------------
# Every writing command (report -o, show --plot, export -o) refuses a target that is not a regular file or
# folder of its own: exit 2, nothing changed, and the special file still of its kind.
TARGET_KINDS = ["fifo", "socket", "link-to-fifo", "link-outside", "link-to-export", "user-file", "user-folder"]


def special_target(kind: str, place: Path, workspace: Path, export: Path, keep: list[object]) -> Path:
    """One hostile target in ``place`` (a short path: a socket's name is limited to 108 bytes)."""
    import socket

    target = place / "t.png"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
        keep.append(server)
    elif kind == "link-to-fifo":
        os.mkfifo(place / "pipe")
        target.symlink_to(place / "pipe")
    elif kind == "link-outside":
        outside = workspace / "outside" / "theirs.png"
        outside.parent.mkdir(exist_ok=True)
        outside.write_text("the user's, elsewhere")
        target.symlink_to(outside)
    elif kind == "link-to-export":
        shutil.copytree(export, place / "export")
        target.symlink_to(place / "export")
    elif kind == "user-file":
        target.write_text("the user's")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("the user's")
    return target


def kinds_under(folder: Path) -> dict[str, int]:
    import stat

    return {str(path): stat.S_IFMT(path.lstat().st_mode) for path in sorted(folder.rglob("*"))}


def special_target_cases(workspace: Path, studies: Path, export: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    import automl_tl.runtime.owned_files as owned_files

    real_replace = owned_files.os.replace

    def replace_outside_dev(source: object, destination: object, *args: object, **kwargs: object) -> None:
        assert not str(destination).startswith("/dev/"), f"os.replace onto {destination}"  # some runs are root
        real_replace(source, destination, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(owned_files.os, "replace", replace_outside_dev)
    monkeypatch.setenv("AUTOML_TL_STUDIES", str(studies))
    commands = {"report": ["report", "mf", "-o"], "show --plot": ["show", "mf", "--plot"],
                "export": ["export", "mf", "--format", "onnx", "-o"]}
    cases = 0
    for label, command in commands.items():
        for kind in TARGET_KINDS + ["/dev/null"]:
            for overwrite in (False, True):
                if kind == "user-file" and overwrite and label != "export":
                    continue  # --overwrite is how a user file is replaced on purpose
                place = workspace / "sp"
                place.mkdir()
                keep: list[object] = []
                target = Path(kind) if kind.startswith("/") else special_target(kind, place, workspace, export, keep)
                before = kinds_under(workspace) | ({kind: os.lstat(kind).st_mode} if kind.startswith("/") else {})
                argv = [*command, str(target), *(["--overwrite"] if overwrite else [])]
                code, output = run_case(argv, workspace, (studies,), f"special target {label} -> {kind}")
                assert code == 2 and "nothing was written" in " ".join(output.split()), \
                    f"{label} -> {kind}, overwrite {overwrite}: {output[-600:]}"
                after = kinds_under(workspace) | ({kind: os.lstat(kind).st_mode} if kind.startswith("/") else {})
                assert after == before, f"{label} -> {kind}: a file changed its kind"
                for server in keep:
                    server.close()  # type: ignore[attr-defined]
                shutil.rmtree(place)
                shutil.rmtree(workspace / "outside", ignore_errors=True)
                cases += 1
    return cases


def test_special_file_targets_of_every_writing_command(workspace, small_cnn_exports, real_export, tmp_path,
                                                        monkeypatch):
    studies = tmp_path / "fuzz-studies"
    shutil.copytree(small_cnn_exports / "studies", studies)
    assert special_target_cases(workspace, studies, real_export, monkeypatch) >= 40


# -- cache entries with flipped bytes (issue 22, item 5) --------------------------------------
def damage_cache_entry(rng: random.Random, folder: Path) -> str:
    """One random kind of damage to a random entry of the store in ``folder``; returns what was done."""
    arrays = sorted(p for p in folder.glob("*.npy") if not p.name.startswith("."))
    array = rng.choice(arrays)
    sidecar, data = array.with_suffix(".json"), bytearray(array.read_bytes())
    kind = rng.choice(["flip", "flip-header", "random-values", "2kb-middle", "truncate", "append", "sidecar-flip",
                       "sidecar-missing", "sidecar-swap", "sidecar-empty"])
    others = [p.with_suffix(".json") for p in arrays if p != array and p.with_suffix(".json").exists()]
    if kind.startswith("sidecar") and not sidecar.exists():
        kind = "flip"  # an earlier case removed it, and no search has read this entry since
    if kind in ("flip", "flip-header"):
        low, high = (0, 127) if kind == "flip-header" else (128, len(data) - 1)
        for _ in range(rng.randint(1, 8)):
            data[rng.randint(low, high)] ^= 1 << rng.randrange(8)
    elif kind == "random-values":
        data[128:] = rng.randbytes(len(data) - 128)
    elif kind == "2kb-middle":
        start = rng.randint(128, max(128, len(data) - 2048))
        data[start:start + 2048] = rng.randbytes(min(2048, len(data) - start))
    elif kind == "truncate":
        data = data[: rng.randint(0, len(data) - 1)]
    elif kind == "append":
        data += rng.randbytes(rng.randint(1, 64))
    elif kind == "sidecar-flip":
        text = bytearray(sidecar.read_bytes())
        text[rng.randrange(len(text))] ^= 1 << rng.randrange(7)
        sidecar.write_bytes(bytes(text))
    elif kind == "sidecar-missing":
        sidecar.unlink()
    elif kind == "sidecar-swap" and others:
        other = rng.choice(others)
        first, second = sidecar.read_bytes(), other.read_bytes()
        sidecar.write_bytes(second)
        other.write_bytes(first)
    else:
        sidecar.write_bytes(b"")
    if kind in ("flip", "flip-header", "random-values", "2kb-middle", "truncate", "append"):
        array.write_bytes(bytes(data))
    return f"{kind} {array.name}"


def decoded_damage_cases(count: int, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search over a decoded-image store damaged at random: it uses the clean pixels, decoded again."""
    import numpy as np

    from automl_tl.data import checksums

    rng = random.Random(SEED + 22)
    cache = workspace.parent / "damaged-cache"
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(cache))
    own = (Path(os.environ["AUTOML_TL_STUDIES"]), cache)
    data = str(workspace / "data")
    for size in ("16", "20"):  # two entries, so that sidecars can be swapped
        run_case(["search", data, "--study", f"clean{size}", *STUB, "--trials", "1", "--image-size", size],
                 workspace, own, "a clean search")
    decoded = cache / "decoded"
    clean = {str(np.load(p).shape[1]): (p.name, np.load(p)) for p in decoded.glob("*.npy")}
    for case in range(count):
        damage = damage_cache_entry(rng, decoded)
        checksums.forget()  # what a new process knows
        size = rng.choice(["16", "20"])
        code, output = run_case(["search", data, "--study", f"d{case}", *STUB, "--trials", "1", "--image-size", size],
                                workspace, own, f"cache case {case} ({damage})")
        assert code == 0, f"seed {SEED}, cache case {case} ({damage}): exit {code}\n{output[-1500:]}"
        assert " ".join(output.split()).count("did not match the checksum") <= 1
        name, pixels = clean[size]  # the entry the search read is whole again
        assert np.array_equal(np.load(decoded / name), pixels), f"seed {SEED}, cache case {case} ({damage})"


def activation_damage_cases(count: int, tmp: Path) -> None:
    """Activation entries damaged at random: what a reader gets is always the true values."""
    import numpy as np

    from automl_tl.cache.store import DiskStore
    from automl_tl.data import checksums
    from automl_tl.runtime.notices import receiving_notices
    from automl_tl.testing import synthetic_table
    from tests.cache.test_activation_cache import LinearBlocks, direct

    rng = random.Random(SEED + 23)
    data, weights = synthetic_table(n_per_split=4, size=8), [2.0, 0.5, 3.0]
    store = DiskStore(tmp / "activations", 2**30, "float16")
    LinearBlocks(store, data, weights).pooled(1)
    LinearBlocks(store, data, weights).after_block(2)
    for case in range(count):
        damage = damage_cache_entry(rng, store.root)
        checksums.forget()
        with receiving_notices() as inbox:  # this case's notices only
            prefix = LinearBlocks(DiskStore(store.root, 2**30, "float16"), data, weights)
            for depth in (1, 2, 3):
                np.testing.assert_allclose(np.asarray(prefix.pooled(depth), np.float32),
                                           direct(data, weights, depth).mean(axis=(1, 2)), rtol=2e-3, atol=2e-3,
                                           err_msg=f"seed {SEED}, activation case {case} ({damage}), pooled {depth}")
            np.testing.assert_allclose(np.asarray(prefix.after_block(2), np.float32), direct(data, weights, 2),
                                       rtol=2e-3, atol=2e-3, err_msg=f"seed {SEED}, activation case {case} ({damage})")
        assert len(inbox.take()) <= 1, f"seed {SEED}, activation case {case} ({damage}): more than one notice"


def test_fuzzed_cache_entries_with_flipped_bytes(workspace, tmp_path, monkeypatch):
    decoded_damage_cases(12, workspace, monkeypatch)
    activation_damage_cases(40, tmp_path)


@pytest.mark.fuzz_long
def test_many_more_fuzzed_cache_entries(workspace, tmp_path, monkeypatch):
    decoded_damage_cases(120, workspace, monkeypatch)
    activation_damage_cases(400, tmp_path)
