"""Network quantisation: step indices that keep every symbol within the entropy coder's range."""

from __future__ import annotations

import numpy as np
import torch

from medinr.entropy import MAX_ABS_SYMBOL, decode_tensors, encode_tensors
from medinr.quant import dequantize, fitting_indices, quantize, step_indices


def test_fitting_indices_coarsen_only_the_slices_whose_symbols_would_overflow() -> None:
    init = [torch.zeros(2, 3), torch.zeros(1, 4)]
    params = [torch.tensor([[1e-3, -2e-3, 0.0], [50.0, -80.0, 3.0]]), torch.tensor([[0.1, 0.2, -0.3, 0.0]])]
    fine = step_indices([np.array([1.0, 1e30]), np.array([1.0])], 0.0)  # a huge curvature asks for tiny steps
    assert np.abs(np.concatenate([q.ravel() for q in quantize(params, init, fine)])).max() > MAX_ABS_SYMBOL
    fitted = fitting_indices(fine, params, init, MAX_ABS_SYMBOL)
    assert fitted[0][0] == fine[0][0] and fitted[0][1] > fine[0][1] and np.array_equal(fitted[1], fine[1])
    symbols = quantize(params, init, fitted)
    assert max(int(np.abs(q).max()) for q in symbols) <= MAX_ABS_SYMBOL
    decoded = decode_tensors(encode_tensors(symbols), [q.size for q in symbols])
    assert all(np.array_equal(d, q.ravel()) for d, q in zip(decoded, symbols))
    back = dequantize(symbols, init, fitted)
    assert torch.allclose(back[0][1], params[0][1], rtol=1e-4)  # the coarsened slice is still reconstructed
