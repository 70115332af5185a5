"""The trainer on small synthetic datasets: real torch, CPU, one thread, a few epochs."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import chain

from nas_skip import Genotype, build
from nas_skip.data._base import Dataset
from nas_skip.genotype import costs
from nas_skip.train import (
    EpochMetrics,
    TrainConfig,
    TrainError,
    TrainResult,
    TrialDiverged,
    fit,
    train,
    train_to_dir,
)
from nas_skip.train._config import resolve
from nas_skip.train._metrics import confusion_scores

FAST = TrainConfig(epochs=3, lr=0.05, batch_size=32, latency_runs=3)
# fields that are wall-clock measurements, not functions of the seed
TIMING = {"seconds", "eval_seconds", "train_seconds", "latency_ms"}


# --- synthetic data and genotypes ---------------------------------------------------------
def vector_dataset(
    n: tuple[int, int, int] = (384, 128, 128), features: int = 8, classes: int = 4, seed: int = 0
) -> Dataset:
    """Labels are the argmax of a fixed random linear map: learnable, chance 1 / classes."""
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(features, classes, generator=gen)
    tensors = []
    for size in n:
        x = torch.randn(size, features, generator=gen)
        tensors += [x, (x @ teacher).argmax(1)]
    return Dataset("synthetic_vec", "vector", (features,), classes, *tensors)


def segmentation_dataset(n: tuple[int, int, int] = (96, 32, 32), size: int = 8) -> Dataset:
    """Each pixel's label is the channel with the largest smoothed value (3 classes)."""
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for count in n:
        x = torch.randn(count, 3, size, size, generator=gen)
        smooth = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
        tensors += [x, smooth.argmax(1)]
    return Dataset("synthetic_seg", "segmentation", (3, size, size), 3, *tensors)


def image_dataset(n: tuple[int, int, int] = (65, 16, 16)) -> Dataset:
    """Class = the brightest channel on average (3 classes), 8x8 images."""
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for count in n:
        x = torch.randn(count, 3, 8, 8, generator=gen)
        tensors += [x, x.mean((2, 3)).argmax(1)]
    return Dataset("synthetic_img", "image", (3, 8, 8), 3, *tensors)


def residual_mlp(features: int = 8, width: int = 32, classes: int = 4) -> Genotype:
    doc = chain(
        [features],
        {"id": "stem", "op": "linear_relu", "features": width},
        {"id": "f", "op": "linear_relu", "features": width},
        {"id": "res", "op": "identity"},
        {"id": "head", "op": "linear_head", "classes": classes},
        edges=[{"src": "stem", "dst": "res", "kind": "add"}],
    )
    return Genotype.from_json({**doc, "name": "residual_mlp"})


def plain_mlp(depth: int = 6, width: int = 32) -> Genotype:
    layers = [{"id": f"l{i}", "op": "linear_relu", "features": width} for i in range(depth)]
    return Genotype.from_json(
        chain([8], *layers, {"id": "head", "op": "linear_head", "classes": 4})
    )


def small_unet(classes: int = 3) -> Genotype:
    doc = chain(
        [3, 8, 8],
        {"id": "enc", "op": "conv3x3_bn_relu", "channels": 8},
        {"id": "down", "op": "maxpool3x3", "stride": 2},
        {"id": "mid", "op": "conv3x3_bn_relu", "channels": 16},
        {"id": "up", "op": "upsample2x"},
        {"id": "dec", "op": "conv3x3_bn_relu", "channels": 8},
        {"id": "head", "op": "conv1x1_head", "classes": classes},
        edges=[{"src": "enc", "dst": "dec", "kind": "concat"}],
    )
    return Genotype.from_json({**doc, "name": "small_unet"})


def small_cnn() -> Genotype:
    doc = chain(
        [3, 8, 8],
        {"id": "stem", "op": "conv3x3_bn_relu", "channels": 8},
        {"id": "c", "op": "conv3x3_bn", "channels": 8},
        {"id": "act", "op": "relu"},
        {"id": "head", "op": "gap_linear", "classes": 3},
        edges=[{"src": "stem", "dst": "act", "kind": "add"}],
    )
    return Genotype.from_json(doc)


def values(result: TrainResult) -> dict[str, Any]:
    """The result without wall-clock fields: what the seed determines."""
    d = result.to_dict()
    d["history"] = [{k: v for k, v in m.items() if k not in TIMING} for m in d["history"]]
    return {k: v for k, v in d.items() if k not in TIMING}


# --- determinism ------------------------------------------------------------------------
def test_same_seed_gives_identical_metrics_and_another_seed_differs() -> None:
    g, ds = residual_mlp(), vector_dataset()
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = train(g, ds, FAST)
    # the run seeds a forked RNG: the caller's random stream is where it was
    assert torch.equal(torch.rand(3), expected_draw)
    second = train(g, ds, FAST)
    assert values(first) == values(second)
    other = train(g, ds, dataclasses.replace(FAST, seed=1))
    assert other.val_loss != first.val_loss
    assert [m.train_loss for m in other.history] != [m.train_loss for m in first.history]


# --- divergence -------------------------------------------------------------------------
def test_inf_in_the_inputs_diverges_in_epoch_1() -> None:
    ds = vector_dataset()
    ds.x_train[5, 2] = math.inf
    with pytest.raises(TrialDiverged, match=r"^training diverged in epoch 1: train loss is nan"):
        train(residual_mlp(), ds, FAST)


@pytest.mark.parametrize("lr", [1e6, 10.0])
def test_huge_learning_rate_diverges_and_names_the_epoch(lr: float) -> None:
    seen: list[int] = []
    config = dataclasses.replace(FAST, epochs=10, lr=lr, schedule="constant")
    with pytest.raises(TrialDiverged) as info:
        train(plain_mlp(), vector_dataset(), config, callback=lambda e, m: seen.append(e))
    exc = info.value
    assert f"epoch {exc.epoch}:" in str(exc)
    assert "\n" not in str(exc)
    # every epoch before the named one completed (and was reported); none after it ran
    assert seen == list(range(1, exc.epoch))
    assert isinstance(exc, TrialDiverged) and 1 <= exc.epoch <= 10


def test_trial_diverged_survives_pickling() -> None:
    # Ray ships a worker's exception to the driver by pickling it (our own bytes here)
    data = pickle.dumps(TrialDiverged("training diverged in epoch 4: x", 4))
    exc = pickle.loads(data)  # noqa: S301
    assert isinstance(exc, TrialDiverged) and exc.epoch == 4
    assert str(exc) == "training diverged in epoch 4: x"


# --- callback ---------------------------------------------------------------------------
def test_callback_receives_every_epoch_with_sane_metrics() -> None:
    calls: list[tuple[int, EpochMetrics]] = []
    config = dataclasses.replace(FAST, epochs=4)
    result = train(
        residual_mlp(), vector_dataset(), config, callback=lambda e, m: calls.append((e, m))
    )
    assert [e for e, _ in calls] == [1, 2, 3, 4]
    assert [m for _, m in calls] == result.history
    for epoch, m in calls:
        assert m.epoch == epoch
        assert math.isfinite(m.train_loss) and m.train_loss > 0
        assert math.isfinite(m.val_loss) and m.val_loss > 0
        assert 0.0 <= m.val_accuracy <= 1.0
        assert m.val_miou is None and m.val_pixel_accuracy is None
        assert m.seconds > 0 and m.eval_seconds > 0
        # cosine, stepped per epoch
        assert m.lr == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / 4)))
    assert calls[-1][1].val_accuracy == result.val_accuracy
    assert calls[-1][1].val_loss == result.val_loss


def test_an_exception_in_the_callback_propagates_and_stops_training() -> None:
    class Pruned(Exception):
        pass

    raised = Pruned("stop at 2")
    calls: list[int] = []

    def callback(epoch: int, metrics: EpochMetrics) -> None:
        calls.append(epoch)
        if epoch == 2:
            raise raised

    with pytest.raises(Pruned) as info:
        train(residual_mlp(), vector_dataset(), dataclasses.replace(FAST, epochs=5), callback)
    assert info.value is raised
    assert calls == [1, 2]


# --- the result -------------------------------------------------------------------------
def test_result_metrics_are_present_and_sane() -> None:
    g = residual_mlp()
    result = train(g, vector_dataset(), FAST)
    assert result.task == "classification" and result.epochs == 3 and len(result.history) == 3
    for acc in (result.val_accuracy, result.test_accuracy, 1 - result.train_error):
        assert 0.0 <= acc <= 1.0
    assert result.val_pixel_accuracy is None and result.test_pixel_accuracy is None
    assert all(math.isfinite(v) for v in (result.val_loss, result.test_loss, result.train_loss))
    assert result.train_loss == result.history[-1].train_loss
    assert result.params == sum(p.numel() for p in build(g).parameters())
    assert result.flops > 0
    assert result.flops == sum(c.flops for c in costs(g))  # the pure-data count agrees
    assert result.latency_ms > 0 and result.train_seconds > 0
    assert result.device == "cpu" and not result.amp and not result.channels_last
    json.dumps(result.to_dict())  # JSON-ready


def test_a_learnable_task_gets_well_above_chance() -> None:
    config = dataclasses.replace(FAST, epochs=6, lr=0.1)
    result = train(residual_mlp(), vector_dataset(), config)
    assert result.val_accuracy > 0.8  # chance is 0.25
    assert result.train_error < 0.2
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_adamw_clipping_smoothing_and_a_constant_schedule_train() -> None:
    config = TrainConfig(
        epochs=4,
        lr=3e-3,
        optimizer="adamw",
        schedule="constant",
        label_smoothing=0.1,
        grad_clip=1.0,
        batch_size=32,
        latency_runs=3,
    )
    result = train(residual_mlp(), vector_dataset(), config)
    assert {m.lr for m in result.history} == {3e-3}
    assert result.val_accuracy > 0.6


def test_warmup_ramps_the_rate_step_by_step_then_hands_over_to_the_schedule() -> None:
    from nas_skip.train._loop import _Warmup

    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.4)
    optimizer.param_groups[0]["scheduled_lr"] = 0.4
    warmup, seen = _Warmup(4), []
    for _ in range(6):
        warmup.step(optimizer)
        seen.append(optimizer.param_groups[0]["lr"])
    assert seen == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])


def test_warmup_and_clipping_train_a_rate_that_diverges_without_them() -> None:
    # the residual MLP at lr 5 with SGD blows up in its first epoch; warmed up over two
    # epochs with clipped gradients, the same run at the same rate trains
    config = dataclasses.replace(FAST, epochs=6, lr=5.0, schedule="constant")
    with pytest.raises(TrialDiverged, match="set grad_clip or warmup_epochs"):
        train(residual_mlp(), vector_dataset(), config)
    steady = dataclasses.replace(config, warmup_epochs=2.0, grad_clip=0.5)
    result = train(residual_mlp(), vector_dataset(), steady)
    assert result.val_accuracy > 0.6  # chance is 0.25
    # the epoch's scheduled rate is what the history records, warm-up or not
    assert {m.lr for m in result.history} == {5.0}


def test_the_training_split_is_evaluated_only_when_asked() -> None:
    on = train(residual_mlp(), vector_dataset(), FAST)
    off = train(residual_mlp(), vector_dataset(), dataclasses.replace(FAST, train_error=False))
    assert on.train_error is not None and 0.0 <= on.train_error <= 1.0
    assert off.train_error is None
    # nothing else changes: the same weights, the same scores
    assert (off.val_accuracy, off.val_loss) == (on.val_accuracy, on.val_loss)


def test_segmentation_reports_miou_and_pixel_accuracy() -> None:
    ds = segmentation_dataset()
    config = dataclasses.replace(FAST, epochs=4, lr=0.1, batch_size=16)
    result = train(small_unet(), ds, config)
    assert result.task == "segmentation"
    for v in (result.val_accuracy, result.test_accuracy):
        assert 0.0 <= v <= 1.0
    assert result.val_pixel_accuracy is not None and result.test_pixel_accuracy is not None
    assert result.val_pixel_accuracy > 0.5  # chance is about 1/3
    last = result.history[-1]
    assert last.val_miou == result.val_accuracy and last.val_pixel_accuracy is not None
    assert 0.0 <= result.train_error <= 1.0 and result.flops > 0


def test_eval_batch_size_does_not_change_the_scores_and_progress_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    g, ds = residual_mlp(), vector_dataset()
    default = train(g, ds, FAST)
    odd = train(g, ds, dataclasses.replace(FAST, eval_batch_size=7), progress=True)
    assert odd.val_accuracy == default.val_accuracy
    assert odd.test_accuracy == default.test_accuracy
    assert odd.train_error == default.train_error
    assert odd.val_loss == pytest.approx(default.val_loss, rel=1e-5)
    assert "residual_mlp: loss" in capsys.readouterr().out


def test_confusion_scores() -> None:
    # rows true, columns predicted; class 2 never occurs nor is predicted: skipped
    cm = torch.tensor([[3, 1, 0], [2, 4, 0], [0, 0, 0]])
    accuracy, miou = confusion_scores(cm)
    assert accuracy == pytest.approx(7 / 10)
    assert miou == pytest.approx((3 / (4 + 5 - 3) + 4 / (6 + 5 - 4)) / 2)


def test_channels_last_on_cpu_and_a_lone_last_sample_are_handled() -> None:
    # 65 training samples at batch 32 leave a batch of one, which BatchNorm cannot train on
    config = dataclasses.replace(FAST, channels_last="on", batch_size=32)
    result = train(small_cnn(), image_dataset(), config)
    assert result.channels_last and 0.0 <= result.val_accuracy <= 1.0


# --- errors -----------------------------------------------------------------------------
def test_input_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(TrainError, match=r"'residual_mlp' takes input \[6\] .* 'synthetic_vec'"):
        train(residual_mlp(features=6), vector_dataset(), FAST)


def test_output_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(TrainError, match=r"outputs \[5\] .*4 classes\) needs output \[4\]"):
        train(residual_mlp(classes=5), vector_dataset(), FAST)
    with pytest.raises(TrainError, match=r"outputs \[4, 8, 8\] .*needs output \[3, 8, 8\]"):
        train(small_unet(classes=4), segmentation_dataset(), FAST)
    # a classifier on a segmentation dataset
    with pytest.raises(TrainError, match=r"outputs \[3\] .*segmentation"):
        train(small_cnn(), segmentation_dataset(), FAST)


def test_bad_dataset_splits_are_reported() -> None:
    ds = vector_dataset()
    bad_labels = dataclasses.replace(ds, y_val=ds.y_val + 4)
    with pytest.raises(TrainError, match=r"y_val must be int64 labels in \[0, 4\)"):
        train(residual_mlp(), bad_labels, FAST)
    empty = dataclasses.replace(ds, x_test=ds.x_test[:0], y_test=ds.y_test[:0])
    with pytest.raises(TrainError, match=r"split 'test' has 0 inputs"):
        train(residual_mlp(), empty, FAST)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("epochs", 0, "an integer >= 1"),
        ("epochs", 2.5, "an integer >= 1"),
        ("epochs", True, "an integer >= 1"),
        ("lr", 0.0, "> 0"),
        ("lr", math.nan, "> 0"),
        ("weight_decay", -1e-4, ">= 0"),
        ("batch_size", 0, ">= 1"),
        ("optimizer", "adam", "'sgd', 'adamw'"),
        ("momentum", 1.0, "in [0, 1)"),
        ("schedule", "step", "'cosine', 'constant'"),
        ("label_smoothing", 1.0, "in [0, 1)"),
        ("grad_clip", 0.0, "> 0 or None"),
        ("warmup_epochs", -0.5, ">= 0"),
        ("warmup_epochs", math.inf, ">= 0"),
        ("train_error", "no", "true or false"),
        ("seed", -1, "in [0, "),
        ("threads", 0, "in [1, 1024]"),
        ("device", "tpu", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("amp", "yes", "'auto', 'on', 'off'"),
        ("channels_last", True, "'auto', 'on', 'off'"),
        ("eval_batch_size", 0, ">= 1 or None"),
        ("latency_runs", 0, "in [1, 10000]"),
    ],
)
def test_config_validation_names_the_field_and_the_allowed_values(
    field: str, value: object, allowed: str
) -> None:
    with pytest.raises(TrainError) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"TrainConfig.{field} must be ")
    assert allowed in message and repr(value) in message and "\n" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA errors")
def test_cuda_requests_without_cuda_are_errors() -> None:
    with pytest.raises(TrainError, match="TrainConfig.device is 'cuda' but CUDA is not"):
        resolve(TrainConfig(device="cuda"), image_input=False)
    with pytest.raises(TrainError, match="TrainConfig.amp='on' needs a CUDA device"):
        resolve(TrainConfig(amp="on"), image_input=False)
    auto = resolve(TrainConfig(), image_input=True)
    assert auto.device.type == "cpu" and not auto.amp and not auto.channels_last
    assert auto.eval_batch_size == 64


def test_train_rejects_a_config_of_the_wrong_type() -> None:
    with pytest.raises(TrainError, match="config must be a TrainConfig, got dict"):
        train(residual_mlp(), vector_dataset(), {"epochs": 1})  # type: ignore[arg-type]


# --- train_to_dir -----------------------------------------------------------------------
def test_train_to_dir_writes_weights_metrics_and_genotype(tmp_path: Path) -> None:
    g, ds = residual_mlp(), vector_dataset()
    out = tmp_path / "run" / "nested"
    result = train_to_dir(g, ds, FAST, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["genotype.json", "metrics.json", "weights.pt"]
    model = build(g)
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    model.eval()
    with torch.no_grad():
        accuracy = (model(ds.x_val).argmax(1) == ds.y_val).double().mean().item()
    assert accuracy == pytest.approx(result.val_accuracy)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic_vec"
    assert metrics["config"] == FAST.to_dict()
    assert metrics["val_accuracy"] == result.val_accuracy
    assert metrics["genotype_hash"] == g.canonical_hash()
    assert len(metrics["history"]) == 3
    assert Genotype.from_json((out / "genotype.json").read_text()) == g


def test_train_to_dir_refuses_a_file_as_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(TrainError, match="exists and is not a directory"):
        train_to_dir(residual_mlp(), vector_dataset(), FAST, target, progress=False)


def test_metrics_json_names_the_score_miou_for_segmentation(tmp_path: Path) -> None:
    seg = train_to_dir(small_unet(), segmentation_dataset(), FAST, tmp_path / "s", progress=False)
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["metric"] == "mIoU" and metrics["task"] == "segmentation"
    assert (metrics["val_miou"], metrics["test_miou"]) == (seg.val_accuracy, seg.test_accuracy)
    assert "val_accuracy" not in metrics and "test_accuracy" not in metrics
    assert all("val_accuracy" not in e and "val_miou" in e for e in metrics["history"])
    assert metrics["val_pixel_accuracy"] == seg.val_pixel_accuracy  # the other score
    train_to_dir(residual_mlp(), vector_dataset(), FAST, tmp_path / "c", progress=False)
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert metrics["metric"] == "accuracy" and "val_accuracy" in metrics


# --- torch.compile ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_compiled_run_trains_the_same_network_and_returns_the_plain_module() -> None:
    g, ds = residual_mlp(), vector_dataset()
    plain_result, plain = fit(g, ds, FAST)
    compiled_result, model = fit(g, ds, dataclasses.replace(FAST, compile=True))
    # the generated class (each build makes its own), not torch's OptimizedModule wrapper
    assert type(model).__name__ == type(plain).__name__ == "Net"
    assert not isinstance(model, torch._dynamo.eval_frame.OptimizedModule)
    assert model.state_dict().keys() == plain.state_dict().keys()  # no _orig_mod. prefix
    # compiled kernels may round differently: the same run, up to float noise
    assert compiled_result.val_loss == pytest.approx(plain_result.val_loss, rel=1e-3)
    for a, b in zip(compiled_result.history, plain_result.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-3)
    assert compiled_result.params == plain_result.params


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_compile_must_be_a_boolean(value: object) -> None:
    with pytest.raises(TrainError, match="TrainConfig.compile must be true or false"):
        TrainConfig(compile=value)  # type: ignore[arg-type]
