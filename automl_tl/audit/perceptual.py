"""Near-duplicates by a perceptual fingerprint of each image, upright or turned a quarter.

The fingerprint is pHash's input kept as numbers: shrink the greyscale image to 32x32, take its 2-D DCT,
and keep the lowest 8x8 frequencies but the constant one, scaled to length 1. It survives resizing,
recompression and changes of brightness and contrast, but not a quarter-turn; so each image also gets
the fingerprints of its turns a quarter left and right (a photo whose orientation tag was lost), and two
images are near-duplicates when the fingerprint of one lies within ``MAX_DISTANCE`` (hundredths of the
Euclidean distance) of any turn of the other's. pHash proper
keeps one bit per frequency, above or below their median; on a symmetric image (a letter, a sign) many
of those frequencies are exactly zero, tied with the median, and a recompression flips their bits at
random: half the hash changed for the same picture (bench/audit_quality.py measured both). A half-turn
is left out: on the stamps it paired n with u, d with p and < with >, and no camera loses it that way.

Pairs are found by brute force over blocks of rows (one matrix product per block), which is exact and
takes about a second for 10,000 images; groups form around leaders (``_groups``). Exact copies (the
same content hash) are folded into one image first, so that a group of nothing but exact copies is left to
``audit.groups.exact_duplicates``. docs/decisions.md ("issue 26: the data audit") says why an own
fingerprint rather than the ``imagehash`` library, and how the threshold was measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from automl_tl.audit.groups import by_seriousness, make_group
from automl_tl.audit.report import DuplicateGroup

HASH_SIDE = 8  # the lowest 8 x 8 frequencies, the constant one left out: 63 numbers
THUMB_SIDE = 32  # the greyscale thumbnail the DCT is taken of
MAX_DISTANCE = 20  # the farthest two near-duplicates' fingerprints are, in hundredths; bench/audit_quality.py
QUARTER_TURNS = (0, 1, 3)  # upright, a quarter-turn left and right: not a half-turn (it pairs n and u, d and p)
TURNS = len(QUARTER_TURNS)
_BLOCK_CELLS = 2_000_000  # pairs compared per block: bounds the memory of the brute-force search


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """A greyscale image of any size as the ``THUMB_SIDE`` square the fingerprint is taken of (uint8)."""
    image = Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), "L")
    return np.asarray(image.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR), dtype=np.uint8)


def _dct_matrix(side: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: ``M @ x`` transforms the columns of ``x``."""
    k = np.arange(side)[:, None]
    n = np.arange(side)[None, :]
    matrix = np.sqrt(2.0 / side) * np.cos(np.pi * (2 * n + 1) * k / (2 * side))
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT32 = _dct_matrix(THUMB_SIDE)[:HASH_SIDE].astype(np.float32)


def fingerprint(thumbnails: np.ndarray) -> np.ndarray:
    """(N, 63) float32: each thumbnail's lowest DCT frequencies but the constant one, scaled to length 1
    (a blank image: all zeros), so that brightness and contrast do not count."""
    values = np.asarray(thumbnails, dtype=np.float32)
    low = _DCT32 @ values @ _DCT32.T  # (N, 8, 8)
    flat = low.reshape(len(values), -1)[:, 1:]
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.where(norms > 1e-3, flat / np.maximum(norms, 1e-3), 0.0).astype(np.float32)


def turned_fingerprints(thumbnails: np.ndarray) -> np.ndarray:
    """(N, TURNS, 63): each thumbnail's fingerprint, then its fingerprints turned 90 and 270 degrees."""
    thumbnails = np.asarray(thumbnails)
    if not len(thumbnails):
        return np.zeros((0, TURNS, HASH_SIDE * HASH_SIDE - 1), dtype=np.float32)
    return np.stack([fingerprint(np.rot90(thumbnails, turn, axes=(1, 2))) for turn in QUARTER_TURNS], axis=1)


def near_pairs(prints: np.ndarray, max_distance: int = MAX_DISTANCE) -> list[tuple[int, int, int]]:
    """(i, j, distance) with i < j for every pair within ``max_distance`` (hundredths of the Euclidean
    distance of the fingerprints, 0 to 200), any turn of j against i upright."""
    count = len(prints)
    turned = [np.ascontiguousarray(prints[:, turn, :]) for turn in range(TURNS)]
    block = max(1, _BLOCK_CELLS // max(1, count))
    limit = 1.0 - (max_distance / 100.0) ** 2 / 2.0  # the least cosine within the distance (unit vectors)
    pairs: list[tuple[int, int, int]] = []
    for start in range(0, count, block):
        rows = turned[0][start:start + block]
        cosines = rows @ turned[0][start:].T  # (block, count - start): column c is image start + c
        for other in turned[1:]:
            np.maximum(cosines, rows @ other[start:].T, out=cosines)
        found_rows, columns = np.nonzero(np.triu(cosines >= limit, k=1))  # each pair once, i < j
        distances = np.rint(100.0 * np.sqrt(np.clip(2.0 - 2.0 * cosines[found_rows, columns], 0.0, 4.0))).astype(int)
        pairs.extend((start + int(r), start + int(c), int(d)) for r, c, d in zip(found_rows, columns, distances))
    return pairs


def _groups(count: int, pairs: Sequence[tuple[int, int, int]]) -> list[tuple[list[int], int]]:
    """Groups of two or more images around a leader: in order, an image not yet grouped leads, and takes
    every image not yet grouped within the distance of it. Unlike linking pairs transitively, this never
    chains a run of small changes into one giant group; each member is within the distance of its leader.
    Returns each group with the largest distance of a member from its leader."""
    near: dict[int, list[tuple[int, int]]] = {}
    for i, j, distance in pairs:
        near.setdefault(i, []).append((j, distance))
        near.setdefault(j, []).append((i, distance))
    taken: set[int] = set()
    groups = []
    for leader in range(count):
        if leader in taken or leader not in near:
            continue
        members = [(j, d) for j, d in sorted(near[leader]) if j not in taken]
        if not members:
            continue
        taken.update([leader, *(j for j, _ in members)])
        groups.append(([leader, *(j for j, _ in members)], max(d for _, d in members)))
    return groups


def near_duplicates(prints: np.ndarray, content: Sequence[str], files: Sequence[str], classes: Sequence[str],
                    splits: Sequence[str], max_distance: int = MAX_DISTANCE) -> list[DuplicateGroup]:
    """Groups of images whose fingerprints are within ``max_distance`` (``prints``: ``turned_fingerprints``
    of the images, parallel to their ``content`` hashes, ``files``, ``classes`` and ``splits``). Exact copies
    count as one image: a group needs two different contents, and lists every copy of each."""
    first_of: dict[str, int] = {}
    copies: dict[int, list[int]] = {}
    for index, digest in enumerate(content):
        key = first_of.setdefault(digest or f"unique:{index}", index)
        copies.setdefault(key, []).append(index)
    unique = sorted(copies)
    found = _groups(len(unique), near_pairs(prints[unique], max_distance))
    groups = [make_group([i for u in members for i in copies[unique[u]]], files, classes, splits, distance)
              for members, distance in found]
    return by_seriousness(groups)
