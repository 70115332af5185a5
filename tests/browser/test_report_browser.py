"""report.html in a real browser: every plot renders, offline, with no JavaScript error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import SPACE, screenshot

from nas_skip.report import write_report
from nas_skip.search import SearchConfig, search

pytestmark = pytest.mark.slow
PLOTS = ["plot-best-so-far", "plot-pareto", "plot-accuracy-params", "plot-skip-hops",
         "plot-importances"]  # fmt: skip


def test_every_plot_of_the_report_renders(page: Any, tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(SPACE)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = search(SearchConfig(space=str(tmp_path / "tiny.yaml"), trials=8, epochs=1, seed=0,
                                 objectives=("accuracy", "params"), storage=url,
                                 artifacts=str(tmp_path / "artifacts")),
                    progress=False)  # fmt: skip
    files = write_report(url, result.study_name, tmp_path / "report")
    page.goto(files.html.as_uri())
    page.wait_for_function("window.__report_ready === true", timeout=60_000)
    for plot in PLOTS:
        box = page.locator(f"#{plot}")
        if plot == "plot-importances" and page.locator("#plot-importances-note").count():
            continue  # too few trials for fANOVA: the page says so in a sentence
        assert box.locator(".main-svg").count() >= 1, plot  # plotly drew it
        assert box.bounding_box()["height"] > 100, plot
    assert page.locator("figure[id^=arch-trial-] svg").count() >= 1  # the top architectures
    screenshot(page, "report.png")
    assert page.js_errors == []
