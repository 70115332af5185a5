"""The one objective both backends run: sample -> validate -> dedupe -> evaluate.

``sample`` runs where the trial is asked for (the Optuna process, or Ray's driver inside
OptunaSearch); ``evaluate`` where it is evaluated, by the search's evaluator (training, or
a table lookup; see :mod:`nas_skip.evaluators`). Each trial stores, as user attributes:
``genotype`` (JSON), ``hash``, ``params``, ``flops``, the evaluator's metrics
(``val_accuracy``, ``latency_ms``, ``train_seconds`` ...), what its space derives from the
choices (``nb201_arch``), ``duplicate_of`` for a trial that reused a finished one,
``fail_reason`` where it failed and ``pruned_reason`` where it was stopped. The best
trials' weights, where the evaluator trained any, are kept as artifacts
(``weights_artifact``), and deleted when better trials push them out of the best
``--keep`` (see :mod:`nas_skip.searching._weights`).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas_skip.errors import NasSkipError
from nas_skip.evaluators import (
    DEFAULT_EVALUATOR,
    METRICS,
    Evaluator,
    Reporter,
    TrialInput,
    make_evaluator,
)
from nas_skip.genotype import Genotype, costs
from nas_skip.searching._config import SearchConfig
from nas_skip.searching._describe import NoteWriter, upload_drawing
from nas_skip.searching._queries import StudyQueries, set_user_attrs
from nas_skip.searching._storage import StudyHandle, worker_alive
from nas_skip.searching._weights import keep_weights, stored_values
from nas_skip.spaces import Space
from nas_skip.train import EpochMetrics, TrialDiverged


def failure_reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".strip().rstrip(":")[:500]


def all_finite(values: Any) -> bool:
    """Whether objective values (one or several) are finite numbers, as Optuna tells them."""
    seq = values if isinstance(values, list | tuple) else [values]
    return all(isinstance(v, numbers.Real) and math.isfinite(v) for v in seq)


@dataclass
class Worker:
    """What one process needs to evaluate trials of one search."""

    config: SearchConfig
    space: Space
    handle: StudyHandle
    device: str = "auto"  # where this process trains (``--device`` resolved for it)

    @cached_property
    def evaluator(self) -> Evaluator:
        """The search's evaluator, made once per process (it may hold a dataset or table)."""
        c = self.config
        assert c.epochs is not None  # SearchConfig resolves it
        return make_evaluator(c.evaluator, self.space, c.epochs, c.threads, c.data_dir,
                              c.train_error, c.objective_fn, len(c.directions),
                              self.device, c.compile)  # fmt: skip

    @property
    def study(self) -> optuna.Study:
        return self.handle.study

    @cached_property
    def queries(self) -> StudyQueries:
        """Bounded-cost questions about the study (see :mod:`nas_skip.searching._queries`)."""
        return StudyQueries(self.handle.study)


@dataclass(frozen=True)
class Sample:
    """What the space made of a trial's choices."""

    genotype: Genotype
    hparams: dict[str, Any]  # training hyperparameters (``train:*`` without the prefix)
    params: dict[str, Any]  # every choice by name, as Optuna stores them


def sample(trial: optuna.Trial, space: Space) -> Sample:
    """Ask the trial for a genotype and hyperparameters (the one place that suggests).

    Raises:
        optuna.TrialPruned: the sample is invalid (it cannot be: spaces repair their
            samples; this is the safety net STYLE.md asks for), with the reason stored.
    """
    try:
        g, hparams = space.sample(trial), space.sample_train(trial)
    except NasSkipError as exc:
        trial.set_user_attr("fail_reason", f"invalid sample: {exc}")
        raise optuna.TrialPruned(f"invalid sample: {exc}") from None
    return Sample(g, hparams, dict(trial.params))


def dedup_key(g: Genotype, hparams: dict[str, Any], epochs: int, dataset: str,
              evaluator: str = DEFAULT_EVALUATOR) -> str:  # fmt: skip
    """Equal for trials that would evaluate the same network the same way."""
    doc = [g.canonical_hash(), sorted(hparams.items()), epochs, dataset]
    if evaluator != DEFAULT_EVALUATOR:  # keys of training studies stay as they were
        doc.append(evaluator)
    return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:24]


def evaluate(
    trial: optuna.Trial,
    worker: Worker,
    s: Sample,
    reporter: Reporter | None = None,
) -> list[float]:
    """Dedupe and evaluate one sampled trial; store its attributes; return its values.

    Args:
        trial: a live trial of the study (in a Ray worker: ``optuna.trial.Trial(study, id)``).
        worker: this process's context.
        s: what :func:`sample` returned.
        reporter: called after each epoch; raises ``optuna.TrialPruned`` to stop.

    Raises:
        optuna.TrialPruned: the reporter stopped the trial.
        optuna.TrialPruned: also when training diverged (``pruned_reason`` says so).
        RuntimeError, MemoryError...: the trial failed; ``fail_reason`` is stored before the
            exception leaves, so the backend records FAIL and goes on.
    """
    import torch  # for its out-of-memory error; the search process that only waits has none

    config = worker.config
    g = s.genotype
    assert config.epochs is not None  # SearchConfig resolves it
    key = dedup_key(g, s.hparams, config.epochs, worker.space.dataset, config.evaluator)
    rows = costs(g)
    attrs: dict[str, Any] = {}  # what this trial stored, for its dashboard note

    def put(name: str, value: Any) -> None:
        put_all({name: value})

    def put_all(values: dict[str, Any]) -> None:
        attrs.update(values)
        set_user_attrs(trial, values)

    described = {"genotype": json.dumps(g.to_json(), separators=(",", ":")),
                 "hash": g.canonical_hash(), "dedup_key": key,
                 "params": sum(r.params for r in rows), "flops": sum(r.flops for r in rows),
                 "nodes": len(g.nodes), **worker.space.attrs(s.params)}  # fmt: skip
    try:
        described["topology_artifact"] = upload_drawing(trial, worker.handle, g)
    finally:  # one write; a failed upload (a full disk) still leaves the trial described
        put_all(described)
    save_note = NoteWriter(trial)  # the trial's dashboard note, rewritten as it changes
    if config.evaluator_spec.reports_epochs:  # the dashboard shows it while it trains
        save_note(g, attrs)
    original = worker.queries.original(key) or _wait_for_twin(worker.queries, key, trial.number)
    if original is not None:
        put_all({"duplicate_of": original.number,
                 **{name: original.user_attrs[name] for name in METRICS
                    if name in original.user_attrs}, "train_seconds": 0.0})  # fmt: skip
        save_note(g, attrs)
        return list(original.values)
    seed = ((config.seed or 0) + trial.number) % 2**31
    try:
        result = worker.evaluator(TrialInput(g, s.hparams, s.params, seed, reporter))
    except optuna.TrialPruned as exc:
        put("pruned_reason", str(exc) or "pruned")
        save_note(g, attrs)
        raise
    except TrialDiverged as exc:
        # hopeless, not broken: PRUNED, so that samplers learn from it (they skip FAILs)
        put("pruned_reason", f"diverged: {exc}")
        save_note(g, attrs)
        raise optuna.TrialPruned(f"diverged: {exc}") from None
    except (MemoryError, torch.OutOfMemoryError) as exc:
        put("fail_reason", f"out of memory: {failure_reason(exc)}")
        save_note(g, attrs)
        raise
    except Exception as exc:
        put("fail_reason", failure_reason(exc))
        save_note(g, attrs)
        raise
    # None: train_error of a search that does not measure it
    put_all({name: value for name, value in (*result.metrics.items(), *result.attrs.items())
             if value is not None})  # fmt: skip
    values = stored_values(attrs, config.objectives)
    if not all_finite(values):
        put("fail_reason", f"non-finite objective values {values}")
        raise TrialDiverged(f"non-finite objective values {values}")
    if result.model is not None:
        kept = keep_weights(trial, worker.handle, values, result.model, config.objectives,
                            config.directions, config.keep)  # fmt: skip
        if kept is not None:
            attrs["weights_artifact"] = kept  # stored by keep_weights; for the note
    save_note(g, attrs)
    return values


def _wait_for_twin(queries: StudyQueries, key: str, number: int) -> FrozenTrial | None:
    """With parallel workers, an earlier trial may be training the same network right now:
    wait for it rather than train it twice, then reuse it if it completed.

    Only earlier trials are waited for, so two workers never wait for each other; a twin
    whose process died (a kill -9 on this host) is not waited for.
    """
    while True:
        twins = [n for n, owner in queries.running_twins(key, number) if worker_alive(owner)]
        if not twins:
            return queries.original(key)
        time.sleep(0.5)


def local_reporter(trial: optuna.Trial, prunes: bool, objective: str = "accuracy") -> Reporter:
    """Per-epoch reports of the first objective (``objective``) to Optuna and its pruner
    (the local backend)."""

    def report(epoch: int, metrics: EpochMetrics) -> None:
        if not prunes:
            return
        trial.report(metrics.value(objective), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned by the pruner after epoch {epoch}")

    return report
