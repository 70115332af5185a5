"""A big study stays fast: per-trial overhead and start-up of a search that continues a
study of 0, 500, 2,000 and 10,000 trials, against plain ``study.optimize`` on the same
storage and study size.

Prints one JSON line. For each size ``N``:

- ``framework_ratio_N``: nas-skip's local backend (budget, stale-trial and dead-worker
  checks, the progress poller running) with a trivial objective, over plain
  ``study.optimize`` with the same objective: median gap between trial completions,
  side by side in one run. Goal <= 1.2 at 10,000.
- ``objective_ms_N`` / ``plain_space_ms_N`` / ``objective_ratio_N``: nas-skip's own
  objective (sampling, validation, hash, dedup lookup, attributes, the topology drawing,
  the dashboard note), run by ``search()`` with its progress bar, with training replaced
  by a stub that returns at once, over plain ``study.optimize`` whose objective samples
  the same space. Goal <= 1.5 at 0 and at 2,000 (issue 16).
- ``startup_s_N`` / ``plain_startup_s_N``: from ``search()`` (or ``load_study`` +
  ``optimize``) to the first new trial started. Goal < 3 s at 10,000.

The studies are made once with nas-skip's attributes (200 trials of the ``deep_mlp``
space) and grown by copying rows in SQL, so that a 10,000-trial study takes seconds; each
trial gets an optuna-dashboard note (a study system attribute), as a search writes.
Each measurement is repeated (``--reps``, the order of the four kinds rotated each time);
a ratio is the median of the ratios paired within a repetition (``*_per_rep`` lists them).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import create_trial
from rich.console import Console

from nas_skip.evaluators import (
    Evaluation,
    Evaluator,
    EvaluatorSpec,
    TrialInput,
    register_evaluator,
)
from nas_skip.searching import SearchConfig, search
from nas_skip.searching._local import run_local
from nas_skip.searching._objective import dedup_key
from nas_skip.searching._progress import StudyWatcher
from nas_skip.searching._storage import make_storage, open_study
from nas_skip.spaces import Space, load_space

optuna.logging.set_verbosity(optuna.logging.ERROR)
STUDY = "big"


class Stub(Evaluator):
    """Training replaced by a number derived from the network: returns at once."""

    name = "stub"

    def __call__(self, trial: TrialInput) -> Evaluation:
        h = int(hashlib.sha256(trial.genotype.canonical_hash().encode()).hexdigest()[:8], 16)
        return Evaluation({"val_accuracy": 0.5 + (h % 1000) / 1e4})


register_evaluator(EvaluatorSpec("stub", "returns at once (benchmarks)", None, 10, False),
                   lambda *_: Stub())  # fmt: skip


def _config(db: Path, tmp: Path, trials: int) -> SearchConfig:
    return SearchConfig(space="deep_mlp", trials=trials, evaluator="stub", study=STUDY,
                        seed=0, sampler="random", pruning=False, storage=f"sqlite:///{db}",
                        artifacts=str(tmp / "artifacts"), keep=0)  # fmt: skip


def seed_study(db: Path, tmp: Path, space: Space, n: int = 200) -> None:
    """``n`` trials with the attributes nas-skip's objective stores."""
    mem = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trials = []
    for _ in range(n):
        t = mem.ask()
        g, hp = space.sample(t), space.sample_train(t)
        attrs = {"genotype": json.dumps(g.to_json(), separators=(",", ":")),
                 "hash": g.canonical_hash(), "dedup_key": dedup_key(g, hp, 10, space.dataset,
                 "stub"), "params": 1000, "flops": 1000, "nodes": len(g.nodes),
                 "worker": "elsewhere:1", "val_accuracy": 0.5}  # fmt: skip
        frozen = mem._storage.get_trial(t._trial_id)
        trials.append(create_trial(params=frozen.params, distributions=frozen.distributions,
                                   value=0.5, user_attrs=attrs))  # fmt: skip
        mem.tell(t, 0.5)
    config = _config(db, tmp, 1)
    handle = open_study(config, space.name, space.dataset, config.space)
    handle.study.add_trials(trials)


def copy_db(src: Path, dst: Path) -> None:
    """Copy a SQLite storage, including what its write-ahead log holds (a file copy of a
    WAL database whose writer is still connected misses the last commits)."""
    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as source, sqlite3.connect(dst) as target:
        source.backup(target)
    source.close()
    target.close()


def grow(db: Path, n: int) -> None:
    """Copy the study's trials (with their params, values and attributes) until it holds
    ``n`` (none for 0)."""
    con = sqlite3.connect(db)
    if n == 0:
        for table in ("trial_params", "trial_values", "trial_user_attributes",
                      "trial_system_attributes", "trial_intermediate_values"):  # fmt: skip
            con.execute(f"DELETE FROM {table}")  # noqa: S608 - our table names
        con.execute("DELETE FROM trials")
        con.commit()
    while (have := con.execute("SELECT count(*) FROM trials").fetchone()[0]) and have < n:
        take = min(have, n - have)
        top = con.execute("SELECT max(trial_id), max(number) FROM trials").fetchone()
        off_id, off_n = top[0], top[1] + 1
        con.execute("INSERT INTO trials SELECT trial_id + ?, number + ?, study_id, state, "
                    "datetime_start, datetime_complete FROM trials WHERE number < ?",
                    (off_id, off_n, take))  # fmt: skip
        for table, cols in (("trial_params", "param_name, param_value, distribution_json"),
                            ("trial_values", "objective, value, value_type"),
                            ("trial_user_attributes", "key, value_json")):  # fmt: skip
            con.execute(f"INSERT INTO {table} (trial_id, {cols}) SELECT p.trial_id + ?, "  # noqa: S608
                        f"{', '.join('p.' + c.strip() for c in cols.split(','))} FROM {table} p "
                        "JOIN trials t ON t.trial_id = p.trial_id WHERE t.number < ?",
                        (off_id, take))  # fmt: skip
        con.commit()
    # every trial's optuna-dashboard note, as a search writes them (study system
    # attributes: the study's attributes grow with its trials)
    con.execute("DELETE FROM study_system_attributes WHERE key LIKE 'dashboard:%:note_%'")
    for suffix, value in ((":note_ver", "1"), (":note_str:0", json.dumps("n" * 600))):
        con.execute("INSERT INTO study_system_attributes (study_id, key, value_json) "
                    "SELECT study_id, 'dashboard:' || trial_id || ?, ? FROM trials",
                    (suffix, value))  # fmt: skip
    con.commit()
    con.close()


def gaps(db: Path, after: int) -> tuple[float, float | None]:
    """(median seconds between completions, first start) of the trials numbered ``after``
    and later."""
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    new = [t for t in study.get_trials(deepcopy=False) if t.number >= after]
    ends = sorted(t.datetime_complete for t in new if t.datetime_complete)
    starts = [t.datetime_start.timestamp() for t in new if t.datetime_start]
    between = [(b - a).total_seconds() for a, b in zip(ends[1:], ends[2:], strict=False)]
    return statistics.median(between), min(starts) if starts else None


def trivial(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def plain(db: Path, m: int, objective: Any) -> float:
    """Plain ``study.optimize`` on the same SQLite file, opened as nas-skip opens it
    (write-ahead log) but cached as Optuna caches it; returns the start."""
    start = time.time()
    storage = make_storage(f"sqlite:///{db}")
    backend = getattr(storage, "_backend", storage)  # Optuna wraps it in its own cache
    study = optuna.load_study(study_name=STUDY, storage=backend,
                              sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    study.optimize(objective, n_trials=m)
    return start


def framework(db: Path, tmp: Path, n: int, m: int, space: Space) -> None:
    """The local backend with a trivial objective, the progress poller running."""
    config = _config(db, tmp, n + m)
    console = Console(file=io.StringIO(), force_terminal=True)
    with StudyWatcher(config.storage_url(), STUDY, n + m, True, console):
        run_local(config, space, trivial)


def ours(db: Path, tmp: Path, n: int, m: int) -> float:
    start = time.time()
    console = Console(file=io.StringIO(), force_terminal=True)
    search(_config(db, tmp, n + m), console=console, progress=True)
    return start


def bench_big_study(sizes: list[int], m: int, reps: int = 2) -> dict[str, Any]:
    """The figures of the module docstring, for studies of ``sizes`` trials, ``m`` new
    trials per measurement, ``reps`` repetitions of each (the order of the four kinds
    rotated each time; ratios paired within a repetition, then their median)."""
    out: dict[str, Any] = {"new_trials": m, "repetitions": reps}
    space = load_space("deep_mlp")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = tmp / "base.db"
        seed_study(base, tmp, space)

        def space_objective(trial: optuna.Trial) -> float:  # the same parameters as ours
            space.sample(trial)
            space.sample_train(trial)
            return trivial(trial)

        kinds = ["plain", "framework", "plain_space", "objective"]
        for n in sizes:
            sized = tmp / f"n{n}.db"
            copy_db(base, sized)
            grow(sized, n)
            ms: dict[str, list[float]] = {k: [] for k in kinds}
            starts: dict[str, list[float]] = {"plain_space": [], "objective": []}
            for r in range(reps):
                for kind in kinds[r % 4 :] + kinds[: r % 4]:  # rotated: same conditions
                    db = tmp / f"{kind}{n}-{r}.db"
                    copy_db(sized, db)
                    if kind == "plain":
                        started = plain(db, m, trivial)
                    elif kind == "plain_space":
                        started = plain(db, m, space_objective)
                    elif kind == "framework":
                        started = time.time()
                        framework(db, tmp, n, m, space)
                    else:
                        started = ours(db, tmp, n, m)
                    per, first = gaps(db, n)
                    ms[kind].append(1000 * per)
                    if kind in starts and first is not None:
                        starts[kind].append(first - started)
                    db.unlink()
            for kind, values in ms.items():
                out[f"{kind}_ms_{n}"] = round(statistics.median(values), 2)
            for label, (a, b) in (("framework_ratio", ("framework", "plain")),
                                  ("objective_ratio", ("objective", "plain_space"))):  # fmt: skip
                pairs = [x / y for x, y in zip(ms[a], ms[b], strict=True)]
                out[f"{label}_{n}"] = round(statistics.median(pairs), 3)
                out[f"{label}_{n}_per_rep"] = [round(x, 3) for x in pairs]
            for kind, label in (("plain_space", "plain_startup_s"), ("objective", "startup_s")):
                if starts[kind]:
                    out[f"{label}_{n}"] = round(statistics.median(starts[kind]), 3)
            print(json.dumps({k: v for k, v in out.items() if f"_{n}" in k}), file=sys.stderr)
    last = sizes[-1]
    out["objective_growth"] = round(out[f"objective_ms_{last}"] / out["objective_ms_0"], 3)
    out["plain_growth"] = round(out[f"plain_space_ms_{last}"] / out["plain_space_ms_0"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 0, 500, 2,000")
    parser.add_argument("--trials", type=int, default=30, help="new trials per measurement")
    parser.add_argument("--reps", type=int, default=2, help="repetitions of each measurement")
    args = parser.parse_args()
    sizes = [0, 500, 2000] if args.quick else [0, 500, 2000, 10000]
    out: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out |= bench_big_study(sizes, args.trials, args.reps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
