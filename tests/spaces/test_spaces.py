"""Search spaces: every shipped space samples valid genotypes with stable parameter names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

from nas_skip import NasSkipError, build
from nas_skip.genotype import topology
from nas_skip.spaces import Space, SpaceError, Structure, list_spaces, load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
torch.set_num_threads(1)
SHIPPED = [
    "conv1d",
    "deep_mlp",
    "densenet",
    "nb101_cell",
    "nb201",
    "resnet_macro",
    "transformer",
    "unet",
]


def test_the_shipped_spaces() -> None:
    assert list_spaces() == SHIPPED


def sample_many(space: Space, sampler: optuna.samplers.BaseSampler, n: int) -> list:
    study = optuna.create_study(sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        g = space.sample(trial)
        hp = space.sample_train(trial)
        out.append((g, hp, trial.params))
        study.tell(trial, float(len(g.nodes)))  # any value: TPE needs something to model
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_random_and_tpe_samples_build_and_run(name: str) -> None:
    space = load_space(name)
    samples = sample_many(space, optuna.samplers.RandomSampler(seed=1), 25)
    tpe = optuna.samplers.TPESampler(seed=1, multivariate=True, n_startup_trials=5)
    samples += sample_many(space, tpe, 10)
    hashes = set()
    for i, (g, hp, params) in enumerate(samples):
        assert g.input_shape == space.input_shape
        assert g.shapes[g.output][-1 if g.sequence else 0] == space.num_classes
        assert set(hp) == set(space.spec.train)
        assert all(not k.startswith("train:") or k[6:] in hp for k in params)
        hashes.add(g.canonical_hash())
        if i % 5 == 0:  # building every sample is slow; a fifth of them run forward+backward
            model = build(g)
            x = torch.randn(2, *g.input_shape)
            if g.sequence:  # token ids
                x = torch.randint(0, space.num_classes, (2, *g.input_shape))
            y = model(x)
            y.float().mean().backward()
    assert len(hashes) > len(samples) // 2  # the space is not degenerate


@pytest.mark.parametrize("name", SHIPPED)
def test_many_random_samples_are_always_valid(name: str) -> None:
    space = load_space(name)
    for g, _, _ in sample_many(space, optuna.samplers.RandomSampler(seed=7), 150):
        assert g.output == "head"


def test_parameter_names_are_readable() -> None:
    names = {p.name for p in load_space("deep_mlp").parameters()}
    assert {"depth", "width", "op:l0", "edge:stem->l0", "edge:l0->l1", "edge:l0->l3"} <= names
    assert "edge:l0->l4" not in names  # hop window 3
    assert {"train:lr", "train:weight_decay", "train:batch_size"} <= names
    names = {p.name for p in load_space("resnet_macro").parameters()}
    assert {"depth:s1", "shortcut:s2", "op:s2.l0", "edge:s2.in->s2.l1", "edge:s1.l0->s1.l2"} <= (
        names
    )
    names = {p.name for p in load_space("conv1d").parameters()}
    assert {"width", "depth:s3", "shortcut:s2", "op:s1.l0", "edge:s3.in->s3.l1"} <= names
    names = {p.name for p in load_space("nb101_cell").parameters()}
    assert {"op:n1", "op:n5", "edge:n0->n6", "edge:n5->n6"} <= names and len(names) == 29
    names = {p.name for p in load_space("unet").parameters()}
    assert {"depth", "skip:l0", "skip:l3", "res:enc0", "res:mid", "res:dec3"} <= names
    names = {p.name for p in load_space("densenet").parameters()}
    assert {"growth", "compression", "layers:b1", "edge:b1.in->b1.l1", "edge:b3.l0->b3.l4"} <= (
        names
    )


def test_parameter_names_and_genotypes_are_stable_across_runs() -> None:
    code = (
        "import json, optuna\n"
        "from nas_skip.spaces import load_space\n"
        "optuna.logging.set_verbosity(optuna.logging.WARNING)\n"
        "out = []\n"
        f"for name in {SHIPPED!r}:\n"
        "    space = load_space(name)\n"
        "    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))\n"
        "    for _ in range(3):\n"
        "        t = study.ask(); g = space.sample(t); study.tell(t, 0.0)\n"
        "        out.append([sorted(t.params), g.canonical_hash()])\n"
        "print(json.dumps(out))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout)


def test_fixed_trial_gives_a_chosen_architecture() -> None:
    space = load_space("deep_mlp")
    params = {"depth": 4, "width": 64}
    for j in range(4):
        params[f"op:l{j}"] = "linear_relu"
        for i in range(max(-1, j - 3), j):
            src = "stem" if i < 0 else f"l{i}"
            params[f"edge:{src}->l{j}"] = "add" if i == j - 1 else "none"
    g = space.sample(optuna.trial.FixedTrial(params))
    adds = [(e.src, e.dst) for e in g.edges if e.kind == "add"]
    assert adds == [("stem", "m0"), ("m0", "m1"), ("m1", "m2"), ("m2", "m3")]
    assert g.shapes["head"] == (10,)


def test_size_and_dataset_binding() -> None:
    space = load_space("deep_mlp")
    assert space.dataset == "mnist1d" and space.input_shape == (40,)
    assert 50 < space.size_log10() < 100
    other = load_space("deep_mlp", dataset="digits")
    assert other.input_shape == (64,) and other.num_classes == 10
    image = load_space("resnet_macro", dataset="digits")
    assert image.input_shape == (1, 8, 8)
    g = image.sample(optuna.create_study().ask())
    assert g.input_shape == (1, 8, 8)
    signal = load_space("conv1d")
    assert signal.dataset == "mnist1d" and signal.input_shape == (1, 40)
    g = signal.sample(optuna.create_study().ask())
    assert g.domain == "signal" and g.node("stem").op == "conv1d_k3_bn_relu"
    assert g.node("head").op == "gap1d_linear" and g.shapes["head"] == (10,)


def test_space_by_path(tmp_path: Path) -> None:
    src = Path(load_space("unet").spec.path).read_text().replace("name: unet", "name: mine")
    (tmp_path / "mine.yaml").write_text(src)
    assert load_space(tmp_path / "mine.yaml").name == "mine"


def test_training_values_given_at_load_replace_the_file_s() -> None:
    space = load_space("deep_mlp", train={"lr": 0.004, "optimizer": "sgd"})
    hparams = space.sample_train(optuna.create_study().ask())
    assert hparams["lr"] == 0.004 and hparams["optimizer"] == "sgd"
    assert hparams["warmup_epochs"] == 1  # the file's own, untouched
    with pytest.raises(SpaceError, match=r"deep_mlp.yaml: train.epochs: unknown key \(keys: lr"):
        load_space("deep_mlp", train={"epochs": 3})
    with pytest.raises(SpaceError, match=r"train.lr: must be distinct finite numbers"):
        load_space("deep_mlp", train={"lr": "fast"})


def test_unknown_space_and_wrong_domain() -> None:
    with pytest.raises(SpaceError, match="unknown space 'nope' \\(spaces: conv1d, deep_mlp"):
        load_space("nope")
    with pytest.raises(SpaceError, match="shapes_seg.*segmentation.*resnet_macro.*image"):
        load_space("resnet_macro", dataset="shapes_seg")
    with pytest.raises(SpaceError, match="'digits' offers image and vector.*'conv1d' needs"):
        load_space("conv1d", dataset="digits")
    with pytest.raises(NasSkipError, match="unknown dataset 'imagenet'"):
        load_space("deep_mlp", dataset="imagenet")


# --- depth and skips in the space's layers ---------------------------------------------
def _hop_bounds(space: Space, params: dict) -> tuple[int, int]:
    """The hops a space's skips may span, from its skeleton (see Structure)."""
    s, family = space.spec.skeleton, space.spec.family
    if family == "chain":
        return 1, s["hop_window"] or params["depth"]
    if family == "stages":
        return 1, s["hop_window"] or max(v for k, v in params.items() if k.startswith("depth:"))
    if family == "dense":
        return 2, max(v for k, v in params.items() if k.startswith("layers:")) + 1
    if family == "unet":
        return 1, params["depth"]
    if family == "transformer":  # residuals 1, cross-block skips, DenseFormer averages
        return 1, max(s["hop_window"], params["depth"])
    return 1, (s["nodes"] - 1 if family == "cell" else 3)


@pytest.mark.parametrize("name", list_spaces())
def test_depth_and_hops_count_the_space_layers(name: str) -> None:
    space = load_space(name)
    structural = space.structural()
    for _, _, params in sample_many(space, optuna.samplers.RandomSampler(seed=3), 12):
        found = space.structure(params)
        stored = Structure.from_attrs(space.attrs(params))
        assert stored is not None and stored.depth == found.depth
        assert stored.hops() == found.hops()
        if structural:  # depth, depth:s1.., layers:b1..: the layers the trial chose
            assert found.depth == sum(params[n] for n in structural)
        else:  # a cell: op nodes on its longest path
            top = space.spec.skeleton.get("nodes", 5) - 2
            assert 0 <= found.depth <= top
        low, high = _hop_bounds(space, params)
        assert all(low <= hop <= high for _, hop in found.skips), (found.skips, low, high)
        assert found.longest_skip == max((h for _, h in found.skips), default=0)


def test_a_deep_mlp_of_depth_15_reads_depth_15_and_hops_within_its_window() -> None:
    space = load_space("deep_mlp")  # hop_window 3
    params: dict = {"depth": 15, "width": 64}
    for j in range(15):
        params[f"op:l{j}"] = "linear_relu"
        for i in range(max(-1, j - 3), j):
            params[f"edge:{'stem' if i < 0 else f'l{i}'}->l{j}"] = "add"
    g = space.sample(optuna.trial.FixedTrial(params))
    found = space.structure(params)
    assert found.depth == 15 and found.longest_skip == 3
    assert found.hops() == {("add", 1): 15, ("add", 2): 14, ("add", 3): 13}
    graph = topology(g)  # the compiled graph counts merge nodes as levels
    assert graph["depth"] > 15 and graph["longest_skip"] > 3
    assert space.attrs(params) == {"depth": 15, "longest_skip": 3,
                                   "skips": {"add": [1] * 15 + [2] * 14 + [3] * 13}}  # fmt: skip


@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"depth": 3},
        {"depth": -1, "skips": {}},
        {"depth": True, "skips": {}},
        {"depth": 3, "skips": []},
        {"depth": 3, "skips": {"add": [1, "2"]}},
        {"depth": 3, "skips": {"add": [10**9]}},
        {"depth": 3, "skips": {"x" * 100: [1]}},
    ],
)
def test_a_stored_structure_is_read_with_bounds(attrs: dict) -> None:
    assert Structure.from_attrs(attrs) is None
