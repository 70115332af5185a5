"""Procedural shape images: a classification task and a matching segmentation task.

Everything is drawn with numpy, vectorised over the batch: every shape is a signed
distance field in pixels, turned into an anti-aliased coverage ``alpha = clip(0.5 - d)``
and composited over a smooth coloured background with clutter (small blobs and thin line
segments) underneath and Gaussian pixel noise on top. Random position, scale, rotation
and colour make a linear model on pixels fail (about chance) while a CNN learns the
task; clutter, noise and overlap keep a small CNN far from 100% after a few epochs.
"""

from __future__ import annotations

import numpy as np

#: Shape kinds of the classification task, in label order.
SHAPE_CLASSES = (
    "disk",
    "ring",
    "square",
    "hollow_square",
    "triangle",
    "cross",
    "bar",
    "ellipse",
)
#: Shape kinds of the segmentation task; label ``i + 1`` in the masks, 0 is background.
SEG_CLASSES = ("disk", "ring", "square", "triangle", "cross")

#: Bumped whenever the generator's output changes, so stale cache files are not reused.
SHAPES_VERSION = 1
SIZE = 32  # images are (3, SIZE, SIZE)
NOISE_STD = 0.05  # per-pixel Gaussian noise, in [0, 1] intensity units
MIN_CONTRAST = 0.35  # least RGB distance between a shape's colour and the background mean
CLUTTER_MAX = 4  # distractors per image: 1..CLUTTER_MAX
SHAPE_SCALE = (6.0, 12.0)  # circumradius in pixels, classification (one shape per image)
SEG_SCALE = (4.0, 9.0)  # smaller for segmentation, where up to three shapes share an image

_SQRT3 = np.sqrt(3.0)
# The pixel grid, pixel centres at integer + 0.5, shaped to broadcast against (N, 1, 1).
# float32 throughout: it halves memory traffic, which is what the generation time is.
_YY, _XX = np.meshgrid(
    np.arange(SIZE, dtype=np.float32) + 0.5, np.arange(SIZE, dtype=np.float32) + 0.5, indexing="ij"
)


def _box(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance (in shape units) to the box |u| <= a, |v| <= b."""
    return np.maximum(np.abs(u) - a, np.abs(v) - b)


def _sdf(kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance in shape units (circumradius 1) for one kind; negative inside."""
    if kind == "disk":
        return np.hypot(u, v) - 1.0
    if kind == "ring":
        return np.abs(np.hypot(u, v) - 0.72) - 0.28
    if kind == "square":
        return _box(u, v, 0.8, 0.8)
    if kind == "hollow_square":
        return np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.66) - 0.22
    if kind == "triangle":
        # equilateral, circumradius 1: the three edges lie at distance 0.5 from the centre
        d1 = v
        d2 = -0.5 * v + 0.5 * _SQRT3 * u
        d3 = -0.5 * v - 0.5 * _SQRT3 * u
        return np.maximum(np.maximum(d1, d2), d3) - 0.5
    if kind == "cross":
        return np.minimum(_box(u, v, 1.0, 0.26), _box(u, v, 0.26, 1.0))
    if kind == "bar":
        return _box(u, v, 1.0, 0.3)
    if kind == "ellipse":
        # not an exact distance; scaling by the minor axis keeps edges about a pixel wide
        return (np.hypot(u, v / 0.5) - 1.0) * 0.5
    raise ValueError(f"unknown shape kind {kind!r}")  # internal: callers pass known kinds


def _uniform(
    rng: np.random.Generator, lo: float, hi: float, shape: int | tuple[int, ...]
) -> np.ndarray:
    """Uniform float32 samples in [lo, hi)."""
    return (lo + (hi - lo) * rng.random(shape, dtype=np.float32)).astype(np.float32, copy=False)


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth colour fields (N, 3, H, W): a random 4x4 colour grid per image, upsampled."""
    grid = _uniform(rng, 0.0, 1.0, (n, 3, 4, 4))
    # (SIZE, 4) bilinear interpolation weights from the 4 grid points to the pixel centres
    pos = np.clip((np.arange(SIZE) + 0.5) / SIZE * 4 - 0.5, 0.0, 3.0)
    lo = np.minimum(np.floor(pos).astype(int), 2)
    frac = pos - lo
    w = np.zeros((SIZE, 4), dtype=np.float32)
    w[np.arange(SIZE), lo] = 1.0 - frac
    w[np.arange(SIZE), lo + 1] = frac
    field = w @ grid @ w.T  # batched matmul; far faster than the equivalent einsum
    # shrink toward a per-image mean so backgrounds vary but do not swamp the shapes
    mean = field.mean(axis=(2, 3), keepdims=True)
    return mean + np.float32(0.6) * (field - mean)


def _contrasting_colours(rng: np.random.Generator, ref: np.ndarray) -> np.ndarray:
    """Random RGB colours (N, 3) at least MIN_CONTRAST away from ``ref`` (N, 3)."""
    colours = _uniform(rng, 0.0, 1.0, ref.shape)
    for _ in range(20):  # rejection sampling; a handful of rounds leaves no bad colour
        bad = np.linalg.norm(colours - ref, axis=1) < MIN_CONTRAST
        if not bad.any():
            break
        colours[bad] = _uniform(rng, 0.0, 1.0, (int(bad.sum()), 3))
    bad = np.linalg.norm(colours - ref, axis=1) < MIN_CONTRAST
    colours[bad] = 1.0 - ref[bad]  # the complement is always far enough from a mid colour
    return colours


def _composite(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Paint ``colour`` (N, 3) with coverage ``alpha`` (N, H, W) over ``img`` in place."""
    a = alpha[:, None]
    img += a * (colour[:, :, None, None] - img)


def _add_clutter(rng: np.random.Generator, img: np.ndarray, max_items: int) -> None:
    """Draw 1..max_items distractors per image: small blobs and thin line segments."""
    n = img.shape[0]
    count = rng.integers(1, max_items + 1, size=n)
    bg_mean = img.mean(axis=(2, 3))
    for slot in range(max_items):
        cx = _uniform(rng, 0.0, SIZE, n)[:, None, None]
        cy = _uniform(rng, 0.0, SIZE, n)[:, None, None]
        radius = _uniform(rng, 1.0, 2.5, n)[:, None, None]  # blob: a disk of 1-2.5 px
        theta = _uniform(rng, 0.0, np.pi, n)[:, None, None]  # segment: any direction,
        half = _uniform(rng, 3.0, 7.0, n)[:, None, None]  # half-length 3-7 px, 1 px wide
        is_blob = rng.random(n) < 0.5
        colour = _contrasting_colours(rng, bg_mean)
        # only the images that have this slot, each drawing only its own kind of item
        for blob in (True, False):
            idx = np.flatnonzero((count > slot) & (is_blob == blob))
            dx, dy = _XX - cx[idx], _YY - cy[idx]
            if blob:
                d = np.hypot(dx, dy) - radius[idx]
            else:
                cos, sin = np.cos(theta[idx]), np.sin(theta[idx])
                along, across = dx * cos + dy * sin, dy * cos - dx * sin
                d = np.maximum(np.abs(along) - half[idx], np.abs(across) - 0.5)
            sub = img[idx]  # fancy indexing copies: paint the copy, then write it back
            _composite(sub, np.clip(0.5 - d, 0.0, 1.0), colour[idx])
            img[idx] = sub


def _draw_shapes(
    rng: np.random.Generator,
    img: np.ndarray,
    kinds: np.ndarray,
    names: tuple[str, ...],
    scale: tuple[float, float],
) -> np.ndarray:
    """Draw one shape per image, ``names[kinds[i]]`` on image i; returns coverage (N, H, W).

    Args:
        rng: the random stream.
        img: images (N, 3, H, W), painted in place.
        kinds: shape index per image (N,), or -1 to draw nothing on that image.
        names: the shape kinds the indices refer to.
        scale: range of the circumradius in pixels.

    Returns:
        The coverage alpha in [0, 1] of the drawn shape per pixel.
    """
    n = img.shape[0]
    s = _uniform(rng, scale[0], scale[1], n)
    # keep the centre far enough inside that at most a sliver of the shape is cut off
    margin = 0.75 * s
    cx = margin + (SIZE - 2 * margin) * _uniform(rng, 0.0, 1.0, n)
    cy = margin + (SIZE - 2 * margin) * _uniform(rng, 0.0, 1.0, n)
    theta = _uniform(rng, 0.0, 2.0 * np.pi, n)
    colour = _contrasting_colours(rng, img.mean(axis=(2, 3)))
    alpha = np.zeros((n, SIZE, SIZE), dtype=np.float32)
    for k, name in enumerate(names):
        idx = np.flatnonzero(kinds == k)
        if idx.size == 0:
            continue
        dx = _XX - cx[idx, None, None]
        dy = _YY - cy[idx, None, None]
        cos, sin = np.cos(theta[idx])[:, None, None], np.sin(theta[idx])[:, None, None]
        inv = 1.0 / s[idx, None, None]
        u = (dx * cos + dy * sin) * inv
        v = (-dx * sin + dy * cos) * inv
        # shape units -> pixels, so the anti-aliased edge is one pixel wide at every scale
        alpha[idx] = np.clip(0.5 - _sdf(name, u, v) * s[idx, None, None], 0.0, 1.0)
    _composite(img, alpha, colour)
    return alpha


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Add pixel noise and clip to [0, 1], in place."""
    img += np.float32(NOISE_STD) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0.0, 1.0, out=img)


def _balanced_labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` labels in 0..k-1, each class within one of n / k, shuffled."""
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def make_shapes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate the shape classification task: one shape per cluttered image.

    Args:
        n: number of images; labels are balanced (each class gets n // 8 or one more).
        seed: seed of the random stream; the same (n, seed) gives the same arrays.

    Returns:
        ``(x, y)``: images float32 (n, 3, 32, 32) in [0, 1] and labels int64 (n,)
        indexing :data:`SHAPE_CLASSES`.
    """
    rng = np.random.default_rng(seed)
    y = _balanced_labels(rng, n, len(SHAPE_CLASSES))
    img = _background(rng, n)
    _add_clutter(rng, img, CLUTTER_MAX)
    _draw_shapes(rng, img, y, SHAPE_CLASSES, SHAPE_SCALE)
    return _finish(rng, img), y


def make_shapes_seg(n: int, seed: int, max_shapes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Generate the shape segmentation task: 1..max_shapes shapes per image, with masks.

    Shapes may overlap; a later shape is drawn on top and owns the pixels it covers in
    the mask. Clutter is drawn underneath the shapes and counts as background.

    Args:
        n: number of images.
        seed: seed of the random stream; the same arguments give the same arrays.
        max_shapes: most shapes in one image.

    Returns:
        ``(x, masks)``: images float32 (n, 3, 32, 32) in [0, 1] and masks int64
        (n, 32, 32) with 0 for background and ``i + 1`` for :data:`SEG_CLASSES` ``[i]``.
    """
    rng = np.random.default_rng(seed)
    img = _background(rng, n)
    _add_clutter(rng, img, CLUTTER_MAX)
    count = rng.integers(1, max_shapes + 1, size=n)
    mask = np.zeros((n, SIZE, SIZE), dtype=np.int64)
    for slot in range(max_shapes):
        kinds = _balanced_labels(rng, n, len(SEG_CLASSES))
        kinds[count <= slot] = -1
        alpha = _draw_shapes(rng, img, kinds, SEG_CLASSES, SEG_SCALE)
        mask = np.where(alpha >= 0.5, kinds[:, None, None] + 1, mask)
    return _finish(rng, img), mask
