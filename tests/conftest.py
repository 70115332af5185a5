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
