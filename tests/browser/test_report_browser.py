"""report.html in a real browser: every plot renders, offline, with no JavaScript error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import SPACE, screenshot

from nas_skip.report import write_report
from nas_skip.searching import SearchConfig, search

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
    files = write_report(url, result.study_name, tmp_path / "report", tmp_path / "artifacts")
    page.goto(files.html.as_uri())
    page.wait_for_function("window.__report_ready === true", timeout=60_000)
    for plot in PLOTS:
        box = page.locator(f"#{plot}")
        if plot == "plot-importances" and page.locator("#plot-importances-note").count():
            continue  # too few trials for fANOVA: the page says so in a sentence
        assert box.locator(".main-svg").count() >= 1, plot  # plotly drew it
        assert box.bounding_box()["height"] > 100, plot
    drawings = page.locator("figure[id^=arch-trial-] img")  # the top architectures, as images
    assert drawings.count() >= 1
    assert drawings.first.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "report.png")
    assert page.js_errors == []


def test_a_hostile_drawing_runs_nothing(page: Any, tmp_path: Path) -> None:
    # a topology artifact whose SVG carries a script and an onload handler: shown as an
    # image, it draws and runs nothing (inlined, it set window.pwned)
    import json
    import uuid

    import optuna
    from optuna.distributions import CategoricalDistribution

    folder = tmp_path / "artifacts"
    folder.mkdir()
    artifact = str(uuid.uuid4())
    (folder / artifact).write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20" '
        'onload="window.parent.pwned = 1; window.pwned = 1">'
        "<script>window.parent.pwned = 2; window.pwned = 2</script>"
        '<rect width="40" height="20" fill="#1f6feb"/></svg>'
    )
    doc = {"schema": 1, "input": {"shape": [3]}, "output": "a",
           "nodes": [{"id": "a", "op": "linear", "features": 2}],
           "edges": [{"src": "input", "dst": "a"}]}  # fmt: skip
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="hostile", storage=url, direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        params={"w": 8}, distributions={"w": CategoricalDistribution([8, 16])}, value=0.5,
        user_attrs={"genotype": json.dumps(doc), "topology_artifact": artifact},
    ))  # fmt: skip
    files = write_report(url, "hostile", tmp_path / "report", folder)
    page.goto(files.html.as_uri())
    page.wait_for_function("window.__report_ready === true", timeout=60_000)
    image = page.locator("figure#arch-trial-0 img")
    page.wait_for_function("img => img.complete && img.naturalWidth === 40",
                           arg=image.element_handle(), timeout=30_000)  # fmt: skip
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("script", has_text="pwned").count() == 0
