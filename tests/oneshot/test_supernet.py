"""The supernet's mixtures and its bi-level training, on tiny spaces."""

from __future__ import annotations

import math

import pytest
import torch

from nas_skip.data import load_dataset
from nas_skip.oneshot import OneShotConfig, SuperNet, inherited_accuracy, relax, train_supernet
from nas_skip.spaces import load_space


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "vector")


def _relaxed(depth: int = 4, width: int = 64):
    return relax(load_space("deep_mlp", "digits"), {"depth": depth, "width": width})


def test_pinning_every_edge_to_none_cuts_the_skips_off() -> None:
    r = _relaxed()
    torch.manual_seed(0)
    net = SuperNet(r).eval()
    x = torch.randn(4, 64)
    plain = {c.name: ("none" if c.role == "edge" else c.values[0]) for c in r.choices}
    net.select(plain)
    a = net(x)
    # switching one skip on changes the output; the mixture is neither of the two
    net.select({**plain, "edge:l0->l3": "add"})
    b = net(x)
    assert not torch.allclose(a, b)
    net.select(None)
    mixed = net(x)
    assert mixed.shape == (4, 10) and not torch.allclose(mixed, a)


def test_mixing_weights_sum_to_one_per_edge_and_sigmoid_gates_are_capped() -> None:
    r = _relaxed()
    soft = SuperNet(r, "softmax")
    for w in soft.mixing():
        assert float(w.detach().sum()) == pytest.approx(1.0)
    sig = SuperNet(r, "sigmoid")
    for c, w in zip(r.choices, [m.detach() for m in sig.mixing()], strict=True):
        some = sum(float(x) for v, x in zip(c.values, w, strict=True) if v != "none")
        assert some <= 1.0 + 1e-6
    assert all(abs(v - 0.5) < 0.01 for ws in sig.weights().values() for v in ws)
    assert float(sig.zero_one_loss().detach()) == pytest.approx(0.0, abs=1e-4)


def test_training_moves_the_architecture_and_records_each_epoch(digits) -> None:
    r = _relaxed()
    seen = []
    run = train_supernet(r, digits, OneShotConfig(epochs=4, arch_lr=0.05, seed=1),
                         on_epoch=seen.append)  # fmt: skip
    assert [e.epoch for e in run.epochs] == [1, 2, 3, 4] and seen == run.epochs
    assert run.epochs[0].arch_loss is None and run.epochs[-1].arch_loss is not None
    first, last = run.epochs[0].weights, run.epochs[-1].weights
    moved = max(abs(a - b) for n in first for a, b in zip(first[n], last[n], strict=True))
    assert moved > 0.01
    assert run.val_accuracy > 0.5  # digits: 10 classes, a 4-layer MLP learns it
    assert all(math.isfinite(e.train_loss) for e in run.epochs)
    g = r.genotype_of(run.params)
    assert r.skips(run.params) == run.epochs[-1].skips
    assert g.output == "head"
    # same seed, same run
    again = train_supernet(r, digits, OneShotConfig(epochs=4, arch_lr=0.05, seed=1))
    assert again.epochs[-1].weights == run.epochs[-1].weights


def test_sigmoid_trains_a_deep_supernet_without_overflow(digits) -> None:
    """Summed, the skips of a 12-layer chain with every gate at 0.5 overflow; capped at
    one input per layer they train."""
    r = _relaxed(depth=12)
    run = train_supernet(r, digits, OneShotConfig(epochs=2, relaxation="sigmoid",
                                                  warmup_fraction=0.0))  # fmt: skip
    assert all(math.isfinite(e.train_loss) for e in run.epochs)
    assert run.val_accuracy > 0.2


def test_max_skips_caps_the_derived_network(digits) -> None:
    r = _relaxed()
    run = train_supernet(r, digits, OneShotConfig(epochs=2, max_skips=1, warmup_fraction=0.0))
    assert r.skips(run.params) <= 1


def test_inherited_accuracy_pins_a_network_and_leaves_the_supernet_as_it_was(digits) -> None:
    r = _relaxed()
    run = train_supernet(r, digits, OneShotConfig(epochs=2))
    before = {k: v.clone() for k, v in run.net.state_dict().items()}
    params = dict(r.fixed)
    params.update({c.name: c.values[-1] for c in r.choices})
    acc = inherited_accuracy(run, params, digits)
    assert 0.0 <= acc <= 1.0
    after = run.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert run.net._selected is None


def test_segmentation_and_cells_train_a_step() -> None:
    """The U-Net supernet (mixed long and block skips) trains on shapes_seg for one epoch;
    a NAS-Bench-101 cell supernet, whose nodes start from their mixed inputs alone, too."""
    for name, fix, dataset in (("unet", {"depth": 3, "width": 8}, "shapes_seg"),
                               ("nb101_cell", {}, "shapes")):  # fmt: skip
        space = load_space(name)
        r = relax(space, fix)
        data = load_dataset(dataset, space.domain)
        small = type(data)(data.name, data.domain, data.input_shape, data.num_classes,
                           data.x_train[:96], data.y_train[:96], data.x_val[:32],
                           data.y_val[:32], data.x_test[:8], data.y_test[:8])  # fmt: skip
        run = train_supernet(r, small, OneShotConfig(epochs=1, warmup_fraction=0.0))
        assert math.isfinite(run.epochs[0].train_loss)
        r.genotype_of(run.params)
