"""``nas-skip spaces`` and ``nas-skip train`` in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from helpers import nas_skip_cli

from nas_skip import Genotype, build

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "genotypes"


def test_spaces_lists_every_space() -> None:
    done = nas_skip_cli("spaces")
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert {"deep_mlp", "resnet_macro", "nb101_cell", "densenet", "unet"} <= set(rows)
    assert "mnist1d" in rows["deep_mlp"] and "vector" in rows["deep_mlp"]
    assert "shapes_seg" in rows["unet"] and "10^" in rows["unet"]


def test_spaces_shows_parameters_and_draws_a_sample(tmp_path: Path) -> None:
    done = nas_skip_cli("spaces", "resnet_macro", "--seed", "3", "--draw", tmp_path / "s.svg")
    assert done.returncode == 0, done.stderr
    assert "shortcut:s2" in done.stdout and "edge:s1.in->s1.l1" in done.stdout
    assert "a random sample (seed 3)" in done.stdout and "hash:   v2:" in done.stdout
    assert "training: lr=" in done.stdout
    assert (tmp_path / "s.svg").read_text().startswith("<?xml")
    again = nas_skip_cli("spaces", "resnet_macro", "--seed", "3")
    hash_line = [line for line in done.stdout.splitlines() if line.startswith("hash:")]
    assert hash_line == [line for line in again.stdout.splitlines() if line.startswith("hash:")]


def test_spaces_errors_are_one_line() -> None:
    for args, words in [
        (("spaces", "nope"), "unknown space 'nope'"),
        (("spaces", "unet", "--dataset", "mnist1d"), "'mnist1d' offers vector and signal data"),
    ]:
        done = nas_skip_cli(*args)
        assert done.returncode == 2
        assert done.stderr.startswith("error: ") and words in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_train_writes_weights_and_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    genotype = EXAMPLES / "rezero_mlp.json"
    done = nas_skip_cli("train", genotype, "--dataset", "mnist1d", "--epochs", "2", "--out", out,
                        "--optimizer", "adamw", "--lr", "0.003", "--grad-clip", "1",
                        "--warmup-epochs", "0.5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "validation accuracy:" in done.stdout and "weights.pt" in done.stdout
    assert "training error:" in done.stdout  # measured: train is where one studies fitting
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["epochs"] == 2
    recipe = {k: metrics["config"][k] for k in ("optimizer", "lr", "grad_clip", "warmup_epochs")}
    assert recipe == {"optimizer": "adamw", "lr": 0.003, "grad_clip": 1.0, "warmup_epochs": 0.5}
    g = Genotype.from_json((out / "genotype.json").read_text())
    model = build(g)
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))


def test_train_errors_are_one_line(tmp_path: Path) -> None:
    genotype = EXAMPLES / "rezero_mlp.json"
    for args, words in [
        (("--dataset", "shapes"), "dataset 'shapes' does not support domain 'vector'"),
        (("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
        (("--dataset", "mnist1d", "--lr", "-1"), "lr"),
        (("--dataset", "mnist1d", "--optimizer", "lion"), "optimizer"),
        (("--dataset", "mnist1d", "--grad-clip", "0"), "grad_clip"),
        (("--dataset", "mnist1d", "--warmup-epochs", "-1"), "warmup_epochs"),
    ]:
        done = nas_skip_cli("train", genotype, "--epochs", "1", "--out", tmp_path, *args)
        assert done.returncode == 2, done.stdout
        assert done.stderr.startswith("error: ") and words in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_train_takes_signal_genotypes_as_signals(tmp_path: Path) -> None:
    doc = {
        "schema": 1,
        "input": {"shape": [1, 40]},
        "nodes": [
            {"id": "c", "op": "conv1d_k5_bn_relu", "channels": 4, "stride": 2},
            {"id": "head", "op": "gap1d_linear", "classes": 10},
        ],
        "edges": [{"src": "input", "dst": "c"}, {"src": "c", "dst": "head"}],
        "output": "head",
    }
    (tmp_path / "g.json").write_text(json.dumps(doc))
    done = nas_skip_cli("train", tmp_path / "g.json", "--dataset", "mnist1d", "--epochs", "1",
                        "--out", tmp_path / "run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "validation accuracy:" in done.stdout
