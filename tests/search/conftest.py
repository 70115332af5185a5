"""Fixtures for the search tests: tiny spaces on a fast dataset, storages, PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from helpers import write_space

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def tiny_space(tmp_path: Path) -> Path:
    """A space of 1-2 layers: about 30 genotypes, trials of a fraction of a second."""
    return write_space(tmp_path)


@pytest.fixture
def repeating_space(tmp_path: Path) -> Path:
    """A space of 2 genotypes (one skip on or off) with fixed hyperparameters: it repeats."""
    return write_space(tmp_path, "repeat", depth="1", width="8", kinds="[none, add]")


@pytest.fixture
def postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    """The machine's PostgreSQL on 127.0.0.1:5432 (started if it is down); the study a test
    makes there, named by its ``study_name`` fixture, is deleted afterwards (only that one:
    the other test worker's studies live in the same database at the same time)."""
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432"]).returncode != 0:
        ctl = shutil.which("pg_ctlcluster")
        versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
        subprocess.run([ctl or "pg_ctlcluster", "--skip-systemctl-redirect", versions[-1],
                        "main", "start"], check=True)  # fmt: skip
    # the test's own name, known now (a test that asks for fixtures as it runs asks for
    # study_name first)
    name = request.getfixturevalue("study_name") if "study_name" in request.fixturenames else None
    yield PG_URL
    if name is not None and name in optuna.get_all_study_names(PG_URL):
        optuna.delete_study(study_name=name, storage=PG_URL)


@pytest.fixture
def study_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
