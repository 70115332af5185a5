"""Sequence datasets on real data: pydoc_lm (characters of CPython's pydoc topics) and mqar
(multi-query associative recall): shapes, dtypes, the registry, splits, determinism, and
the task contract shared with the older datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas_skip.data import (
    DATASETS,
    IGNORE_INDEX,
    TASKS,
    Dataset,
    load_dataset,
    text,
)
from nas_skip.data._common import make_dataset


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def pydoc(cache: Path) -> Dataset:
    return load_dataset("pydoc_lm", cache_dir=cache)


@pytest.fixture(scope="module")
def mqar(cache: Path) -> Dataset:
    return load_dataset("mqar", cache_dir=cache)


def splits(ds: Dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]


# --- both datasets, through the registry -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "length", "vocab", "task"),
    [("pydoc_lm", 128, 97, "language_model"), ("mqar", 64, 64, "token_classification")],
)
def test_sequence_dataset_matches_its_registry_entry(
    name: str, length: int, vocab: int, task: str, cache: Path
) -> None:
    info = DATASETS[name]
    ds = load_dataset(name, cache_dir=cache)
    assert info.domains == ("sequence",) and not info.needs_data_dir
    assert info.input_shapes == {"sequence": (length,)} and ds.input_shape == (length,)
    assert (ds.name, ds.domain, ds.num_classes, ds.task) == (name, "sequence", vocab, task)
    assert info.num_classes == vocab and info.task == ds.task == task
    assert tuple(len(x) for x, _ in splits(ds)) == info.sizes
    for x, y in splits(ds):
        assert x.dtype == torch.int64 and y.dtype == torch.int64
        assert x.shape == y.shape == (len(x), length)
        assert 0 <= int(x.min()) and int(x.max()) < vocab
        scored = y[y != IGNORE_INDEX]
        assert 0 <= int(scored.min()) and int(scored.max()) < vocab
    assert "vocabulary" in info.summary() and "\n" not in info.description


def test_tasks_and_dtypes_of_the_older_datasets(cache: Path) -> None:
    digits = load_dataset("digits", cache_dir=cache)
    assert digits.task == DATASETS["digits"].task == "classification"
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert DATASETS["shapes_seg"].task == "segmentation"
    assert all(info.task in TASKS for info in DATASETS.values())


def test_dataset_task_defaults_and_refuses_unknown_tasks() -> None:
    xy = (np.zeros((2, 3)), np.zeros(2))
    assert make_dataset("v", "vector", 2, (xy, xy, xy)).task == "classification"
    seg = (np.zeros((2, 1, 4, 4)), np.zeros((2, 4, 4)))
    assert make_dataset("s", "segmentation", 2, (seg, seg, seg)).task == "segmentation"
    seq = make_dataset(
        "q", "sequence", 5, ((np.ones((2, 3)), np.ones((2, 3))),) * 3, "language_model"
    )
    assert seq.x_train.dtype == torch.int64 and seq.task == "language_model"
    with pytest.raises(ValueError, match="unknown task 'regression'"):
        make_dataset("v", "vector", 2, (xy, xy, xy), task="regression")


# --- pydoc_lm --------------------------------------------------------------------------


def test_pydoc_targets_are_the_inputs_shifted_by_one(pydoc: Dataset) -> None:
    for x, y in splits(pydoc):
        assert torch.equal(x[:, 1:], y[:, :-1])
        # windows do not overlap: each target's last id is the next window's first input
        assert torch.equal(y[:-1, -1], x[1:, 0])


def test_pydoc_windows_are_the_documentation_text(pydoc: Dataset) -> None:
    full = text.pydoc_text()
    assert len(full) == text.pydoc_length() > 400_000
    clean = [w for w in pydoc.x_train[::50] if not bool((w == text.UNKNOWN_ID).any())]
    assert len(clean) > 50
    for window in clean:
        assert text.decode_chars(window.numpy()) in full
    first = text.decode_chars(text.encode_chars(full[: text.PYDOC_LENGTH]))
    assert text.decode_chars(pydoc.x_train[0].numpy()) == first
    assert text.encode_chars("a\n\x7f~ é").tolist() == [67, 1, 0, 96, 2, 0]
    assert text.decode_chars(text.encode_chars("def f(x):\n")) == "def f(x):\n"


def test_pydoc_splits_are_disjoint_position_ranges(pydoc: Dataset) -> None:
    full = text.pydoc_text()
    n, length = len(full), text.PYDOC_LENGTH
    ids = text.encode_chars(full)
    for (x, y), start in zip(splits(pydoc), (0, n * 90 // 100, n * 95 // 100), strict=True):
        span = torch.from_numpy(ids[start : start + len(x) * length + 1].astype(np.int64))
        assert torch.equal(x.flatten(), span[:-1]) and torch.equal(y.flatten(), span[1:])
    # each split's windows end before the next split begins (targets included)
    assert len(pydoc.x_train) * length + 1 <= n * 90 // 100
    assert n * 90 // 100 + len(pydoc.x_val) * length + 1 <= n * 95 // 100
    val_text = text.decode_chars(pydoc.x_val[0].numpy())
    assert val_text == text.decode_chars(ids[n * 90 // 100 :][:length])
    assert val_text != text.decode_chars(ids[n * 90 // 100 - 1 :][:length])
    assert text.pydoc_lm_sizes(n) == DATASETS["pydoc_lm"].sizes
    assert text.pydoc_lm_sizes(10_000) == (70, 3, 3)  # 8999, 499, 499 characters
    assert text.pydoc_lm_sizes(0) == (0, 0, 0)


# --- mqar ------------------------------------------------------------------------------


def test_mqar_is_deterministic(
    tmp_path: Path, mqar: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_SKIP_CACHE", str(tmp_path))
    first = load_dataset("mqar")  # generated into $NAS_SKIP_CACHE
    assert (tmp_path / f"mqar_v{text.MQAR_VERSION}.npz").is_file()
    (tmp_path / f"mqar_v{text.MQAR_VERSION}.npz").unlink()
    second = load_dataset("mqar")  # generated again from the seed
    for a, b, c in zip(splits(first), splits(second), splits(mqar), strict=True):
        assert all(
            torch.equal(p, q) and torch.equal(p, r) for p, q, r in zip(a, b, c, strict=True)
        )


def test_mqar_targets_are_the_values_of_the_queried_keys(mqar: Dataset) -> None:
    prefix = 2 * text.MQAR_PAIRS
    for x, y in splits(mqar):
        keys, values = x[:, 0:prefix:2], x[:, 1:prefix:2]
        assert bool(((keys >= 1) & (keys < 32)).all()) and bool(
            ((values >= 32) & (values < 64)).all()
        )
        # keys are distinct within a sample
        ordered = keys.sort(dim=1).values
        assert bool((ordered[:, 1:] != ordered[:, :-1]).all())
        assert bool((y[:, :prefix] == IGNORE_INDEX).all())
        queries, targets = x[:, prefix:], y[:, prefix:]
        match = queries[:, :, None] == keys[:, None, :]  # (N, queries, pairs)
        assert bool((match.sum(-1) == 1).all())  # every query is one of its sample's keys
        expected = values.gather(1, match.int().argmax(-1))
        assert torch.equal(targets, expected)


def test_mqar_splits_differ_and_queries_cover_the_keys(mqar: Dataset) -> None:
    assert not torch.equal(mqar.x_val, mqar.x_test)
    rows = {r.tobytes() for r in mqar.x_train.numpy()}
    assert not rows & {r.tobytes() for r in mqar.x_val.numpy()}
    counts = torch.bincount(mqar.x_train[:, 0], minlength=32)[1:]
    assert bool((counts > 0).all())  # every key value appears as a first key
