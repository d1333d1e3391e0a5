"""KLL quantile sketch with Deequ's layout and parameters (sketch size k=2048, shrinking factor c=0.64).

`data[h]` holds the items of the compactor at height h; an item at height h stands for 2**h input items, so the
weights always sum to the number of items seen. Compactor h may hold `2 * (ceil(k * c**h / 2) + 1)` items before it
becomes eligible for compaction, and the sketch condenses (compacts the lowest eligible compactor) whenever it holds
more items than the sum of those capacities — Deequ's `QuantileNonSample`.

Unlike Deequ, which inserts one item at a time, `update` takes a whole array: it sorts the batch (in cache-sized
blocks) and compacts sorted runs by strided slicing (a compaction keeps every other item from a random offset), so a 1,000,000-row
column costs about one `np.sort`. Every compaction of a height-h run moves any rank estimate by at most 2**h;
`rank_error_bound` is the sum of those, a deterministic worst-case bound for sketches built here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_SKETCH_SIZE = 2048
DEFAULT_SHRINKING_FACTOR = 0.64
# Large batches are sorted in blocks of this many items: cache-sized sorts are about twice as fast as one big sort.
SORT_BLOCK = 1 << 17

FloatArray = NDArray[np.float64]


class SketchFormatError(ValueError):
    """A serialised sketch that does not have Deequ's `{"parameters": {"c", "k"}, "data": [[...], ...]}` layout."""


def _merge_sorted(a: FloatArray, b: FloatArray) -> FloatArray:
    """Merge two sorted arrays in linear time (insert the shorter into the longer)."""
    if a.size == 0:
        return b
    if b.size == 0:
        return a
    if a.size < b.size:
        a, b = b, a
    return np.insert(a, np.searchsorted(a, b, side="right"), b)


class KLLSketch:
    """Mergeable quantile sketch over float64 values; NaN values are ignored."""

    def __init__(
        self,
        sketch_size: int = DEFAULT_SKETCH_SIZE,
        shrinking_factor: float = DEFAULT_SHRINKING_FACTOR,
        *,
        seed: int = 0,
    ) -> None:
        if sketch_size < 2:
            raise ValueError(f"sketch_size must be at least 2, got {sketch_size}")
        if not 0.0 < shrinking_factor <= 1.0:
            raise ValueError(f"shrinking_factor must be in (0, 1], got {shrinking_factor}")
        self.sketch_size = int(sketch_size)
        self.shrinking_factor = float(shrinking_factor)
        self._rng = np.random.default_rng(seed)
        self._levels: list[FloatArray] = []
        self._compactions: list[int] = []
        self._offsets: list[int] = []
        self._size = 0
        self._total_capacity = 0
        self._error_bound = 0
        self._cache: tuple[FloatArray, NDArray[np.int64]] | None = None
        self._expand()

    # -- structure -------------------------------------------------------------------------------------------
    def capacity(self, height: int) -> int:
        """Items compactor `height` may hold before it is eligible for compaction (Deequ's formula)."""
        return 2 * (math.ceil(self.sketch_size * self.shrinking_factor**height / 2) + 1)

    def _expand(self) -> None:
        self._levels.append(np.empty(0, dtype=np.float64))
        self._compactions.append(0)
        self._offsets.append(0)
        self._total_capacity += self.capacity(len(self._levels) - 1)

    @property
    def data(self) -> list[FloatArray]:
        """Items per compactor height (each sorted); an item at height h weighs 2**h."""
        return [level.copy() for level in self._levels]

    @property
    def n(self) -> int:
        """Number of items summarised: the sum of all weights."""
        return sum(len(level) << h for h, level in enumerate(self._levels))

    @property
    def num_retained(self) -> int:
        return self._size

    @property
    def rank_error_bound(self) -> int:
        """Worst-case absolute rank error introduced by the compactions this object performed."""
        return self._error_bound

    # -- updates ---------------------------------------------------------------------------------------------
    def update(self, values: ArrayLike, *, presorted: bool = False) -> None:
        """Add a batch of values; pass `presorted=True` for an already sorted, NaN-free float64 array."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        if not presorted:
            arr = arr[~np.isnan(arr)]
            if arr.size > SORT_BLOCK:
                for start in range(0, arr.size, SORT_BLOCK):
                    self.update(np.sort(arr[start : start + SORT_BLOCK]), presorted=True)
                return
            arr = np.sort(arr)
        if arr.size == 0:
            return
        self._levels[0] = _merge_sorted(self._levels[0], arr)
        self._size += arr.size
        self._cache = None
        self._condense()

    def merge(self, other: KLLSketch) -> None:
        """Fold `other` into this sketch (Deequ's level-wise merge followed by condensing)."""
        if (other.sketch_size, other.shrinking_factor) != (self.sketch_size, self.shrinking_factor):
            raise ValueError(
                f"cannot merge KLL sketches with different parameters: k={self.sketch_size}, c={self.shrinking_factor}"
                f" vs k={other.sketch_size}, c={other.shrinking_factor}"
            )
        while len(self._levels) < len(other._levels):
            self._expand()
        for h, level in enumerate(other._levels):
            self._levels[h] = _merge_sorted(self._levels[h], level)
            self._size += level.size
        self._error_bound += other._error_bound
        self._cache = None
        self._condense()

    def _condense(self) -> None:
        while self._size > self._total_capacity:
            for h, level in enumerate(self._levels):
                if level.size >= self.capacity(h):
                    if h + 1 >= len(self._levels):
                        self._expand()
                    self._compact(h)
                    break
            else:  # pragma: no cover - impossible: a size above the total capacity means one level is over its own
                raise AssertionError("KLL sketch over capacity with no compactible level")

    def _compact(self, h: int) -> None:
        level = self._levels[h]
        even = level.size - (level.size % 2)
        # Deequ alternates the offset on every second compaction of a level; the first of each pair is random.
        if self._compactions[h] % 2 == 1:
            offset = 1 - self._offsets[h]
        else:
            offset = int(self._rng.integers(2))
        self._offsets[h] = offset
        promoted = level[offset:even:2].copy()
        self._levels[h] = level[even:].copy()
        self._levels[h + 1] = _merge_sorted(self._levels[h + 1], promoted)
        self._size -= even - promoted.size
        self._compactions[h] += 1
        self._error_bound += 1 << h

    # -- queries ---------------------------------------------------------------------------------------------
    def weighted_items(self) -> tuple[FloatArray, NDArray[np.int64]]:
        """All retained items sorted ascending, with the cumulative weight up to and including each one."""
        if self._cache is None:
            items = np.concatenate(self._levels)
            weights = np.concatenate(
                [np.full(level.size, 1 << h, dtype=np.int64) for h, level in enumerate(self._levels)]
            )
            order = np.argsort(items, kind="stable")
            self._cache = (items[order], np.cumsum(weights[order]))
        return self._cache

    def rank(self, x: ArrayLike, *, inclusive: bool = True) -> NDArray[np.int64]:
        """Estimated number of items <= x (inclusive) or < x (exclusive)."""
        items, cumw = self.weighted_items()
        idx = np.searchsorted(items, np.asarray(x, dtype=np.float64), side="right" if inclusive else "left")
        padded = np.concatenate([np.zeros(1, dtype=np.int64), cumw])
        return padded[idx]

    def cdf(self, x: ArrayLike, *, inclusive: bool = True) -> FloatArray:
        total = self.n
        if total == 0:
            raise ValueError("the CDF of an empty KLL sketch is undefined")
        return self.rank(x, inclusive=inclusive) / total

    def quantile(self, q: ArrayLike) -> FloatArray:
        """Smallest retained item whose cumulative weight reaches q * n."""
        items, cumw = self.weighted_items()
        if items.size == 0:
            raise ValueError("quantiles of an empty KLL sketch are undefined")
        target = np.asarray(q, dtype=np.float64) * cumw[-1]
        idx = np.clip(np.searchsorted(cumw, target, side="left"), 0, items.size - 1)
        return items[idx]

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Deequ's layout as written by Model Monitor: `{"parameters": {"c", "k"}, "data": [[...], ...]}`."""
        return {
            "parameters": {"c": self.shrinking_factor, "k": float(self.sketch_size)},
            "data": [level.tolist() for level in self._levels],
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any], *, where: str = "sketch", seed: int = 0) -> KLLSketch:
        """Load a serialised sketch; `where` names the field in error messages."""
        if not isinstance(payload, Mapping):
            raise SketchFormatError(f"{where}: expected an object with 'parameters' and 'data', got {type(payload).__name__}")
        params = payload.get("parameters")
        data = payload.get("data")
        if not isinstance(params, Mapping) or "k" not in params or "c" not in params:
            raise SketchFormatError(f"{where}.parameters: expected {{'c': 0.64, 'k': 2048.0}}, got {params!r}")
        if not isinstance(data, list) or not all(isinstance(level, list) for level in data):
            raise SketchFormatError(f"{where}.data: expected a list of lists of numbers (one per compactor height)")
        try:
            k = float(params["k"])
            c = float(params["c"])
            levels = [np.sort(np.asarray(level, dtype=np.float64)) for level in data]
        except (TypeError, ValueError) as exc:
            raise SketchFormatError(f"{where}: non-numeric parameter or item ({exc})") from exc
        if k != int(k):
            raise SketchFormatError(f"{where}.parameters.k: expected a whole number, got {k}")
        sketch = cls(int(k), c, seed=seed)
        for h, level in enumerate(levels):
            if np.isnan(level).any():
                raise SketchFormatError(f"{where}.data[{h}]: contains NaN")
            while len(sketch._levels) <= h:
                sketch._expand()
            sketch._levels[h] = level
            sketch._size += level.size
        return sketch
