"""The report's own cost (issue 16): importances from a bounded forest that still ranks the
parameters that matter, and each trial's genotype parsed once per report (the top
drawings aside, when their artifacts are missing).

The studies are made directly (in memory, or a real SQLite storage): nothing trains.
"""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import chain
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from nas_skip import Genotype
from nas_skip.errors import SkippedTrialWarning
from nas_skip.report import TOP_DRAWINGS, write_report
from nas_skip.report._facts import Facts
from nas_skip.report._figures import FANOVA, importances
from nas_skip.report._readable import readable
from nas_skip.searching._reading import malformed

optuna.logging.set_verbosity(optuna.logging.WARNING)

GENOTYPE = json.dumps(chain([3], {"id": "a", "op": "linear_relu", "features": 4},
                            {"id": "head", "op": "linear_head", "classes": 2}))  # fmt: skip
KINDS = ["none", "add", "concat", "gated", "scaled"]
EDGES = [f"edge:e{i}" for i in range(20)]


def _synthetic(n: int, seed: int = 0) -> optuna.Study:
    """``n`` trials of 20 skip edges, a width and a learning rate (22 parameters that every
    trial has and that vary), one more edge that half the trials have and a parameter that
    never varies. Only ``edge:e3`` ("add": +0.1) and ``width`` (64: +0.03) matter."""
    rng = random.Random(seed)
    kind, width = CategoricalDistribution(KINDS), CategoricalDistribution([64, 128, 256])
    dists: dict[str, Any] = {e: kind for e in EDGES}
    dists |= {"width": width, "lr": FloatDistribution(1e-3, 1e-1, log=True)}
    dists |= {"fixed": CategoricalDistribution(["a", "b"]), "edge:deep": kind}
    study = optuna.create_study(direction="maximize")
    for i in range(n):
        params: dict[str, Any] = {e: rng.choice(KINDS) for e in EDGES}
        params |= {"width": rng.choice([64, 128, 256]), "lr": 10 ** rng.uniform(-3, -1)}
        params |= {"fixed": "a"} | ({"edge:deep": rng.choice(KINDS)} if i % 2 else {})
        value = 0.5 + 0.1 * (params["edge:e3"] == "add") + 0.03 * (params["width"] == 64)
        study.add_trial(create_trial(params=params, value=value + rng.gauss(0.0, 0.003),
                                     distributions={k: dists[k] for k in params}))  # fmt: skip
    return study


@pytest.mark.parametrize("seed", [0, 1])
def test_importances_rank_the_parameters_that_matter_first(seed: int) -> None:
    plot = importances(_synthetic(150, seed), "accuracy")
    assert plot.figure is not None and plot.note is None
    bars = plot.figure.data[0]
    ranked = list(bars.y)[::-1]  # drawn most important at the top
    assert ranked[:2] == ["edge:e3", "width"]
    assert sum(bars.x) == pytest.approx(1.0)  # shares of the variation, as before
    assert bars.x[-1] > 0.5 > max(bars.x[:-2])  # the one that matters stands out
    assert "edge:deep" not in ranked and "fixed" not in ranked and len(ranked) == 22


def test_the_caption_says_how_importances_were_computed() -> None:
    plot = importances(_synthetic(150), "accuracy")
    assert FANOVA == "fANOVA (64 trees of depth at most 6, seed 0)"
    assert plot.caption == (
        "How much of the variation in accuracy each parameter explains: fANOVA (64 trees "
        "of depth at most 6, seed 0) fit to all 150 complete trials, on the 22 parameters "
        "that every one of them has and that vary among them (parameters that exist at "
        "some depths only are left out)."
    )


def test_the_caption_counts_only_the_trials_fanova_fits() -> None:
    study = _synthetic(40)
    t = study.trials[0]
    study.add_trial(create_trial(params=t.params, distributions=t.distributions,
                                 value=float("inf")))  # fmt: skip
    plot = importances(study, "accuracy")
    assert plot.figure is not None
    assert "fit to the 40 complete trials whose accuracy is finite, on the 22 " in plot.caption


def _study(tmp_path: Path, n: int) -> str:
    """A SQLite study of ``n`` complete trials with a genotype, one of another schema (a
    malformed trial) and a pruned one without a genotype; the storage URL."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    width = CategoricalDistribution([8, 16])
    bad = json.dumps({**json.loads(GENOTYPE), "schema": 2})
    for i, text in enumerate([GENOTYPE] * n + [bad]):
        study.add_trial(create_trial(params={"w": [8, 16][i % 2]}, distributions={"w": width},
                                     value=0.01 * i, user_attrs={"genotype": text}))  # fmt: skip
    study.add_trial(create_trial(state=TrialState.PRUNED))
    return url


def test_each_genotype_is_parsed_once_per_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _study(tmp_path, 24)  # enough for every figure, the top 5 drawn from genotypes
    parse = Genotype.from_json
    parsed: list[object] = []

    def counting(doc: Any, **kwargs: Any) -> Genotype:
        parsed.append(doc)
        return parse(doc, **kwargs)

    monkeypatch.setattr(Genotype, "from_json", counting)
    with pytest.warns(SkippedTrialWarning, match="report: trial 24 skipped: .*schema"):
        files = write_report(url, "s", tmp_path / "report", tmp_path / "artifacts")
    # 24 readable trials and the malformed one, once each; then the top drawings, which
    # have no artifact here and are drawn again from their genotypes
    assert len(parsed) == 25 + TOP_DRAWINGS
    assert files.skipped == (24,) and files.trials == 25
    page = files.html.read_text(encoding="utf-8")
    assert page.count('class="arch"') == 5 == page.count('src="data:image/svg+xml;base64,')


def test_reading_a_study_skips_the_trials_malformed_names(tmp_path: Path) -> None:
    url = _study(tmp_path, 3)
    study = optuna.load_study(study_name="s", storage=url)
    first = study.trials[0]
    for attrs in ({"genotype": GENOTYPE, "duplicate_of": 7}, {}, {"duplicate_of": 0}):
        study.add_trial(create_trial(params=first.params, distributions=first.distributions,
                                     value=0.0, user_attrs=attrs))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedTrialWarning)
        read = readable(study)
    assert set(read.skipped) == set(malformed(study)) == {3, 5, 6, 7}
    assert sorted(read.facts) == [0, 1, 2]  # the pruned trial 4 has no genotype
    assert all(isinstance(f, Facts) and f.features["depth"] == 2 for f in read.facts.values())
