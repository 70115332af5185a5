"""One-line errors where the command line used to print a traceback (issue 11, item 6):
option values out of range, hostile genotype and space files, names that are not plain
text, storage URLs, a full disk. Each error is ``error: <one line>`` and exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import CLI_SPACE as SPACE
from helpers import nas_skip_cli

from nas_skip.cli import main

GENOTYPE: dict[str, Any] = {
    "schema": 1,
    "input": {"shape": [4]},
    "nodes": [
        {"id": "a", "op": "linear_relu", "features": 8},
        {"id": "head", "op": "linear_head", "classes": 3},
    ],
    "edges": [{"src": "input", "dst": "a"}, {"src": "a", "dst": "head"}],
    "output": "head",
}


def run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``nas-skip ARGS`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def one_error_line(code: int, err: str, words: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err


def genotype(tmp_path: Path, change: dict[str, Any] | None = None, **node: Any) -> Path:
    doc = json.loads(json.dumps(GENOTYPE))
    doc["nodes"][0].update(node)
    doc["edges"][0].update(change or {})
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    return path


# --- option values, refused before anything is created ------------------------------------
@pytest.mark.parametrize("seed", ["-1", "4294967296"])
@pytest.mark.parametrize("sampler", ["local-search", "tpe"])
def test_search_refuses_a_seed_out_of_range_before_the_study_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    seed: str, sampler: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli.yaml").write_text(SPACE)
    code, _, err = run(["search", "--space", "cli.yaml", "--seed", seed, "--sampler", sampler],
                       capsys)  # fmt: skip
    one_error_line(code, err, f"error: --seed: must be in [0, 4294967295], got {seed}")
    assert not (tmp_path / "runs").exists()  # no storage, no study


def test_the_largest_seed_runs_and_reruns(tmp_path: Path) -> None:
    """A rerun offsets the seed by the trials the study holds: it stays in numpy's range."""
    (tmp_path / "cli.yaml").write_text(SPACE)
    for trials in ("1", "2"):
        done = nas_skip_cli("search", "--space", "cli.yaml", "--trials", trials, "--epochs",
                            "1", "--seed", "4294967295", "--sampler", "random",
                            cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"{trials} finished" in done.stdout


def test_spaces_refuses_a_seed_out_of_range(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["spaces", "deep_mlp", "--seed", "-1"], capsys)
    one_error_line(code, err, "error: --seed: must be in [0, 4294967295], got -1")


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_dashboard_refuses_a_port_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'none.db'}"
    code, _, err = run(["dashboard", "--storage", storage, "--port", port], capsys)
    one_error_line(
        code, err, f"error: --port: must be in [0, 65535] (0: any free port), got {port}"
    )
    assert not (tmp_path / "none.db").exists()


# --- genotype files ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("node", "edge", "words"),
    [
        ({"op": ["linear_relu"]}, {}, "g.json: node 'a': unknown op ['linear_relu'] (ops: "),
        ({"op": {"linear_relu": 1}}, {}, "g.json: node 'a': unknown op {'linear_relu': 1}"),
        ({}, {"kind": ["add"]}, "g.json: edge input -> a: unknown kind ['add'] (kinds: "),
        ({}, {"kind": {"add": 1}}, "g.json: edge input -> a: unknown kind {'add': 1}"),
        ({}, {"align": {"auto": 1}}, "g.json: edge input -> a: unknown align {'auto': 1}"),
    ],
)
def test_an_op_or_kind_that_is_a_list_or_mapping_names_its_node_or_edge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], node: dict[str, Any],
    edge: dict[str, Any], words: str,
) -> None:  # fmt: skip
    code, _, err = run(["show", genotype(tmp_path, edge, **node)], capsys)
    one_error_line(code, err, words)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 1000 + "]" * 1000, "g.json: the JSON is nested too deeply"),
        ('{"schema": 1, "input": ' + "{\"a\": " * 1000 + "1" + "}" * 1001,
         "g.json: the JSON is nested too deeply"),
        (json.dumps(GENOTYPE).replace('"features": 8', '"features": ' + "9" * 5000),
         "g.json: a number in the JSON has too many digits"),
    ],
)  # fmt: skip
def test_hostile_genotype_json_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    (tmp_path / "g.json").write_text(text)
    code, _, err = run(["show", tmp_path / "g.json"], capsys)
    one_error_line(code, err, words)


def test_a_genotype_file_that_is_not_utf8_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "g.json").write_bytes(
        json.dumps(GENOTYPE).replace('"a"', '"\xe9"').encode("latin-1")
    )
    code, _, err = run(["show", tmp_path / "g.json"], capsys)
    one_error_line(code, err, "g.json: not UTF-8")


# --- space files ---------------------------------------------------------------------------
TRAIN = "train: {lr: 0.05, batch_size: 256}"
DEEP = "the YAML is nested too deeply"
FINITE = "must be finite numbers with low <= high"


@pytest.mark.parametrize(
    ("train", "words"),
    [
        ("{lr: " + "[" * 1000 + "]" * 1000 + "}", DEEP),
        ("{lr: " + "{a: " * 1000 + "1" + "}" * 1001, DEEP),
        ("{batch_size: " + "9" * 5000 + "}", "a number in the YAML has too many digits"),
        ("{lr: {low: -.inf, high: 0.1}}", f"train.lr: range [-inf, 0.1] {FINITE}"),
        ("{lr: {low: 0.01, high: .inf}}", f"train.lr: range [0.01, inf] {FINITE}"),
        ("{lr: {low: .nan, high: 0.1}}", f"train.lr: range [nan, 0.1] {FINITE}"),
        ("{lr: .nan}", "train.lr: must be distinct finite numbers"),
        ("{lr: [0.1, .inf]}", "train.lr: must be distinct finite numbers"),
    ],
)
def test_hostile_space_yaml_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], train: str, words: str
) -> None:
    (tmp_path / "cli.yaml").write_text(SPACE.replace(TRAIN, f"train: {train}"))
    code, _, err = run(["spaces", tmp_path / "cli.yaml"], capsys)
    one_error_line(code, err, f"cli.yaml: {words}")


def test_a_space_file_that_is_not_utf8_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cli.yaml").write_bytes(
        SPACE.replace("name: cli", "name: cl\xe9").encode("latin-1")
    )
    code, _, err = run(["search", "--space", tmp_path / "cli.yaml"], capsys)
    one_error_line(code, err, "cli.yaml: not UTF-8")


# --- names that are not plain text ---------------------------------------------------------
ESCAPE = "\x1b[31mRED\x1b]0;title\x07"
STRICT = {"PYTHONIOENCODING": "utf-8"}  # a terminal's strict UTF-8: a surrogate cannot print


def cli(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``nas-skip ARGS`` in a subprocess whose stdout and stderr encode strictly."""
    return subprocess.run([sys.executable, "-m", "nas_skip.cli", *map(str, args)],
                          capture_output=True, text=True, errors="surrogateescape", cwd=cwd,
                          env={**os.environ, "COLUMNS": "100", **STRICT}, timeout=300)  # fmt: skip


@pytest.mark.parametrize("name", [ESCAPE + "\ud800", "bidi\u202eevil"])
def test_names_in_output_are_printed_escaped(tmp_path: Path, name: str) -> None:
    doc = {**GENOTYPE, "name": name}
    (tmp_path / "g.json").write_text(json.dumps(doc))  # JSON's \\ud800: a lone surrogate
    done = cli("show", "g.json", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert repr(name)[1:-1] in done.stdout
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    (tmp_path / "s.yaml").write_text(SPACE.replace("name: cli", f"name: {json.dumps(name)}"))
    done = cli("spaces", "s.yaml", cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    title = "".join(done.stdout.split())  # the table's title wraps at the table's width
    assert f"{repr(name)[1:-1]}ondigits" in title and "\x1b" not in done.stdout


def test_names_in_errors_are_printed_escaped(tmp_path: Path) -> None:
    bad = tmp_path / f"{ESCAPE}.json"
    bad.write_text("{")
    done = cli("show", bad, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "\\x1b[31mRED\\x1b]0;title\\x07.json: not valid JSON" in done.stderr
    assert "\x1b" not in done.stderr
    edges = [{"src": ESCAPE + "\ud800", "dst": "a"}, {"src": "a", "dst": "head"}]
    (tmp_path / "g.json").write_text(json.dumps({**GENOTYPE, "edges": edges}))
    done = cli("show", "g.json", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "\x1b" not in done.stderr and "\\ud800" in done.stderr


@pytest.mark.parametrize("command", ["report", "retrain"])
def test_a_study_name_that_is_not_text_is_one_error_line(tmp_path: Path, command: str) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(storage=storage, study_name="s")
    # bytes that are not UTF-8 on the command line: a surrogate escape ("\udcff") to Python
    done = cli(command, "--storage", storage, "--study", os.fsdecode(b"\xff\x1b"), "--out",
               tmp_path / "o", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: '\\udcff\\x1b': holds '\\udcff', not utf-8 text")


# --- storage URLs --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("storage", "words"),
    [
        ("x.db", "x.db: not a storage URL; did you mean sqlite:///x.db?"),
        ("runs.sqlite3", "runs.sqlite3: not a storage URL; did you mean sqlite:///runs.sqlite3?"),
        ("nas", "nas: not a storage URL; did you mean sqlite:///FILE.db, "),
        ("sqlite:///missing/dir/x.db", "sqlite:///missing/dir/x.db: no folder missing/dir"),
        ("journal:missing/x.log", "journal:missing/x.log: no folder missing"),
        ("missing/x.log", "missing/x.log: no folder missing"),
    ],
)
def test_a_storage_that_is_no_url_or_in_a_missing_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    storage: str, words: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cli.yaml").write_text(SPACE)
    code, _, err = run(["search", "--space", "cli.yaml", "--storage", storage], capsys)
    one_error_line(code, err, f"error: --storage {words}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.yaml"]  # no folder, no file


@pytest.fixture
def postgres() -> Iterator[str]:
    """The machine's PostgreSQL as the README writes its URL: plain ``postgresql://``
    (the driver is SQLAlchemy's default, a runtime dependency); started if it is down."""
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
        subprocess.run([shutil.which("pg_ctlcluster") or "pg_ctlcluster",
                        "--skip-systemctl-redirect", versions[-1], "main", "start"],
                       check=True)  # fmt: skip
    url = "postgresql://postgres@127.0.0.1:5432/test"
    yield url
    for name in optuna.get_all_study_names(url):  # this process's only: others may run
        if name.startswith(f"cli-pg-{os.getpid()}-"):
            optuna.delete_study(study_name=name, storage=url)


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/test",
                                 "postgresql://127.0.0.1:5432/test"])  # fmt: skip
def test_search_on_a_plain_postgresql_url(tmp_path: Path, postgres: str, url: str) -> None:
    (tmp_path / "cli.yaml").write_text(SPACE)
    study = f"cli-pg-{os.getpid()}-{len(url)}"
    done = nas_skip_cli("search", "--space", "cli.yaml", "--trials", "1", "--epochs", "1",
                        "--storage", url, "--study", study, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 finished" in done.stdout
    assert study in optuna.get_all_study_names(postgres)


# --- a full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system of 64 KiB (tmpfs), mounted for the test; skipped where this
    process may not mount (not root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 1024):
            pass
    except OSError:  # ENOSPC: full
        pass
    finally:
        os.close(fd)


def states(url: str) -> list[tuple[str, Any]]:
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name="full", storage=storage)
        return [(t.state.name, t.user_attrs.get("fail_reason")) for t in study.trials]
    finally:
        storage.engine.dispose()  # no open file keeps the small disk from unmounting


def test_artifacts_on_a_full_disk_fail_the_trial_and_stop(
    tmp_path: Path, small_disk: Path
) -> None:
    (tmp_path / "cli.yaml").write_text(SPACE)
    fill(small_disk)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    done = nas_skip_cli("search", "--space", "cli.yaml", "--trials", "5", "--epochs", "1",
                        "--study", "full", "--storage", storage, "--artifacts", small_disk / "a",
                        cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("error: trial 0 failed: No space left on device (on the disk of "
                           f"--artifacts {small_disk / 'a'}")  # fmt: skip
    assert states(storage) == [("FAIL", "OSError: [Errno 28] No space left on device")]


@pytest.mark.parametrize("size", ["200k", "300k"])
def test_a_storage_on_a_full_disk_is_one_error_line_and_leaves_no_trial_running(
    tmp_path: Path, small_disk: Path, size: str
) -> None:
    """The disk fills while the study is made or a trial is asked or told: one line. The
    trial is marked FAIL where the storage still takes that write; where it takes none,
    the line says so, and the next run (on a disk with room again) marks it."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(small_disk)], check=True)
    (tmp_path / "cli.yaml").write_text(SPACE)
    storage = f"sqlite:///{small_disk / 's.db'}"
    args = ["search", "--space", "cli.yaml", "--epochs", "1", "--study", "full", "--storage",
            storage, "--artifacts", tmp_path / "a"]  # fmt: skip
    done = nas_skip_cli(*args, "--trials", "40", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"error: --storage {storage}: cannot write (database or disk is full)")
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    if "the search stopped" in last:  # the study exists: its trials are FAIL, or said not to be
        running = [s for s, _ in states(storage) if s == "RUNNING"]
        assert not running or "left RUNNING" in last
    done = nas_skip_cli(*args, "--trials", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "RUNNING" not in [s for s, _ in states(storage)]
