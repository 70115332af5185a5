"""Training on sequences: per-token losses, bits per character, scored tokens only."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from helpers import transformer_doc

from nas_skip import Genotype, build
from nas_skip.data import IGNORE_INDEX, load_dataset
from nas_skip.data._base import Dataset
from nas_skip.train import TrainConfig, TrainError, train
from nas_skip.train._metrics import evaluate

torch.set_num_threads(1)

FAST = TrainConfig(epochs=8, optimizer="adamw", lr=0.01, batch_size=32, latency_runs=2)


def counting(n: tuple[int, int, int] = (256, 64, 64), length: int = 12,
             vocab: int = 10, task: str = "language_model") -> Dataset:  # fmt: skip
    """Sequences that count up from a random start modulo ``vocab``: the next token is
    the current one plus one (learnable at once). Token classification scores the second
    half only (the first is IGNORE_INDEX)."""
    gen = torch.Generator().manual_seed(0)
    tensors = []
    for size in n:
        start = torch.randint(0, vocab, (size, 1), generator=gen)
        x = (start + torch.arange(length)) % vocab
        y = (x + 1) % vocab
        if task == "token_classification":
            y[:, : length // 2] = IGNORE_INDEX
        tensors += [x, y]
    return Dataset("counting", "sequence", (length,), vocab, *tensors, task=task)


def test_a_language_model_learns_and_reports_bits_per_character() -> None:
    g = Genotype.from_json(transformer_doc("pre", depth=1))
    result = train(g, counting(), FAST)
    assert result.task == "language_model"
    assert result.val_bpc == pytest.approx(result.val_loss / math.log(2))
    assert result.test_bpc == pytest.approx(result.test_loss / math.log(2))
    bpcs = [m.val_bpc for m in result.history]
    assert all(b is not None for b in bpcs)
    assert bpcs[-1] < bpcs[0] and result.val_bpc < 1.0 < math.log2(10)
    assert result.val_accuracy > 0.9  # next-token accuracy
    assert result.history[-1].value("bpc") == result.val_bpc


def test_token_classification_scores_only_the_labelled_tokens() -> None:
    data = counting(task="token_classification")
    g = Genotype.from_json(transformer_doc("pre", depth=1))
    result = train(g, data, FAST)
    assert result.val_bpc is None and result.history[-1].val_bpc is None
    torch.manual_seed(0)
    model = build(g).eval()
    ev = evaluate(model, data.x_val, data.y_val, 10, 16, contextlib.nullcontext, False, True)
    with torch.no_grad():
        logits = model(data.x_val)
    scored = data.y_val != IGNORE_INDEX
    want_loss = F.cross_entropy(logits[scored], data.y_val[scored]).item()
    want_acc = (logits.argmax(-1)[scored] == data.y_val[scored]).float().mean().item()
    assert ev.loss == pytest.approx(want_loss, rel=1e-5)
    assert ev.accuracy == pytest.approx(want_acc)


def test_a_dataset_that_does_not_fit_is_refused_naming_what() -> None:
    data = counting()
    bad_vocab = Genotype.from_json(transformer_doc("pre", depth=1, vocab=8))
    with pytest.raises(TrainError, match="outputs \\[12, 8\\] but dataset 'counting'"):
        train(bad_vocab, data, FAST)
    x = data.x_train.clone()
    x[0, 0] = 10  # beyond the embedding's vocabulary
    wide = Dataset("counting", "sequence", (12,), 11, x, data.y_train, data.x_val,
                   data.y_val, data.x_test, data.y_test, task="language_model")  # fmt: skip
    doc = transformer_doc("pre", depth=1, vocab=10)
    doc["nodes"][-1]["classes"] = 11
    g = Genotype.from_json(doc)
    with pytest.raises(TrainError, match="x_train must be int64 token ids in \\[0, 10\\)"):
        train(g, wide, FAST)


@pytest.mark.parametrize("name", ["pydoc_lm", "mqar"])
def test_the_offline_sequence_datasets_train(name: str) -> None:
    full = load_dataset(name)
    n = 256
    data = Dataset(name, "sequence", full.input_shape, full.num_classes,
                   full.x_train[:n], full.y_train[:n], full.x_val[:64], full.y_val[:64],
                   full.x_test[:64], full.y_test[:64], task=full.task)  # fmt: skip
    length, vocab = full.input_shape[0], full.num_classes
    g = Genotype.from_json(transformer_doc("pre", depth=1, length=length, vocab=vocab, width=16))
    result = train(g, data, TrainConfig(epochs=2, optimizer="adamw", lr=0.003, batch_size=32,
                                        latency_runs=1))  # fmt: skip
    first = result.history[0]
    assert result.history[-1].val_loss < first.val_loss  # it learns
    if name == "pydoc_lm":
        assert result.val_bpc is not None and result.val_bpc < math.log2(vocab)
    else:
        assert result.val_bpc is None and result.val_accuracy > 1 / 32  # better than chance
