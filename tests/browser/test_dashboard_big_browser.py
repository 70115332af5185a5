"""optuna-dashboard on a study of hundreds of deep_mlp trials, in a real browser: the page
shows the trials, their parameters and notes from the gzipped detail, plots them by their
parameters, and shows a new trial after a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bench_big_study as b
import pytest

from nas_skip.dashboard import serving
from nas_skip.searching._reading import open_existing
from nas_skip.spaces import load_space

pytestmark = pytest.mark.slow


def test_a_big_study_shows_its_trials(page: Any, tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    b.seed_study(db, tmp_path, load_space("deep_mlp"), n=40)
    b.grow(db, 400)
    url = f"sqlite:///{db}"
    study_id = open_existing(url).get_study_id_from_name(b.STUDY)
    details: list[Any] = []
    page.on("response", lambda r: "after=0" in r.url and details.append(r))
    with serving(url, "127.0.0.1", 0, [tmp_path / "artifacts"]) as base:
        page.goto(f"{base}dashboard/studies/{study_id}")
        page.get_by_text("Best Trial (number=").wait_for(timeout=60_000)
        assert details and details[0].headers.get("content-encoding") == "gzip"
        assert "Hyperparameter Importance" in page.inner_text("body")
        page.goto(f"{base}dashboard/studies/{study_id}/trials")
        page.get_by_text("400 Trials").wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "n" * 600 in body and "edge:stem->l0" in body  # a note, the parameters
        b.grow(db, 401)  # a trial more, as a search adds one
        page.reload()
        page.get_by_text("401 Trials").wait_for(timeout=60_000)
        # the plots place trials by their parameters, on axes from the search-space
        # summary (the trials' parameters come without their distributions)
        page.goto(f"{base}dashboard/studies/{study_id}/analytics")
        rank = page.locator(".js-plotly-plot", has_text="edge:l0->l1")
        rank.get_by_text("concat").first.wait_for(timeout=60_000)  # a categorical axis
        assert rank.locator(".points path").count() > 100  # the trials placed on it
        assert page.locator(".js-plotly-plot", has_text="Param depth").locator(
            ".points path").count() > 100  # fmt: skip
    assert page.js_errors == []
