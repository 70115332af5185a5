"""``nas-skip search``, ``export --study`` and ``dashboard`` in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import CLI_SPACE as SPACE
from helpers import nas_skip_cli


@pytest.fixture
def space(tmp_path: Path) -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(SPACE)
    return path


def test_search_then_export_the_best(tmp_path: Path, space: Path) -> None:
    done = nas_skip_cli("search", "--space", space, "--trials", "3", "--epochs", "2",
                        "--seed", "0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cli-digits: top 5" in done.stdout and "3 finished" in done.stdout
    assert "nas-skip dashboard --study cli-digits" in done.stdout
    assert (tmp_path / "runs" / "nas_skip.db").exists()  # the embedded default
    out = tmp_path / "best"
    done = nas_skip_cli("export", "--study", "cli-digits", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in out.iterdir()} == {"model.py", "weights.pt", "genotype.json",
                                               "metrics.json"}  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["study"] == "cli-digits" and "accuracy" in metrics["values"]
    again = nas_skip_cli("search", "--space", space, "--trials", "3", "--epochs", "2",
                         cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0 and "3 finished" in again.stdout  # nothing more to run


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ("--sampler", "bayes"),
            "--sampler: must be one of local-search, tpe, random, nsga2, evolution",
        ),
        (("--evaluator", "nb201"), "--evaluator: unknown evaluator 'nb201' (evaluators: train,"),
        (("--evaluator", "nb201-cifar10"), "space 'cli' is not a NAS-Bench-201 cell space"),
        (("--objectives", "accuracy,params", "--sampler", "local-search"), "use nsga2"),
        (("--objectives", "accuracy,size"), "--objectives: unknown objective 'size'"),
        (("--objectives", "params"), "--objectives: must start with accuracy"),
        (("--objectives", "accuracy,params", "--sampler", "evolution"), "use nsga2"),
        (("--backend", "spark"), "--backend: must be one of local, ray"),
        (("--trials", "0"), "--trials: must be at least 1"),
        (("--storage", "postgresql://x@127.0.0.1:1/y"), "--storage postgresql://x@127.0.0.1:1/y"),
        (("--dataset", "shapes"), "dataset 'shapes' offers image data but space 'cli' needs"),
        (("--strategy", "oneshot", "--fix", "depth"), "--fix: expected NAME=VALUE (depth=16)"),
        (("--strategy", "oneshot", "--fix", "width=9"), "--fix width: '9' is not one of 8, 16"),
    ],
)
def test_search_errors_are_one_line(tmp_path: Path, space: Path, args: tuple, words: str) -> None:
    done = nas_skip_cli("search", "--space", space, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error: ") and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_oneshot_search_from_the_command_line(tmp_path: Path, space: Path) -> None:
    done = nas_skip_cli("search", "--space", space, "--strategy", "oneshot", "--epochs", "2",
                        "--fix", "depth=2", "--fix", "width=8", "--relaxation", "sigmoid",
                        "--max-skips", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "one-shot run 1: supernet 2 epochs" in done.stderr
    assert "supernet 1 epoch 2/2" in done.stderr  # plain progress lines off a terminal
    assert "1 finished" in done.stdout and "nas-skip report --study cli-digits" in done.stdout


def test_export_errors_are_one_line(tmp_path: Path, space: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'db.sqlite'}"
    done = nas_skip_cli("search", "--space", space, "--trials", "1", "--epochs", "1",
                        "--storage", storage, "--keep", "0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for args, words in [
        (("--study", "nope"), "--study nope: no such study in"),
        (("--study", "cli-digits", "--trial", "9"), "--trial 9: the study has trials 0 to 0"),
        (("--study", "cli-digits"), "its weights were not kept"),
    ]:
        done = nas_skip_cli("export", "--storage", storage, *args, "--out", tmp_path / "o")
        assert done.returncode == 2 and words in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    done = nas_skip_cli("export", "--storage", storage, "--study", "cli-digits",
                        "--retrain-epochs", "1", "--out", tmp_path / "o")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "weights retrained" in done.stdout and (tmp_path / "o" / "weights.pt").exists()


def test_dashboard_serves_the_study_on_loopback(tmp_path: Path, space: Path) -> None:
    done = nas_skip_cli("search", "--space", space, "--trials", "1", "--epochs", "1",
                        cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas_skip.cli", "dashboard", "--study", "cli-digits",
         "--port", "0"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 60
        while "open http" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        url = line.split()[1]
        assert url.startswith("http://127.0.0.1:") and "/dashboard/studies/" in url
        base = url.split("/dashboard/")[0]
        with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
            studies = json.load(response)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["cli-digits"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in err


def test_dashboard_without_a_search_says_so(tmp_path: Path) -> None:
    done = nas_skip_cli("dashboard", cwd=tmp_path)
    assert done.returncode == 2 and "no search storage at runs/nas_skip.db" in done.stderr
