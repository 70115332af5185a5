"""optuna-dashboard in a real browser: a trial shows its topology drawing and its note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import SPACE, screenshot

from nas_skip.dashboard import serving
from nas_skip.searching import SearchConfig, search

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, optuna.Study, Path]:
    """A real small search: 3 trials of a tiny space; its storage URL, study and artifact
    folder."""
    tmp = tmp_path_factory.mktemp("browser")
    (tmp / "tiny.yaml").write_text(SPACE)
    url = f"sqlite:///{tmp / 'study.db'}"
    result = search(SearchConfig(space=str(tmp / "tiny.yaml"), trials=3, epochs=1, seed=0,
                                 storage=url, artifacts=str(tmp / "artifacts")),
                    progress=False)  # fmt: skip
    return url, result.study, tmp / "artifacts"


def test_a_trial_shows_its_topology_and_note(
    page: Any, study: tuple[str, optuna.Study, Path]
) -> None:
    url, s, artifacts = study
    trial = s.trials[0]
    with serving(url, "127.0.0.1", 0, [artifacts]) as base:  # the search's --artifacts
        assert base.startswith("http://127.0.0.1:")
        page.goto(f"{base}dashboard/studies/{s._study_id}/trials")
        page.locator("h3", has_text=f"Trial 0: {trial.user_attrs['hash']}").wait_for(
            timeout=30_000
        )  # the note's heading
        assert "skips by kind" in page.inner_text("body")
        artifact = trial.user_attrs["topology_artifact"]
        image = page.locator(f'img[src*="{artifact}"]')
        image.wait_for(timeout=30_000)
        image.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=30_000)  # fmt: skip
        path = screenshot(page, "dashboard-trial.png")
    assert path.stat().st_size > 10_000
    assert page.js_errors == []
