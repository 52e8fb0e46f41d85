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


def test_bench_rows_include_batch_norm_sgd_and_the_op_chain():
    assert {("cnn-bn", "adam"), ("mlp", "sgd"), ("chain", "-")} <= set(bench.ROWS)
    assert bench.time_ours("mlp", 4, 2, "sgd") > 0
    assert bench.time_chain(None, steps=2) > 0


def test_the_chain_is_the_same_computation_in_both_libraries(torch):
    x = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    bench.chain(ours).backward()
    bench.chain(theirs).backward()
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_each_measurement_runs_in_a_process_of_its_own(capsys):
    """One round of one row: ours (and PyTorch's when installed) measured by children, ratio and memory printed."""
    assert bench.run_bench(batch_size=2, steps=1, rounds=1, rows=(("mlp", "sgd"),)) == 0
    out = capsys.readouterr().out
    assert "mlp    sgd  ours" in out and " MB" in out
    measured = bench.measure("ours", "mlp", "sgd", 2, 1)
    assert measured["seconds"] > 0 and measured["peak_mb"] > 0
