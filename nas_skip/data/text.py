"""Offline sequence tasks: characters of CPython's documentation, and associative recall.

Both are token-id tasks of the ``sequence`` domain, made without any download:

- **pydoc_lm**, a character-level language model on the English prose and code of
  CPython's own pydoc topics (``pydoc_data.topics``, shipped with every Python). The text
  is mapped onto a fixed vocabulary of :data:`PYDOC_VOCAB` symbols, cut by position into
  train / val / test (90% / 5% / 5%), and each part into non-overlapping windows of
  :data:`PYDOC_LENGTH` characters whose target is the same window shifted by one.
- **mqar**, multi-query associative recall (Arora et al. 2023, "Zoology: measuring and
  improving recall in efficient language models"): a prefix of key-value pairs, then
  queries, each answered by the value its key was paired with in the prefix.

Token ids are returned as uint8 (and mqar's targets as int8, to hold
:data:`~nas_skip.data._base.IGNORE_INDEX`), which keeps the .npz cache small; the loaders
widen them to int64.
"""

from __future__ import annotations

import hashlib

import numpy as np

from nas_skip.data._base import IGNORE_INDEX
from nas_skip.data._common import Arrays

# --- pydoc_lm --------------------------------------------------------------------------

#: Bumped whenever the recipe (vocabulary, windows, split) changes, so stale caches rebuild.
PYDOC_VERSION = 1
#: Symbols: 0 any other character, 1 newline, 2..96 the printable ASCII ``chr(32)..chr(126)``.
PYDOC_VOCAB = 97
UNKNOWN_ID = 0
NEWLINE_ID = 1
_FIRST_PRINTABLE = 32  # " " has id 2
_LAST_PRINTABLE = 126  # "~" has id 96
#: Characters per window (input and target alike).
PYDOC_LENGTH = 128
#: Where val and test begin, in percent of the text: train 90%, val 5%, test 5%.
PYDOC_CUTS = (90, 95)
#: What :func:`decode_chars` writes for :data:`UNKNOWN_ID`.
UNKNOWN_CHAR = "\ufffd"


def pydoc_text() -> str:
    """The pydoc topics of the running Python, joined in sorted key order with newlines.

    Returns:
        About 465,000 characters of English prose and Python code; the text differs a
        little between Python versions.
    """
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


def pydoc_length() -> int:
    """The number of characters of :func:`pydoc_text`, counted without joining it."""
    from pydoc_data.topics import topics

    return sum(len(v) for v in topics.values()) + max(len(topics) - 1, 0)


def text_digest(text: str) -> str:
    """A short content hash of ``text``, for cache file names (12 hex digits of SHA-256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def encode_chars(text: str) -> np.ndarray:
    """Map characters to the pydoc_lm vocabulary.

    Args:
        text: any string.

    Returns:
        uint8 ids (len(text),): 1 for "\\n", ``ord(c) - 30`` for printable ASCII
        (``" "`` -> 2 ... ``"~"`` -> 96) and 0 for every other character.
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    ids = np.full(len(codes), UNKNOWN_ID, dtype=np.uint8)
    printable = (codes >= _FIRST_PRINTABLE) & (codes <= _LAST_PRINTABLE)
    ids[printable] = codes[printable] - (_FIRST_PRINTABLE - 2)
    ids[codes == ord("\n")] = NEWLINE_ID
    return ids


def decode_chars(ids: np.ndarray | list[int]) -> str:
    """Map pydoc_lm ids back to text (:data:`UNKNOWN_CHAR` for id 0).

    Args:
        ids: ids in ``[0, PYDOC_VOCAB)``, any integer dtype (a tensor's ``.numpy()`` too).

    Returns:
        The text, one character per id.

    Raises:
        ValueError: an id lies outside the vocabulary.
    """
    arr = np.asarray(ids, dtype=np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= PYDOC_VOCAB):
        raise ValueError(f"ids must lie in [0, {PYDOC_VOCAB}), got {arr.min()}..{arr.max()}")
    table = [UNKNOWN_CHAR, "\n"] + [chr(c) for c in range(_FIRST_PRINTABLE, _LAST_PRINTABLE + 1)]
    return "".join(table[i] for i in arr.tolist())


def pydoc_bounds(n_chars: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """The character ranges ``[start, stop)`` of train, val and test in a text of ``n_chars``.

    Args:
        n_chars: length of the text.

    Returns:
        ``((0, a), (a, b), (b, n_chars))`` with ``a = n_chars * 90 // 100`` and
        ``b = n_chars * 95 // 100``.
    """
    a, b = (n_chars * cut // 100 for cut in PYDOC_CUTS)
    return (0, a), (a, b), (b, n_chars)


def _windows_in(n_chars: int) -> int:
    """Non-overlapping windows in a range of ``n_chars``: each needs one more for its target."""
    return max(n_chars - 1, 0) // PYDOC_LENGTH


def pydoc_lm_sizes(n_chars: int | None = None) -> tuple[int, int, int]:
    """The number of train, val and test windows of pydoc_lm, without building them.

    Args:
        n_chars: length of the text; None for this Python's :func:`pydoc_length`.

    Returns:
        The split sizes :func:`make_pydoc_lm` produces for that text.
    """
    n = pydoc_length() if n_chars is None else n_chars
    train, val, test = (_windows_in(stop - start) for start, stop in pydoc_bounds(n))
    return train, val, test


def make_pydoc_lm(text: str | None = None) -> Arrays:
    """Build pydoc_lm's windows.

    Each split is a range of positions (see :func:`pydoc_bounds`); inside it, window ``i``
    is ``x = ids[s + i*L : s + i*L + L]`` and ``y = ids[s + i*L + 1 : s + i*L + L + 1]``,
    so no target reaches into the next split.

    Args:
        text: the text; None for :func:`pydoc_text`.

    Returns:
        ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test``, uint8 ids
        shaped ``(windows, PYDOC_LENGTH)``.
    """
    ids = encode_chars(pydoc_text() if text is None else text)
    out: Arrays = {}
    for split, (start, stop) in zip(("train", "val", "test"), pydoc_bounds(len(ids)), strict=True):
        part = ids[start:stop]
        n = _windows_in(len(part)) * PYDOC_LENGTH
        out[f"x_{split}"] = part[:n].reshape(-1, PYDOC_LENGTH)
        out[f"y_{split}"] = part[1 : n + 1].reshape(-1, PYDOC_LENGTH)
    return out


# --- mqar ------------------------------------------------------------------------------

#: Bumped whenever the generator's output changes, so stale cache files are not reused.
MQAR_VERSION = 1
MQAR_VOCAB = 64
MQAR_LENGTH = 64
MQAR_PAIRS = 8  # key-value pairs in the prefix, positions 0 .. 2 * MQAR_PAIRS - 1
MQAR_KEYS = (1, 32)  # keys are drawn from [1, 32) without replacement within a sample
MQAR_VALUES = (32, 64)  # values from [32, 64), with replacement
MQAR_SIZES = (8000, 1000, 1000)
MQAR_SEED = 0


def make_mqar(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` multi-query associative recall samples.

    Positions ``0 .. 2P-1`` hold ``k1 v1 ... kP vP`` (P = :data:`MQAR_PAIRS`); every later
    position holds a query, one of the sample's keys drawn uniformly with replacement,
    whose target is the value paired with it. Prefix positions are not scored.

    Args:
        rng: the random stream, advanced by the draw.
        n: number of samples.

    Returns:
        ``(x, y)``: uint8 token ids (n, MQAR_LENGTH) and int8 targets (n, MQAR_LENGTH),
        :data:`~nas_skip.data._base.IGNORE_INDEX` on the prefix.
    """
    lo, hi = MQAR_KEYS
    # the first P of a random permutation of the key range: P distinct keys per sample
    keys = rng.random((n, hi - lo)).argsort(axis=1)[:, :MQAR_PAIRS] + lo
    values = rng.integers(*MQAR_VALUES, size=(n, MQAR_PAIRS))
    prefix = 2 * MQAR_PAIRS
    which = rng.integers(0, MQAR_PAIRS, size=(n, MQAR_LENGTH - prefix))
    rows = np.arange(n)[:, None]
    x = np.empty((n, MQAR_LENGTH), dtype=np.uint8)
    x[:, 0:prefix:2], x[:, 1:prefix:2] = keys, values
    x[:, prefix:] = keys[rows, which]
    y = np.full((n, MQAR_LENGTH), IGNORE_INDEX, dtype=np.int8)
    y[:, prefix:] = values[rows, which]
    return x, y


def generate_mqar() -> Arrays:
    """Generate mqar's train, val and test splits: successive draws from one stream seeded
    with :data:`MQAR_SEED`.

    Returns:
        ``x_train``, ``y_train``, ``x_val``, ``y_val``, ``x_test``, ``y_test`` as made by
        :func:`make_mqar`, of :data:`MQAR_SIZES` samples.
    """
    rng = np.random.default_rng(MQAR_SEED)
    out: Arrays = {}
    for split, n in zip(("train", "val", "test"), MQAR_SIZES, strict=True):
        out[f"x_{split}"], out[f"y_{split}"] = make_mqar(rng, n)
    return out
