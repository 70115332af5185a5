"""The report's own cost: ``write_report`` seconds on a deep_mlp study of 500 and 2,000
trials, and the share of it spent on parameter importances.

Prints one JSON line: ``report_s_N`` (the whole :func:`nas_skip.report.write_report`;
``report_cpu_s_N`` its CPU seconds), ``importance_s_N`` and ``importance_share_N`` (the
importance figure's part). Goal: under 10 s at 2,000 trials.

The study is :mod:`bench_big_study`'s (200 deep_mlp trials with nas-skip's attributes,
grown by copying rows), with the structure attributes a search stores. Its copies share
their parameters and all store 0.5, which a forest fits with one leaf; here each trial
draws its own learning rate and gets an accuracy that depends on its depth and learning
rate plus noise, as a real search's trials differ (``--stored`` keeps the copies as they
are). No artifact folder: the top 5 drawings are drawn again from their genotypes.

Measured on 2 cores shared with other work (load average about 2), before and after in
turn; seconds wall clock (CPU):

| | report 500 | report 2,000 | importance share 500 / 2,000 |
|---|---|---|---|
| before | 13.8 (13.1) | 57.4 (53.9) | 0.61 / 0.71 |
| after | 5.1-5.6 (4.9-5.1) | 11.2-12.6 (11.1-12.4) | 0.33 / 0.09 |

Before: Optuna's fANOVA trees (grown to one trial per leaf), and each genotype parsed by
every reader (the malformed-trial check, the table, and the figures where a trial stores
no structure). After: trees of depth 6 (:data:`nas_skip.report._figures.FANOVA`) and one
parse per trial. The importance share at 500 is mostly importing scikit-learn (0.7 s).

Until then the studies were copied with ``shutil.copy``, which misses what the SQLite
write-ahead log still holds: the copies lacked the structure attributes and the report
counted every trial's layers from its choices. With the copy fixed (:func:`copy_db`),
alone on the machine, the package before and after the bulk reader
(:mod:`nas_skip.searching._bulk`) and the cheaper genotype checks, side by side:

| | report 500 | report 2,000 |
|---|---|---|
| before | 5.3-7.1 | 13.2-19.3 |
| after | 3.9-4.8 | 6.5-8.6 |

(Two runs before, three after, the last pair alternated; two earlier runs, before the
genotype check built its graph once instead of twice, took 8.5 and 10.3 s at 2,000: the
machine's speed moves as much as that change.)

What is left at 2,000 trials: checking each trial's genotype (its one parse, about half),
fANOVA with its scikit-learn import (1.2-1.7 s), reading the trials (0.8 s, was 6-7 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).parent))

from bench_big_study import STUDY, copy_db, grow, seed_study  # noqa: E402 - the path above

from nas_skip.report import _figures as figures  # noqa: E402
from nas_skip.report import write_report  # noqa: E402
from nas_skip.spaces import Space, load_space  # noqa: E402


def store_structure(db: Path, space: Space) -> None:
    """Each trial's structure attributes (depth, skips), as a search stores them
    (``Space.attrs``); :func:`bench_big_study.seed_study` leaves them out, and a study
    without them has the report count each trial's layers from its choices."""
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    rows = [(t._trial_id, key, json.dumps(value)) for t in study.get_trials(deepcopy=False)
            for key, value in space.attrs(t.params).items()]  # fmt: skip
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO trial_user_attributes (trial_id, key, value_json) "
                    "VALUES (?, ?, ?)", rows)  # fmt: skip
    con.commit()
    con.close()


def score(db: Path) -> None:
    """Each trial its own learning rate (log-uniform in the space's 0.002-0.02) and a
    value: deeper and higher learning rates score better, plus noise; seeded by the
    trial id."""
    con = sqlite3.connect(db)
    lrs, values = [], []
    depths = con.execute("SELECT trial_id, param_value FROM trial_params WHERE param_name = ?",
                         ("depth",)).fetchall()  # fmt: skip
    for trial_id, depth in depths:
        rng = random.Random(trial_id)
        lr = math.exp(rng.uniform(math.log(0.002), math.log(0.02)))
        lrs.append((lr, trial_id))
        values.append((0.5 + 0.01 * depth + 5.0 * lr + rng.gauss(0.0, 0.01), trial_id))
    con.executemany("UPDATE trial_params SET param_value = ? WHERE trial_id = ? "
                    "AND param_name = 'train:lr'", lrs)  # fmt: skip
    con.executemany("UPDATE trial_values SET value = ? WHERE trial_id = ?", values)
    con.commit()
    con.close()


def timed_report(db: Path, out: Path) -> tuple[float, float, float]:
    """Seconds of the whole report (wall clock, then CPU: the cores are shared), and of
    its importance figure (wall clock)."""
    spent = [0.0]
    importances = figures.importances

    def timed(*args: Any, **kwargs: Any) -> figures.Plot:
        start = time.perf_counter()
        try:
            return importances(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    figures.importances = timed  # type: ignore[assignment]  # write_report reads it here
    try:
        start, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_report(f"sqlite:///{db}", STUDY, out, out / "artifacts")
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        figures.importances = importances  # type: ignore[assignment]
    return total, cpu, spent[0]


def bench_report(sizes: list[int], repeat: int, stored: bool) -> dict[str, Any]:
    """The figures of the module docstring, best of ``repeat`` runs per size."""
    out: dict[str, Any] = {}
    space = load_space("deep_mlp")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = tmp / "base.db"
        seed_study(base, tmp, space)
        store_structure(base, space)
        for n in sizes:
            db = tmp / f"n{n}.db"
            copy_db(base, db)
            grow(db, n)
            if not stored:
                score(db)
            runs = [timed_report(db, tmp / f"report{n}") for _ in range(repeat)]
            total, cpu, spent = min(runs)
            out[f"report_s_{n}"] = round(total, 2)
            out[f"report_cpu_s_{n}"] = round(cpu, 2)
            out[f"importance_s_{n}"] = round(spent, 2)
            out[f"importance_share_{n}"] = round(spent / total, 3)
            print(json.dumps({k: v for k, v in out.items() if k.endswith(f"_{n}")}),
                  file=sys.stderr)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best kept)")
    parser.add_argument("--stored", action="store_true", help="keep the study's 0.5 values")
    args = parser.parse_args()
    out: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out["values"] = "stored" if args.stored else "scored"
    out |= bench_report([500, 2000], args.repeat, args.stored)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
