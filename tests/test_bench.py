"""`tinygrad-cnn bench` compares like with like: PyTorch's twins of our models take our weights key for key."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_cnn import Tensor, bench, models, no_grad


@pytest.mark.parametrize("name", ["mlp", "cnn", "cnn-bn"])
def test_torch_twins_have_our_architecture(name, torch):
    ours, theirs = models.build(name), bench.torch_model(torch, name)
    theirs.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}, strict=True)
    ours.eval(), theirs.eval()
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    with no_grad():
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(Tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_bench_rows_include_batch_norm_and_sgd():
    assert ("cnn-bn", "adam") in bench.ROWS and ("mlp", "sgd") in bench.ROWS
    assert bench.time_ours("mlp", 4, 2, "sgd") > 0
