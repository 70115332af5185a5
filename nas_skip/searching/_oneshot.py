"""``--strategy oneshot``: train a supernet, record it on the study, queue its network.

The supernet is trained in the search's own process (one run, one device), recorded on
the study as user attribute ``oneshot:<k>`` (settings, fixed choices, per-epoch
validation accuracy and skip counts, wall time, the derived choices, the artifact id of
the per-epoch architecture weights) and its derived network queued as a trial with
every choice fixed (``study.enqueue_trial``) and user attribute ``oneshot: k``; the
backend then runs that trial as any other, so dedup, notes, the dashboard, ``report``,
``retrain`` and ``export`` treat it alike.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from rich.console import Console

from nas_skip.searching._config import SearchConfig, SearchError
from nas_skip.searching._devices import worker_device
from nas_skip.searching._storage import StudyHandle
from nas_skip.spaces import Space

#: the study user attribute of one-shot run k is ``oneshot:<k>``
PREFIX = "oneshot:"
#: the largest one-shot record read back (stored attributes are not trusted)
MAX_RUNS = 1000


def oneshot_runs(study: optuna.Study) -> list[tuple[int, dict[str, Any]]]:
    """The study's one-shot records ``(k, record)`` in order of ``k``; malformed ones are
    skipped (a study is untrusted input)."""
    found = []
    for key, value in study.user_attrs.items():
        if not key.startswith(PREFIX) or not isinstance(value, dict):
            continue
        k = key.removeprefix(PREFIX)
        if k.isdigit() and len(k) <= 4 and int(k) <= MAX_RUNS:
            found.append((int(k), value))
    return sorted(found, key=lambda kv: kv[0])


def run_oneshot(config: SearchConfig, space: Space, handle: StudyHandle,
                console: Console | None = None, progress: bool = True) -> int:  # fmt: skip
    """Train the supernet, record it and queue its derived network.

    Returns:
        The run's number ``k``.

    Raises:
        SearchError: the space cannot be relaxed as asked (naming the choice).
    """
    from nas_skip.data import load_dataset
    from nas_skip.oneshot import OneShotConfig, RelaxError, relax, train_supernet

    try:
        relaxation = relax(space, config.fix)
    except RelaxError as exc:
        raise SearchError(f"--strategy oneshot: {exc}") from None
    data = load_dataset(space.dataset, space.domain, config.data_dir)
    assert config.epochs is not None
    settings = OneShotConfig(
        epochs=config.supernet_epochs or config.epochs,
        relaxation=config.relaxation,
        arch_lr=config.arch_lr,
        max_skips=config.max_skips,
        seed=config.seed or 0,
        threads=config.threads,
        device=worker_device(config.device, 0),
    )
    study = handle.study
    k = 1 + max((n for n, _ in oneshot_runs(study)), default=0)
    console = console or Console(stderr=True)
    started = time.time()
    with _epoch_bar(console, progress, settings.epochs, k) as update:
        run = train_supernet(relaxation, data, settings, on_epoch=update)
    relaxed = {c.name: run.params[c.name] for c in relaxation.choices}
    weights = {
        "choices": [
            {"name": c.name, "values": list(c.values), "role": c.role} for c in relaxation.choices
        ],  # fmt: skip
        "epochs": [{"epoch": e.epoch, "weights": e.weights} for e in run.epochs],
    }
    artifact = _upload_json(handle, weights, f"oneshot-{k}-weights.json")
    record = {
        "settings": settings.to_dict(),
        "fixed": dict(relaxation.fixed),
        "choices": len(relaxation.choices),
        "seconds": round(run.seconds, 2),
        "started": started,
        "val_accuracy": [round(e.val_accuracy, 5) for e in run.epochs],
        "train_loss": [round(e.train_loss, 5) for e in run.epochs],
        "skips": [e.skips for e in run.epochs],
        "skips_kept": relaxation.skips(run.params),
        "derived": relaxed,
        "weights_artifact": artifact,
    }
    study.set_user_attr(f"{PREFIX}{k}", record)
    study.enqueue_trial(run.params, user_attrs={"oneshot": k}, skip_if_exists=False)
    console.print(
        f"one-shot run {k}: supernet {settings.epochs} epochs, {run.seconds:.0f} s, "
        f"validation {run.val_accuracy:.4f}; keeps {relaxation.skips(run.params)} skips of "
        f"{sum(c.role == 'edge' for c in relaxation.choices)} candidate edges; training "
        "the derived network from scratch"
    )
    return k


def _upload_json(handle: StudyHandle, content: Any, name: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(content), encoding="utf-8")
        return optuna.artifacts.upload_artifact(
            artifact_store=handle.artifact_store,
            file_path=str(path),
            study_or_trial=handle.study,
            mimetype="application/json",
        )


class _epoch_bar:  # noqa: N801 (a context manager used as a function)
    """A rich progress bar over the supernet's epochs (or nothing)."""

    def __init__(self, console: Console, enabled: bool, epochs: int, k: int) -> None:
        from nas_skip.train import epoch_progress

        self.enabled = enabled and console.is_terminal
        self.console = console
        self.bar = epoch_progress(console) if self.enabled else None
        self.epochs, self.k = epochs, k

    def __enter__(self) -> Any:
        if self.bar is None:
            return self._line
        self.bar.start()
        self.task = self.bar.add_task(f"supernet {self.k}", total=self.epochs)
        return self._tick

    def _tick(self, record: Any) -> None:
        assert self.bar is not None
        self.bar.update(self.task, advance=1, description=f"supernet {self.k}: val "
                        f"{record.val_accuracy:.3f}, {record.skips} skips")  # fmt: skip

    def _line(self, record: Any) -> None:
        self.console.print(f"supernet {self.k} epoch {record.epoch}/{self.epochs}: val "
                           f"{record.val_accuracy:.4f}, loss {record.train_loss:.4f}, "
                           f"{record.skips} skips")  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
