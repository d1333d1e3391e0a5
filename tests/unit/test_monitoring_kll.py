"""KLL sketch in Deequ's layout: weights, rank error, serialisation, merging — on the real credit data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sagestep.monitoring.kll import KLLSketch, SketchFormatError

NUMERIC = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]


def _resampled(credit_data: pd.DataFrame, column: str, n: int, seed: int) -> np.ndarray:
    values = credit_data[column].dropna().to_numpy(dtype=np.float64)
    return np.random.default_rng(seed).choice(values, size=n, replace=True)


def _max_rank_error(sketch: KLLSketch, values: np.ndarray) -> int:
    exact_sorted = np.sort(values)
    points = np.unique(values)
    exact = np.searchsorted(exact_sorted, points, side="right")
    return int(np.max(np.abs(sketch.rank(points) - exact)))


@pytest.mark.parametrize("column", ["Income", "Amount", "Age"])
def test_weights_sum_to_the_number_of_values_fed_in_uneven_chunks(credit_data: pd.DataFrame, column: str) -> None:
    # GIVEN 300,000 real values of a column, with missing values, fed in uneven chunks
    values = _resampled(credit_data, column, 300_000, seed=1)
    values[::97] = np.nan
    sketch = KLLSketch()
    # WHEN the sketch sees them chunk by chunk
    for chunk in np.array_split(values, [5, 70_000, 71_000, 250_000]):
        sketch.update(chunk)
    # THEN the weights (2**h per item at height h) sum to the number of non-missing values
    weights = sum(len(level) * 2**h for h, level in enumerate(sketch.data))
    assert weights == sketch.n == int(np.count_nonzero(~np.isnan(values)))
    # AND the sketch keeps only a few thousand items
    assert sketch.num_retained < 8_000


@pytest.mark.parametrize("column", NUMERIC)
def test_rank_error_stays_within_the_kll_bound(credit_data: pd.DataFrame, column: str) -> None:
    # GIVEN 200,000 real values of each numeric column, streamed in 50 chunks
    values = _resampled(credit_data, column, 200_000, seed=2)
    sketch = KLLSketch()
    for chunk in np.array_split(values, 50):
        sketch.update(chunk)
    # WHEN inclusive ranks are estimated at every distinct value
    error = _max_rank_error(sketch, values)
    # THEN the error is within the deterministic bound of the compactions performed
    assert error <= sketch.rank_error_bound
    # AND within 0.5% of n (KLL with k=2048 guarantees far better than the 1% the drift checks need)
    assert error <= 0.005 * values.size


def test_quantiles_are_close_to_exact_quantiles(credit_data: pd.DataFrame) -> None:
    # GIVEN a sketch of 100,000 resampled incomes
    values = _resampled(credit_data, "Income", 100_000, seed=3)
    sketch = KLLSketch()
    sketch.update(values)
    qs = np.linspace(0.05, 0.95, 19)
    # WHEN quantiles are read back
    estimated = sketch.quantile(qs)
    # THEN each requested rank lies within 0.5% of the exact rank range of the returned (possibly tied) value
    ordered = np.sort(values)
    below = np.searchsorted(ordered, estimated, side="left") / values.size
    up_to = np.searchsorted(ordered, estimated, side="right") / values.size
    assert np.all(qs >= below - 0.005)
    assert np.all(qs <= up_to + 0.005)


def test_serialised_sketch_has_deequs_layout_and_round_trips(credit_data: pd.DataFrame) -> None:
    # GIVEN a sketch of 50,000 real values
    sketch = KLLSketch()
    sketch.update(_resampled(credit_data, "Amount", 50_000, seed=4))
    # WHEN it is written as JSON and read back
    payload = json.loads(json.dumps(sketch.to_dict()))
    loaded = KLLSketch.from_dict(payload)
    # THEN it has Deequ's parameters and a list of lists of items per compactor height
    assert payload["parameters"] == {"c": 0.64, "k": 2048.0}
    assert isinstance(payload["data"], list) and all(isinstance(level, list) for level in payload["data"])
    assert len(payload["data"]) >= 2
    # AND the loaded sketch answers rank queries identically
    points = np.linspace(0, 10_000, 101)
    assert loaded.n == sketch.n == 50_000
    np.testing.assert_array_equal(loaded.rank(points), sketch.rank(points))


def test_deequ_capacities_shrink_with_height() -> None:
    # GIVEN Deequ's parameters
    sketch = KLLSketch()
    # WHEN capacities are computed per compactor height
    capacities = [sketch.capacity(h) for h in range(4)]
    # THEN they follow 2 * (ceil(k * c**h / 2) + 1)
    assert capacities == [2050, 1314, 842, 540]


def test_merged_sketches_summarise_both_parts(credit_data: pd.DataFrame) -> None:
    # GIVEN two sketches of different real columns' resamples
    a_values = _resampled(credit_data, "Price", 80_000, seed=5)
    b_values = _resampled(credit_data, "Price", 120_000, seed=6) * 1.1
    a, b = KLLSketch(seed=1), KLLSketch(seed=2)
    a.update(a_values)
    b.update(b_values)
    # WHEN they are merged
    a.merge(b)
    # THEN the result counts all values and ranks the union within its bound
    both = np.concatenate([a_values, b_values])
    assert a.n == both.size
    assert _max_rank_error(a, both) <= a.rank_error_bound


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"data": [[1.0]]}, "parameters"),
        ({"parameters": {"c": 0.64, "k": 2048.0}, "data": [1.0, 2.0]}, "data"),
        ({"parameters": {"c": 0.64, "k": 2048.0}, "data": [["x"]]}, "non-numeric"),
    ],
)
def test_malformed_sketch_is_rejected_naming_the_field(payload: dict, field: str) -> None:
    # GIVEN a sketch document that breaks Deequ's layout
    # WHEN it is loaded
    with pytest.raises(SketchFormatError) as error:
        KLLSketch.from_dict(payload, where="statistics.json features[0]")
    # THEN the error names where it is and what is wrong
    assert "statistics.json features[0]" in str(error.value)
    assert field in str(error.value)
