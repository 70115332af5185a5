"""Fixtures shared by the top-level tests (helpers.py holds the plain helper functions)."""

from __future__ import annotations

import pytest
from helpers import blobs

import nas_skip


@pytest.fixture
def data() -> nas_skip.Dataset:
    """Three Gaussian blobs as a user's arrays: 240 to train on, 60 to validate."""
    (x, y), (xv, yv) = blobs(240, 0), blobs(60, 1)
    return nas_skip.Dataset.from_arrays(x, y, x_val=xv, y_val=yv, name="blobs")


def _serial(item: pytest.Item) -> bool:
    """Whether a test starts Ray or uses the machine's PostgreSQL."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return (
        item.path.name in ("test_ray.py", "test_cluster.py")
        or "ray" in params  # the backends' conformance suite, on Ray
        or item.name.endswith("_on_ray")
        or "postgres" in getattr(item, "fixturenames", ())
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``make test`` runs the suite in two pytest-xdist workers (``--dist loadgroup``); the
    tests that start Ray or use the machine's PostgreSQL go to one of them, one at a
    time: a second Ray on two cores would only slow both, and the PostgreSQL fixture
    deletes the studies that appeared during its test, another worker's too. Without
    xdist the mark does nothing."""
    for item in items:
        if _serial(item):
            item.add_marker(pytest.mark.xdist_group("serial"))
