"""Which frozen-prefix activations the activation cache holds, asked of the framework adapters: the cost model's
``CacheState`` for one data table (a prefix pass already stored costs a trial nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automl_tl.capabilities import ShowsStoredPrefixes
from automl_tl.training.augment import view_table
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable


class AdapterCacheState:
    """``CacheState`` from each adapter's optional ``prefix_activations(spec, data)``: a ``PrefixActivations`` over
    the shared cache, asked ``stored_block(k)`` and ``pooled_stored(k)``. Only looks: nothing is computed or
    opened. A backbone whose adapter cannot say (or fails to) counts as having nothing stored."""

    def __init__(self, adapter_of: Callable[[str], FrameworkAdapter], table: ImageTable) -> None:
        self.adapter_of, self.table = adapter_of, table
        self._tables: dict[int, ImageTable] = {}
        self._prefixes: dict[tuple[str, int], Any] = {}

    def _prefix(self, spec: BackboneSpec, view: int) -> Any:
        key = (spec.name, view)
        if key not in self._prefixes:
            if view not in self._tables:  # the original, the mirror or an augmented view (view_ids' numbers)
                self._tables[view] = view_table(self.table, view)
            adapter = self.adapter_of(spec.framework)
            self._prefixes[key] = None
            try:
                if isinstance(adapter, ShowsStoredPrefixes):
                    self._prefixes[key] = adapter.prefix_activations(spec, self._tables[view])
            except Exception:  # an estimate: a backbone that cannot be asked is priced as uncached
                self._prefixes[key] = None
        return self._prefixes[key]

    def stored_block(self, spec: BackboneSpec, view: int, k: int) -> int:
        """The deepest block ``j <= k`` of ``spec`` whose activations over ``view`` are stored (0 when none)."""
        prefix = self._prefix(spec, view)
        try:
            return int(prefix.stored_block(k)) if prefix is not None else 0
        except Exception:
            return 0

    def pooled_stored(self, spec: BackboneSpec, view: int, k: int) -> bool:
        """Whether the pooled features after block ``k`` of ``spec`` over ``view`` are stored."""
        prefix = self._prefix(spec, view)
        try:
            return bool(prefix.pooled_stored(k)) if prefix is not None else False
        except Exception:
            return False
