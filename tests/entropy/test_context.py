"""The context coder: the table cache of its table-coded passes, interpolated parentless levels (1.8) and slice
scales (1.12)."""

from __future__ import annotations

import numpy as np
import pytest

from medinr.entropy import context
from medinr.errors import BitstreamError
from medinr.varint import write_svarint


def test_table_cache_that_fills_up_still_returns_every_table_of_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass whose new tables overflow the cache gets all its tables, also those cached before the overflow
    cleared it (a long bench worker once raised KeyError there)."""
    monkeypatch.setattr(context, "_TABLE_CACHE_SIZE", 8)
    monkeypatch.setattr(context, "_table_cache", {})
    context._tables(np.array([3, 4, 5]), 20)
    groups = np.array([3, 10, 11, 12, 13, 14, 15])  # 3 is cached; six more overflow the eight-table cache
    tables = context._tables(groups, 20)
    assert len(tables) == len(groups)
    assert set(context._table_cache) == {(int(g), 20) for g in groups}


def _smooth_band(shape: tuple[int, int], seed: int) -> np.ndarray:
    """An approximation band's kind of content: a smooth ramp and waves with a little noise, in the hundreds."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices(shape)
    return np.rint(300 * np.sin(cols / 6) + 4 * rows + rng.normal(0, 3, shape)).astype(np.int64)


def _flat_predictor(level: int, current: np.ndarray, parent: np.ndarray | None,
                    checker_pass: int) -> tuple[np.ndarray, np.ndarray]:
    """A context model that knows nothing: mean 0, scale 2**4, for every position of the pass."""
    count = int(context.pass_masks(current.shape)[checker_pass].sum())
    return np.zeros(count), np.full(count, 4 * context.SCALE_STEPS)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (2, 3), (7, 9), (32, 32), (63, 40)])
def test_interpolation_passes_cover_every_position_once_each_after_its_neighbours(shape) -> None:
    passes = context.interpolation_passes(shape)
    np.testing.assert_array_equal(sum(mask.astype(int) for mask, _ in passes), np.ones(shape, dtype=int))
    first, offsets = passes[0]
    assert not offsets and first.sum() == 1 and first[0, 0]
    coded = first.copy()
    for mask, offsets in passes[1:]:
        for y, x in zip(*np.nonzero(mask)):
            inside = [(y + dy, x + dx) for dy, dx in offsets
                      if 0 <= y + dy < shape[0] and 0 <= x + dx < shape[1]]
            assert inside and all(coded[p] for p in inside), (shape, y, x)
        coded |= mask


def test_interpolation_means_and_activities_follow_their_definitions() -> None:
    """Median of four neighbours (mean of the middle two), else their mean, on the 2**-MEAN_FRAC grid; activity the
    mean absolute deviation from their mean; checked against a plain loop on a grid's direct pass."""
    z = _smooth_band((6, 7), 5).astype(np.float64)
    mask, offsets = context.interpolation_passes(z.shape)[-1]
    means, activity = context._interpolation_stats(z, mask, offsets)
    for k, (y, x) in enumerate(zip(*np.nonzero(mask))):
        near = np.array([z[y + dy, x + dx] for dy, dx in offsets if 0 <= y + dy < 6 and 0 <= x + dx < 7])
        mean = np.median(near) if len(near) == 4 else near.mean()
        assert means[k] == pytest.approx(mean, abs=2.0 ** -(context.MEAN_FRAC + 1))
        assert activity[k] == pytest.approx(np.abs(near - near.mean()).mean())


def test_scale_indices_are_the_nearest_table_scale() -> None:
    scales = np.array([2.0 ** -6, 0.3, 1.0, 1.04, 7.77, 2.0 ** 11])
    expected = np.clip(np.rint(context.SCALE_STEPS * np.log2(scales)), *context.SCALE_INDEX_RANGE)
    np.testing.assert_array_equal(context.scale_indices_of(scales), expected)


def test_interpolated_parentless_level_round_trips_in_fewer_bytes() -> None:
    """A smooth parentless band (the last level) coded by interpolation: exact round trip, the rule's byte first,
    and far smaller than under a context model that knows nothing; the level with a parent is coded as before."""
    rng = np.random.default_rng(2)
    levels = [np.rint(rng.laplace(0, 2.0, (40, 66))).astype(np.int64), _smooth_band((20, 33), 1)]
    rule = context.choose_interpolation(levels, _flat_predictor)
    assert rule is not None
    plain = context.encode_levels(levels, _flat_predictor)
    interpolated = context.encode_levels(levels, _flat_predictor, interpolation=rule)
    assert interpolated[0] == rule.code and len(interpolated) < 0.8 * len(plain)
    decoded = context.decode_levels(interpolated, [z.shape for z in levels], _flat_predictor, interpolated=True)
    for a, b in zip(levels, decoded):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(BitstreamError):
        context.decode_levels(b"", [z.shape for z in levels], _flat_predictor, interpolated=True)


def test_large_interpolated_level_is_table_coded_and_round_trips() -> None:
    levels = [_smooth_band((130, 140), 3)]  # its direct pass holds 9,100 symbols: table-coded
    rule = context.choose_interpolation(levels, _flat_predictor)
    data = context.encode_levels(levels, _flat_predictor, interpolation=rule)
    np.testing.assert_array_equal(context.decode_levels(data, [(130, 140)], _flat_predictor, interpolated=True)[0],
                                  levels[0])


def test_no_interpolation_where_the_context_model_codes_the_level_better() -> None:
    """A context model that predicts every value exactly leaves interpolation nothing to gain; a 3-axis or constant
    parentless level is never interpolated."""
    band = _smooth_band((16, 16), 4)

    def oracle(level: int, current: np.ndarray, parent: np.ndarray | None,
               checker_pass: int) -> tuple[np.ndarray, np.ndarray]:
        values = band[context.pass_masks(band.shape)[checker_pass]].astype(np.float64)
        return values, np.full(len(values), context.SCALE_INDEX_RANGE[0])

    assert context.choose_interpolation([band], oracle) is None
    assert context.choose_interpolation([band], _flat_predictor) is not None
    assert context.choose_interpolation([np.stack([band, band])], _flat_predictor) is None
    assert context.choose_interpolation([np.full((8, 8), 5)], _flat_predictor) is None


def test_slice_scales_shift_each_slice_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    # slice 0 busy, the others nearly empty: what a sequence level's spectrum looks like
    level = np.concatenate([rng.laplace(0, 8, (1, 16, 16)), rng.laplace(0, 0.2, (3, 16, 16))]).round().astype(int)

    def predict(level_index, current, parent, checker_pass):
        count = int(context.pass_masks(current.shape)[checker_pass].sum())
        return np.zeros(count), np.full(count, 2 * context.SCALE_STEPS)  # every symbol at scale 4

    offsets = [np.array([1, -40, -40, -40])]
    shifted = context.with_slice_scales(predict, offsets)
    _, indices = shifted(0, np.zeros(level.shape), None, 1)
    slices = np.nonzero(context.pass_masks(level.shape)[1])[0]
    np.testing.assert_array_equal(indices, 2 * context.SCALE_STEPS + context.SLICE_OFFSET_STEP * offsets[0][slices])
    plain, scaled = context.encode_levels([level], predict), context.encode_levels([level], shifted)
    assert len(scaled) < 0.8 * len(plain)
    [decoded] = context.decode_levels(scaled, [level.shape], shifted)
    np.testing.assert_array_equal(decoded, level)


def test_slice_offsets_round_trip_and_bad_ones_are_refused() -> None:
    offsets = [np.array([3, -7, 0]), None, np.array([context.MAX_SLICE_OFFSET])]
    data = context.write_slice_offsets(offsets)
    read_back, used = context.read_slice_offsets(data + b"rest", [3, 0, 1])
    assert used == len(data) == 4 and read_back[1] is None
    for got, want in zip(read_back[::2], offsets[::2]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(BitstreamError, match="truncated"):
        context.read_slice_offsets(data[:2], [3, 0, 1])
    with pytest.raises(BitstreamError, match="slice scale out of range"):
        context.read_slice_offsets(write_svarint(context.MAX_SLICE_OFFSET + 1), [1])


def test_chosen_slice_offsets_code_in_fewer_bytes_than_their_neighbours() -> None:
    rng = np.random.default_rng(1)
    level = np.concatenate([rng.laplace(0, 6, (1, 24, 24)), rng.laplace(0, 0.6, (2, 24, 24)),
                            np.zeros((1, 24, 24))]).round().astype(int)

    def predict(level_index, current, parent, checker_pass):
        count = int(context.pass_masks(current.shape)[checker_pass].sum())
        return np.zeros(count), np.zeros(count, dtype=np.int64)  # every symbol at scale 1

    [chosen] = context.choose_slice_offsets([level], predict, [4])
    assert chosen[0] > 0 > chosen[1] and chosen[3] == -context.MAX_SLICE_OFFSET  # an empty slice: the narrowest

    def size(offsets: np.ndarray) -> int:
        return len(context.encode_levels([level], context.with_slice_scales(predict, [offsets])))

    assert size(chosen) < size(np.zeros(4, dtype=np.int64))
    for i in range(3):
        for step in (-2, 2):
            moved = chosen.copy()
            moved[i] += step
            assert size(chosen) <= size(moved)
    assert context.choose_slice_offsets([level, level[0]], predict, [0, 0]) == [None, None]
