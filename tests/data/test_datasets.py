"""Offline datasets: shapes, dtypes, ranges and splits per dataset and domain; determinism;
the .npz cache; no network; the name and domain errors. Vision datasets: test_vision.py."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_skip.data import (
    DATA_DOMAINS,
    DATASETS,
    Dataset,
    DatasetError,
    list_datasets,
    load_dataset,
    loaders,
    shapes,
)
from nas_skip.data._common import resolve_cache_dir, split_indices
from nas_skip.errors import NasSkipError

OFFLINE = [
    (n, d)
    for n, info in sorted(DATASETS.items())
    if not info.needs_data_dir
    for d in info.domains
    if d != "sequence"  # token ids, not float inputs: test_sequence_data.py
]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the read-only tests, so each dataset is generated once per module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An empty cache folder of the test's own."""
    return tmp_path / "cache"


def splits(ds: Dataset) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)]


def assert_same(a: Dataset, b: Dataset) -> None:
    for (xa, ya), (xb, yb) in zip(splits(a), splits(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.tobytes() for r in x.reshape(len(x), -1).numpy()}


# --- the registry ----------------------------------------------------------------------


def test_registry_describes_every_dataset() -> None:
    assert list_datasets() == sorted(DATASETS)
    assert {
        "mnist1d",
        "digits",
        "shapes",
        "shapes_seg",
        "cifar10",
        "mnist",
        "fashion_mnist",
    } <= set(DATASETS)
    for name, info in DATASETS.items():
        assert info.name == name and info.description and "\n" not in info.description
        assert set(info.domains) <= set(DATA_DOMAINS)
        assert info.default_domain == info.domains[0]
        assert set(info.input_shapes) == set(info.domains)
        assert all(n > 0 for n in info.sizes)


# --- every offline dataset and domain --------------------------------------------------


@pytest.mark.parametrize(("name", "domain"), OFFLINE)
def test_offline_dataset_matches_its_registry_entry(
    name: str, domain: str, shared_cache: Path
) -> None:
    info = DATASETS[name]
    ds = load_dataset(name, domain, cache_dir=shared_cache)
    assert (ds.name, ds.domain, ds.num_classes) == (name, domain, info.num_classes)
    assert ds.input_shape == info.input_shapes[domain]
    assert tuple(len(x) for x, _ in splits(ds)) == info.sizes
    for x, y in splits(ds):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == ds.input_shape and torch.isfinite(x).all()
        assert y.shape == (
            (len(x), *ds.input_shape[1:]) if ds.task == "segmentation" else (len(x),)
        )
        assert 0 <= int(y.min()) and int(y.max()) < ds.num_classes
        if name != "mnist1d":  # MNIST-1D's signals are standardised; pixels lie in [0, 1]
            assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_default_domain_and_names_are_forgiving(shared_cache: Path) -> None:
    assert load_dataset("digits", cache_dir=shared_cache).domain == "image"
    assert load_dataset(" Digits ", "vector", cache_dir=shared_cache).name == "digits"


def test_digits_vector_is_the_flattened_image(shared_cache: Path) -> None:
    img = load_dataset("digits", "image", cache_dir=shared_cache)
    vec = load_dataset("digits", "vector", cache_dir=shared_cache)
    assert torch.equal(img.x_train.reshape(len(img.x_train), -1), vec.x_train)
    assert torch.equal(img.y_test, vec.y_test)
    assert float(img.x_train.max()) == 1.0  # scaled by 16, the largest pixel count


def test_mnist1d_signal_is_the_vector_as_one_channel(shared_cache: Path) -> None:
    vec = load_dataset("mnist1d", cache_dir=shared_cache)
    sig = load_dataset("mnist1d", "signal", cache_dir=shared_cache)
    assert vec.domain == "vector" and sig.input_shape == (1, 40)
    assert torch.equal(sig.x_train[:, 0], vec.x_train)
    assert torch.equal(sig.x_test[:, 0], vec.x_test)
    assert torch.equal(sig.y_val, vec.y_val)


def test_digits_split_is_stratified_and_covers_every_sample() -> None:
    y = np.repeat(np.arange(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    train, val, test = split_indices(y, (0.2, 0.2), seed=0)
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    for part in (val, test):
        counts = np.bincount(y[part], minlength=10)
        assert np.all(np.abs(counts - 0.2 * np.bincount(y)) <= 0.5)


def test_mnist1d_is_standardised_and_its_splits_are_disjoint(shared_cache: Path) -> None:
    ds = load_dataset("mnist1d", cache_dir=shared_cache)
    x = torch.cat([ds.x_train, ds.x_val, ds.x_test])
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1.0) < 1e-3
    tr, va, te = rows(ds.x_train), rows(ds.x_val), rows(ds.x_test)
    assert len(tr) == len(ds.x_train) and not (tr & va or tr & te or va & te)
    assert set(ds.y_val.tolist()) == set(range(10))


@pytest.mark.parametrize("name", ["shapes", "shapes_seg"])
def test_shape_splits_share_no_image(name: str, shared_cache: Path) -> None:
    ds = load_dataset(name, cache_dir=shared_cache)
    tr, va, te = rows(ds.x_train), rows(ds.x_val), rows(ds.x_test)
    assert len(tr) == len(ds.x_train) and not (tr & va or tr & te or va & te)


def test_shapes_labels_are_balanced(shared_cache: Path) -> None:
    ds = load_dataset("shapes", cache_dir=shared_cache)
    for _, y in splits(ds):
        counts = torch.bincount(y, minlength=ds.num_classes)
        assert int(counts.max() - counts.min()) <= 1, counts.tolist()
    assert ds.num_classes == len(shapes.SHAPE_CLASSES)


def test_shapes_are_not_trivial(shared_cache: Path) -> None:
    # images of one class differ in colour and place: the class mean image is close to
    # the mean of all images, so no single template solves the task
    ds = load_dataset("shapes", cache_dir=shared_cache)
    x = ds.x_train.reshape(len(ds.x_train), -1)
    means = torch.stack([x[ds.y_train == c].mean(0) for c in range(ds.num_classes)])
    assert float((means - x.mean(0)).abs().max()) < 0.15
    assert float(x.std(0).mean()) > 0.15


def test_segmentation_masks_hold_background_and_every_class(shared_cache: Path) -> None:
    ds = load_dataset("shapes_seg", cache_dir=shared_cache)
    assert ds.task == "segmentation" and ds.num_classes == len(shapes.SEG_CLASSES) + 1
    for _, y in splits(ds):
        share = torch.bincount(y.flatten(), minlength=ds.num_classes) / y.numel()
        assert bool((share > 0.005).all()), share.tolist()
        assert 0.5 < float(share[0]) < 0.95  # background dominates but does not swamp
        assert bool((y.flatten(1) > 0).any(1).all())  # every image shows a shape


def test_segmentation_masks_follow_the_painted_shapes() -> None:
    # a shape's pixels differ from the background around it; a mask marks those pixels
    x, mask = shapes.make_shapes_seg(200, seed=5)
    fg = mask > 0
    assert fg.any(axis=(1, 2)).all() and (~fg).any(axis=(1, 2)).all()
    inside_var = np.mean([x[i][:, fg[i]].std(axis=1).mean() for i in range(len(x))])
    whole_var = np.mean([x[i].reshape(3, -1).std(axis=1).mean() for i in range(len(x))])
    assert inside_var < whole_var


# --- determinism and the cache ---------------------------------------------------------


@pytest.mark.parametrize("name", ["shapes", "shapes_seg"])
def test_fresh_generations_are_identical(name: str, cache: Path, shared_cache: Path) -> None:
    # two generations from scratch, into two cache folders
    assert_same(load_dataset(name, cache_dir=cache), load_dataset(name, cache_dir=shared_cache))


def test_mnist1d_generation_is_deterministic_and_keeps_the_global_random_streams(
    cache: Path, shared_cache: Path
) -> None:
    reference = load_dataset("mnist1d", cache_dir=shared_cache)
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    assert_same(load_dataset("mnist1d", cache_dir=cache), reference)
    assert random.getstate() == py_state  # mnist1d reseeds both streams to 42 inside
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2] == np_state[2]


def _shared_mnist1d(shared_cache: Path) -> dict[str, np.ndarray]:
    load_dataset("mnist1d", cache_dir=shared_cache)
    with np.load(shared_cache / loaders.MNIST1D_CACHE) as npz:
        return {k: npz[k] for k in npz.files}


def _forbid_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated although the cache holds the dataset")

    monkeypatch.setattr(loaders, "generate_mnist1d", boom)
    monkeypatch.setattr(shapes, "make_shapes", boom)
    monkeypatch.setattr(shapes, "make_shapes_seg", boom)


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("mnist1d", loaders.MNIST1D_CACHE),
        ("shapes", f"shapes_v{shapes.SHAPES_VERSION}.npz"),
        ("shapes_seg", f"shapes_seg_v{shapes.SHAPES_VERSION}.npz"),
    ],
)
def test_cache_file_is_written_then_reused(
    name: str, filename: str, shared_cache: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_dataset(name, cache_dir=shared_cache)
    assert (shared_cache / filename).is_file()
    assert not list(shared_cache.glob("*.tmp"))  # the atomic write left no temporary file
    _forbid_generation(monkeypatch)
    assert_same(first, load_dataset(name, cache_dir=shared_cache))
    with pytest.raises(AssertionError, match="generated although"):
        load_dataset(name, cache_dir=cache)  # an empty cache does call the generator


def test_corrupt_cache_file_is_rebuilt(
    cache: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = _shared_mnist1d(shared_cache)
    calls: list[int] = []
    monkeypatch.setattr(loaders, "generate_mnist1d", lambda: calls.append(1) or arrays)
    cache.mkdir()
    (cache / loaders.MNIST1D_CACHE).write_bytes(b"not a zip file")
    ds = load_dataset("mnist1d", cache_dir=cache)
    assert calls == [1]
    assert_same(ds, load_dataset("mnist1d", cache_dir=shared_cache))
    with np.load(cache / loaders.MNIST1D_CACHE) as npz:
        assert set(npz.files) == {"x", "y", "x_test", "y_test"}


def test_cache_dir_defaults_to_the_environment_then_home(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_SKIP_CACHE", str(tmp_path))
    assert resolve_cache_dir(None) == tmp_path
    assert resolve_cache_dir(shared_cache) == shared_cache
    load_dataset("mnist1d", cache_dir=shared_cache)
    (tmp_path / loaders.MNIST1D_CACHE).write_bytes(
        (shared_cache / loaders.MNIST1D_CACHE).read_bytes()
    )
    _forbid_generation(monkeypatch)
    assert len(load_dataset("mnist1d").x_train) == 3400  # read from $NAS_SKIP_CACHE
    monkeypatch.delenv("NAS_SKIP_CACHE")
    assert resolve_cache_dir(None) == Path.home() / ".cache" / "nas-skip"


def test_unwritable_cache_dir_is_a_dataset_error(
    tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = _shared_mnist1d(shared_cache)
    monkeypatch.setattr(loaders, "generate_mnist1d", lambda: arrays)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DatasetError, match="cannot write the dataset cache .*a-file"):
        load_dataset("mnist1d", cache_dir=blocker / "sub")


def test_loading_makes_no_network_call(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import socket, sys

        attempts = []  # kept, because a library may swallow the error and carry on

        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network access attempted")

        class NoNetwork(socket.socket):
            # creating and binding stay allowed: urllib3 probes IPv6 by binding to ::1
            connect = connect_ex = sendto = refuse

        socket.socket = NoNetwork
        socket.create_connection = socket.getaddrinfo = refuse
        try:
            socket.create_connection(("example.org", 80))
        except OSError:
            attempts.clear()
        else:
            sys.exit("the socket patch is not in force")

        from nas_skip.data import load_dataset

        for name in ("mnist1d", "shapes", "digits"):
            print(load_dataset(name, cache_dir=sys.argv[1]))
        if attempts:
            sys.exit(f"network access attempted: {attempts}")
        """
    )
    cache = tmp_path / "empty"
    done = subprocess.run(
        [sys.executable, "-c", script, str(cache)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Dataset('shapes'" in done.stdout and "Dataset('mnist1d'" in done.stdout
    assert sorted(p.name for p in cache.iterdir()) == [
        loaders.MNIST1D_CACHE,
        f"shapes_v{shapes.SHAPES_VERSION}.npz",
    ]


# --- error branches --------------------------------------------------------------------


def test_unknown_name_lists_the_datasets() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'; known datasets: ") as e:
        load_dataset("imagenet")
    assert all(n in str(e.value) for n in DATASETS)
    assert isinstance(e.value, NasSkipError) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("name", "domain", "supported"),
    [
        ("mnist1d", "image", "vector, signal"),
        ("shapes", "segmentation", "image"),
        ("digits", "segmentation", "image, vector"),
        ("cifar10", "vector", "image"),
        ("shapes_seg", "pixels", "segmentation"),
    ],
)
def test_unsupported_domain_names_dataset_and_choices(
    name: str, domain: str, supported: str, cache: Path
) -> None:
    with pytest.raises(DatasetError) as e:
        load_dataset(name, domain, cache_dir=cache)
    msg = str(e.value)
    assert msg == f"dataset {name!r} does not support domain {domain!r}; supported: {supported}"
    assert not cache.exists()  # refused before anything was generated
