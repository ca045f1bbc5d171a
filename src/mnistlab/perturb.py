"""Changes that keep a digit the same digit, and images that are not digits.

Both sides of what the judge must tell apart, as batched torch functions on images
x (B, 1, 28, 28) float32 in [0, 1], each drawing its randomness from an explicit
``torch.Generator``:

- **copy changes** (``COPY_CHANGES``): a training digit moved a few pixels, turned a little, drawn
  thicker or thinner, blurred, low-passed, bent, scaled in intensity, given a little noise. The
  judge is trained to map every such view of a digit next to the digit itself (its copy
  descriptor), and ``mnistlab judge check`` measures that it does.
- **non-digits** (``NON_DIGITS``): noise of several kinds, blank and near-blank pages, ink blobs,
  two digits on top of each other, fragments, scribbles, textures, mosaics of small digits. The
  judge is trained to be unsure on them (Outlier Exposure, Hendrycks et al. 2019).

``random_view`` composes copy changes at random strengths (the contrastive views of training);
``outliers`` draws a mixed batch of non-digits. ``apply`` runs one named change on numpy images
with a seed, for the check sets and for notebooks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from mnistlab.errors import DataError

Images = torch.Tensor  # (B, 1, 28, 28) float32 in [0, 1]
SIZE = 28


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    """n uniform draws in [lo, hi): (n,)."""
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _per_image(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


# ---- copy changes: each takes a strength in [0, 1] (1 = the strongest it is trained on) ------


def affine(x: Images, gen: torch.Generator, strength: float = 1.0) -> Images:
    """Random turn (up to 15 deg), shift (up to 1.5 px), scale (0.9-1.1) and shear, bilinear."""
    b = len(x)
    ang = _u(gen, b, -1, 1) * math.radians(15) * strength
    scale = 1 + _u(gen, b, -1, 1) * 0.1 * strength
    shear = _u(gen, b, -1, 1) * 0.15 * strength
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * 1.5 * strength * 2 / SIZE  # grid units
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin + shear, shift[:, 0]], 1),
            torch.stack([sin, cos, shift[:, 1]], 1),
        ],
        1,
    )  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shift(x: Images, pixels: int = 1, direction: tuple[int, int] = (0, 1)) -> Images:
    """Move every image by whole pixels (dy, dx) * pixels, zeros coming in."""
    dy, dx = direction[0] * pixels, direction[1] * pixels
    out = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy > 0:
        out[:, :, :dy] = 0
    elif dy < 0:
        out[:, :, dy:] = 0
    if dx > 0:
        out[:, :, :, :dx] = 0
    elif dx < 0:
        out[:, :, :, dx:] = 0
    return out


def rotate(x: Images, degrees: float) -> Images:
    """Turn every image by ``degrees`` about its centre (bilinear)."""
    return warp(x, turn=degrees)


def warp(
    x: Images,
    turn: float = 0.0,
    width: float = 1.0,
    height: float = 1.0,
    shear: float = 0.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> Images:
    """One fixed affine warp of every image about its centre, bilinear: drawn at width and
    height times its size, then turned (degrees); sheared; moved (px; the sampling grid moves
    by dx, dy, the digit the other way)."""
    a = math.radians(turn)
    theta = torch.tensor(  # output -> input coordinates: the turn's inverse, then the size's
        [
            [math.cos(a) / width, -math.sin(a) / width + shear, dx * 2 / SIZE],
            [math.sin(a) / height, math.cos(a) / height, dy * 2 / SIZE],
        ]
    )
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def dilate(x: Images, amount: float | torch.Tensor = 1.0) -> Images:
    """Thicker strokes: a blend of x and its 3x3 grey dilation (amount 1 = one pixel each side)."""
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    a = _per_image(amount) if torch.is_tensor(amount) else amount
    return x + a * (thick - x)


def erode(x: Images, amount: float | torch.Tensor = 1.0) -> Images:
    """Thinner strokes: a blend of x and its 2x2 grey erosion (thin MNIST strokes survive it)."""
    thin = -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=0.0), 2, stride=1)
    a = _per_image(amount) if torch.is_tensor(amount) else amount
    return x + a * (thin - x)


def blur(x: Images, sigma: float | torch.Tensor) -> Images:
    """Gaussian blur, one sigma (pixels) per image or for all: a grouped 7x7 convolution."""
    b = len(x)
    s = sigma.float() if torch.is_tensor(sigma) else torch.full((b,), float(sigma))
    s = s.clamp(min=1e-3)
    r = torch.arange(-3, 4, dtype=torch.float32)
    k1 = torch.exp(-(r[None] ** 2) / (2 * s[:, None] ** 2))  # (B, 7)
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = k1[:, :, None] * k1[:, None, :]  # (B, 7, 7)
    out = F.conv2d(x.view(1, b, SIZE, SIZE), k2[:, None], padding=3, groups=b)
    return out.view(b, 1, SIZE, SIZE)


def low_pass(x: Images, factor: int = 2) -> Images:
    """Average down by ``factor`` and bilinear back up: the detail a PCA or a decoder loses."""
    small = F.avg_pool2d(x, factor)
    return F.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)


def elastic(x: Images, gen: torch.Generator, amplitude: float = 1.5) -> Images:
    """A smooth random bend: a 4x4 displacement field (up to ``amplitude`` px), upsampled."""
    b = len(x)
    field = (torch.rand(b, 2, 4, 4, generator=gen) * 2 - 1) * amplitude * 2 / SIZE
    field = F.interpolate(field, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    eye = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(b, 2, 3)
    grid = F.affine_grid(eye, list(x.shape), align_corners=False) + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def contrast(x: Images, factor: float | torch.Tensor) -> Images:
    """Intensity times ``factor`` (per image or for all), clipped to [0, 1]."""
    f = _per_image(factor) if torch.is_tensor(factor) else factor
    return (x * f).clamp(0.0, 1.0)


def gamma(x: Images, g: torch.Tensor) -> Images:
    """x ** g per image: g < 1 brightens the soft edges of strokes, g > 1 darkens them."""
    return x.clamp(min=0.0).pow(_per_image(g))


def noise(x: Images, gen: torch.Generator, sigma: float | torch.Tensor) -> Images:
    """Additive Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    s = _per_image(sigma) if torch.is_tensor(sigma) else sigma
    return (x + s * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


def random_view(x: Images, gen: torch.Generator) -> Images:
    """A changed view of each digit (the contrastive views of training): always a small turn,
    scale, shear and sub-pixel shift, then one change of stroke or appearance for most digits and
    a second one for some, each at a random strength up to a little past ``judge check``'s.
    """
    b = len(x)

    def pick(p: float) -> torch.Tensor:
        return _per_image((torch.rand(b, generator=gen) < p).float())

    x = affine(x, gen, 1.0)
    changes = [
        lambda v: elastic(v, gen, 2.0),
        lambda v: dilate(v, _u(gen, b, 0.4, 1.0)),
        lambda v: erode(v, _u(gen, b, 0.4, 1.0)),
        lambda v: blur(v, _u(gen, b, 0.4, 1.4)),
        lambda v: low_pass(v, 2),
        lambda v: noise(v, gen, _u(gen, b, 0.03, 0.2)),
        lambda v: contrast(v, _u(gen, b, 0.4, 1.0)),
        lambda v: gamma(v, torch.exp(_u(gen, b, -0.7, 0.7))),
    ]
    for p in (0.85, 0.35):
        which = torch.randint(0, len(changes), (b,), generator=gen)
        chosen = pick(p)
        for k, change in enumerate(changes):
            m = chosen * _per_image((which == k).float())
            if float(m.sum()) > 0:
                x = x + m * (change(x) - x)
    return x.clamp(0.0, 1.0)


# ---- non-digits: each returns n images from a generator (and, for some, real digits) -------


def uniform_noise(n: int, gen: torch.Generator) -> Images:
    return torch.rand(n, 1, SIZE, SIZE, generator=gen)


def gaussian_noise(n: int, gen: torch.Generator) -> Images:
    mean, sd = _per_image(_u(gen, n, 0.0, 0.6)), _per_image(_u(gen, n, 0.1, 0.5))
    return (mean + sd * torch.randn(n, 1, SIZE, SIZE, generator=gen)).clamp(0.0, 1.0)


def sparse_noise(n: int, gen: torch.Generator) -> Images:
    """Salt noise: each pixel lit with a probability of 1% to 40%."""
    p = _per_image(torch.exp(_u(gen, n, math.log(0.01), math.log(0.4))))
    return (torch.rand(n, 1, SIZE, SIZE, generator=gen) < p).float()


def smooth_noise(n: int, gen: torch.Generator) -> Images:
    """Noise low-passed at a random scale: clouds rather than snow."""
    out = torch.empty(n, 1, SIZE, SIZE)
    for i, cells in enumerate(torch.randint(3, 15, (n,), generator=gen).tolist()):
        grid = torch.rand(1, 1, cells, cells, generator=gen)
        out[i] = F.interpolate(grid, size=(SIZE, SIZE), mode="bicubic", align_corners=False)[0]
    return out.clamp(0.0, 1.0)


def blank(n: int, gen: torch.Generator) -> Images:
    """Flat pages: black, white or any grey."""
    levels = _u(gen, n, 0.0, 1.0)
    levels[: n // 2] = 0.0  # half of them the empty black page itself
    return _per_image(levels).expand(n, 1, SIZE, SIZE).clone()


def near_blank(n: int, gen: torch.Generator) -> Images:
    """An empty page with a few specks, or a faint smudge."""
    x = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        k = int(torch.randint(1, 8, (1,), generator=gen))
        idx = torch.randint(0, SIZE * SIZE, (k,), generator=gen)
        x[i].view(-1)[idx] = _u(gen, k, 0.3, 1.0)
    return blur(x, _u(gen, n, 0.3, 1.0)).clamp(0, 1) * _per_image(_u(gen, n, 0.3, 3.0))


def blobs(n: int, gen: torch.Generator) -> Images:
    """Ink blobs: thresholded smooth noise, filled ellipses and rectangles."""
    x = smooth_noise(n, gen)
    thr = _per_image(_u(gen, n, 0.3, 0.7))
    x = ((x - thr) * 8).clamp(0.0, 1.0)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    for i in range(0, n, 3):  # every third one a filled shape
        cy, cx = _u(gen, 2, 7, 21).tolist()
        ry, rx = _u(gen, 2, 4, 12).tolist()
        if i % 2:
            shape = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        else:
            shape = ((yy - cy).abs() <= ry) & ((xx - cx).abs() <= rx)
        x[i, 0] = shape.float()
    return blur(x, _u(gen, n, 0.3, 1.0)).clamp(0.0, 1.0)


def scribbles(n: int, gen: torch.Generator) -> Images:
    """Tangles of 4 to 10 random strokes."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    out = torch.zeros(n, 1, SIZE, SIZE)
    for i in range(n):
        for _ in range(int(torch.randint(4, 11, (1,), generator=gen))):
            p, q = _u(gen, 2, 3, 25), _u(gen, 2, 3, 25)
            d = q - p
            t = ((yy - p[0]) * d[0] + (xx - p[1]) * d[1]) / d.square().sum().clamp(min=1e-6)
            t = t.clamp(0, 1)
            dist = ((yy - p[0] - t * d[0]) ** 2 + (xx - p[1] - t * d[1]) ** 2).sqrt()
            out[i, 0] = torch.maximum(out[i, 0], (1.5 - dist).clamp(0, 1))
    return out


def textures(n: int, gen: torch.Generator) -> Images:
    """Stripes, checkerboards and gradients at random periods and angles."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    out = torch.empty(n, 1, SIZE, SIZE)
    for i in range(n):
        a = float(_u(gen, 1, 0, math.pi))
        period = float(_u(gen, 1, 3, 14))
        u = (xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period
        v = (-xx * math.sin(a) + yy * math.cos(a)) * 2 * math.pi / period
        kind = i % 3
        if kind == 0:
            img = (torch.sin(u) > 0).float()
        elif kind == 1:
            img = ((torch.sin(u) > 0) ^ (torch.sin(v) > 0)).float()
        else:
            img = (u - u.min()) / (u.max() - u.min())
        out[i, 0] = img
    return out


def _pairs(digits: Images, labels: torch.Tensor, n: int, gen: torch.Generator):
    i = torch.randint(0, len(digits), (n,), generator=gen)
    j = torch.randint(0, len(digits), (n,), generator=gen)
    j = torch.where(labels[i] == labels[j], (j + 1) % len(digits), j)
    return digits[i], digits[j]


def overlays(n: int, gen: torch.Generator, digits: Images, labels: torch.Tensor) -> Images:
    """Two digits of different classes on top of each other (pixel-wise maximum)."""
    a, b = _pairs(digits, labels, n, gen)
    return torch.maximum(a, affine(b, gen, 0.5))


def fragments(n: int, gen: torch.Generator, digits: Images, labels: torch.Tensor) -> Images:
    """A digit cut down to a random window of a quarter to a third of its area."""
    del labels
    x = digits[torch.randint(0, len(digits), (n,), generator=gen)].clone()
    mask = torch.zeros_like(x)
    for i in range(n):
        h, w = torch.randint(8, 15, (2,), generator=gen).tolist()
        y0 = int(torch.randint(2, SIZE - h - 1, (1,), generator=gen))
        x0 = int(torch.randint(2, SIZE - w - 1, (1,), generator=gen))
        mask[i, 0, y0 : y0 + h, x0 : x0 + w] = 1
    return x * mask


def mosaics(n: int, gen: torch.Generator, digits: Images, labels: torch.Tensor) -> Images:
    """Four digits at half size, one in each quarter."""
    del labels
    small = F.avg_pool2d(digits[torch.randint(0, len(digits), (4 * n,), generator=gen)], 2)
    small = small.view(n, 4, 1, 14, 14)
    top = torch.cat([small[:, 0], small[:, 1]], 3)
    bottom = torch.cat([small[:, 2], small[:, 3]], 3)
    return torch.cat([top, bottom], 2)


def negatives(n: int, gen: torch.Generator, digits: Images, labels: torch.Tensor) -> Images:
    """Digits in negative: dark strokes on a white page."""
    del labels
    return 1.0 - digits[torch.randint(0, len(digits), (n,), generator=gen)]


NON_DIGITS: dict[str, Callable[..., Images]] = {
    "uniform noise": uniform_noise,
    "gaussian noise": gaussian_noise,
    "sparse noise": sparse_noise,
    "smooth noise": smooth_noise,
    "blank": blank,
    "near-blank": near_blank,
    "blobs": blobs,
    "scribbles": scribbles,
    "textures": textures,
    "two digits overlaid": overlays,
    "fragments": fragments,
    "mosaics": mosaics,
    "negatives": negatives,
}
# The kinds made from real digits take (n, gen, digits, labels).
FROM_DIGITS = frozenset({"two digits overlaid", "fragments", "mosaics", "negatives"})


def outliers(n: int, gen: torch.Generator, digits: Images, labels: torch.Tensor) -> Images:
    """A batch of n non-digits, every kind in ``NON_DIGITS`` about equally often, shuffled."""
    kinds = list(NON_DIGITS)
    counts = [n // len(kinds) + (i < n % len(kinds)) for i in range(len(kinds))]
    parts = []
    for kind, k in zip(kinds, counts, strict=True):
        if k == 0:
            continue
        fn = NON_DIGITS[kind]
        parts.append(fn(k, gen, digits, labels) if kind in FROM_DIGITS else fn(k, gen))
    out = torch.cat(parts)
    return out[torch.randperm(len(out), generator=gen)].clamp(0.0, 1.0)


def non_digits(
    kind: str, n: int, seed: int, digits: np.ndarray | None = None, labels: np.ndarray | None = None
) -> np.ndarray:
    """n images of one kind of non-digit as float32 (n, 28, 28), seeded.

    digits, labels : real digits (N, 28, 28) and their labels (N,), for the kinds made from them.
    """
    if kind not in NON_DIGITS:
        raise DataError(f"unknown kind of non-digit {kind!r}; known: {', '.join(NON_DIGITS)}")
    gen = torch.Generator().manual_seed(seed)
    fn = NON_DIGITS[kind]
    if kind in FROM_DIGITS:
        if digits is None or labels is None:
            raise DataError(f"{kind}: needs real digits and their labels")
        d = torch.from_numpy(_as_float(digits))
        out = fn(n, gen, d, torch.from_numpy(np.asarray(labels, dtype=np.int64)))
    else:
        out = fn(n, gen)
    return out.clamp(0.0, 1.0).numpy()[:, 0]


def _as_float(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), 1, SIZE, SIZE)
