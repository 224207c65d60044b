"""What names an activation entry: its key (everything that changes the values) and the digests in it, and
the test that a sidecar is an activation entry's (``proves_activation``)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from automl_tl.data import checksums
from automl_tl.data.image_store import proves_decoded

FORMAT_VERSION = 3  # bump when the layout of entries or the meaning of a key changes (3: sidecars keep a checksum)
ENTRY_FORMAT = f"automl-tl activations {FORMAT_VERSION}"


@dataclass(frozen=True)
class ActivationKey:
    """Everything that changes the cached values. ``images`` digests every image's content hash
    in table order; ``weights`` digests the backbone's actual tensors, not a file name."""

    framework: str
    backbone: str
    weights: str
    image_size: int
    preprocessing: str
    images: str
    block: str  # "block:K" (after K blocks) or "pooled:K" (pooled features of block K)

    def digest(self, stored_as: str = "float16") -> str:
        """The entry's file name. ``stored_as`` is the dtype the store keeps values in: a float32 store
        never serves what a float16 one rounded (float16 keeps the digests entries had before)."""
        fields = {"format": FORMAT_VERSION, **asdict(self)}
        if stored_as != "float16":
            fields["stored_as"] = stored_as
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:40]


_KEY_FIELDS = frozenset(ActivationKey.__dataclass_fields__)


def proves_activation(name: str, content: dict[str, Any]) -> bool:
    """Whether ``content`` is the sidecar of the activation entry ``name``: it names this format and a
    checksum, and ``name`` is the digest of the key it holds. The sidecars of formats 1 and 2 (no checksum)
    count as ours too when ``name`` is their key's digest, so that ``cache --clear`` and eviction remove them."""
    if content.get("format") == ENTRY_FORMAT:
        try:
            key = ActivationKey(**content["key"])
            return checksums.is_checksum(content.get("checksum")) and key.digest(str(content["stored_as"])) == name
        except (KeyError, TypeError):
            return False
    if set(content) != _KEY_FIELDS | {"shape", "dtype"}:
        return False
    fields = {field: content[field] for field in _KEY_FIELDS}
    for version in (1, 2):
        for stored_as in ({}, {"stored_as": "float32"}):
            text = json.dumps({"format": version, **fields, **stored_as}, sort_keys=True)
            if hashlib.sha256(text.encode()).hexdigest()[:40] == name:
                return True
    return False


def proves_own(name: str, content: dict[str, Any]) -> bool:
    """Whether ``content`` is the sidecar of entry ``name`` of either store (activations, decoded images)."""
    return proves_activation(name, content) or proves_decoded(name, content)


@functools.lru_cache(maxsize=16)
def images_digest(content_hashes: tuple[str, ...], image_size: int, decoder: str) -> str:
    """One digest for a table's images, in order: any changed, added or moved image changes it."""
    h = hashlib.sha256(f"{decoder}|{image_size}|".encode())
    for content in content_hashes:
        h.update(content.encode())
        h.update(b"\n")
    return h.hexdigest()


def arrays_digest(named_arrays: Iterable[tuple[str, np.ndarray]]) -> str:
    """A digest of named arrays (a model's weights): names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name, array in named_arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.data.cast("B"))
    return h.hexdigest()
