"""The backend: our threads (threads.py), the two BLAS calls numpy does not expose (blas.py), split kernels.

conftest.py already runs every test with two threads and no minimum piece size,
so each gradient check of a convolution also checks the split. Here: the
pieces themselves, that one and two threads give the same numbers, and the
numpy fallbacks where BLAS cannot be reached.
"""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, backend
from tinygrad_cnn.backend import blas, elementwise, linalg, threads


@pytest.fixture
def use_threads():
    """Restore the thread count the other tests run with."""
    before = threads.count()
    yield lambda count: backend.configure(threads=count)
    backend.configure(threads=before)


@given(size=st.integers(0, 50), count=st.integers(1, 5))
def test_chunks_cover_the_range_in_order(size, count):
    with mock.patch.object(threads, "count", lambda: count):  # no pool is needed to check the arithmetic
        pieces = threads.chunks(size)
    covered = [i for piece in pieces for i in range(size)[piece]]
    assert covered == list(range(size))
    assert len(pieces) == max(1, min(count, size))
    lengths = [piece.stop - piece.start for piece in pieces]
    assert max(lengths) - min(lengths) <= 1


def test_chunks_keep_small_work_in_one_piece(monkeypatch):
    monkeypatch.setattr(threads, "MIN_PIECE_COST", 1000)
    assert len(threads.chunks(64, cost_per_item=10)) == 1  # 640 elements: not worth a thread
    assert len(threads.chunks(64, cost_per_item=100)) == min(threads.count(), 6)


def test_run_returns_results_in_order_and_raises_from_any_piece(use_threads):
    use_threads(3)
    pieces = threads.chunks(9)
    assert threads.run(lambda s: (s.start, s.stop), pieces) == [(p.start, p.stop) for p in pieces]

    def fail_last(s):
        if s.stop == 9:
            raise RuntimeError("piece failed")
        return s

    with pytest.raises(RuntimeError, match="piece failed"):
        threads.run(fail_last, pieces)


def test_configure_rejects_zero_threads():
    with pytest.raises(ValueError, match="at least 1"):
        backend.configure(threads=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("a_t,b_t", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_into_matches_numpy(dtype, accumulate, a_t, b_t):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(dtype)
    b = rng.standard_normal((7, 3)).astype(dtype)
    if a_t:
        a = np.ascontiguousarray(a.T).T  # same values, column-major memory: BLAS's transpose flag
    if b_t:
        b = np.ascontiguousarray(b.T).T
    base = rng.standard_normal((9, 4)).astype(dtype)
    out = base[2:7, 1:]  # rows of a bigger array: a row stride wider than the row
    expected = (out + a @ b) if accumulate else a @ b
    if blas.gemm_available(dtype):  # these layouts take the BLAS call, not numpy's fallback
        assert None not in (blas._operand(a), blas._operand(b)) and blas._operand(out) == (blas._NO_TRANS, 4)
    result = blas.matmul_into(a, b, out, accumulate=accumulate)
    assert result is out
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_matmul_into_leaves_other_rows_alone_and_falls_back_for_odd_operands():
    rng = np.random.default_rng(1)
    base = np.zeros((6, 3))
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    blas.matmul_into(a, b, base[1:5], accumulate=True)
    np.testing.assert_allclose(base[1:5], a @ b)
    assert not base[0].any() and not base[5].any()
    # strided in both axes (no BLAS layout), and integers (no BLAS type): numpy does it
    wide = rng.standard_normal((8, 10))[::2, ::2]
    out = np.ones((4, 3))
    np.testing.assert_allclose(blas.matmul_into(wide, b, out, accumulate=True), 1 + wide @ b)
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(blas.matmul_into(ints, ints.T, np.zeros((2, 2), int)), ints @ ints.T)
    with pytest.raises(ValueError, match="matmul_into"):
        blas.matmul_into(a, b, np.zeros((3, 3)))


@pytest.mark.parametrize("a_shape, b_shape, split_length", [
    ((70, 40), (40, 3), 70),          # tall: rows of a
    ((3, 40), (40, 80), 80),          # wide (a Linear layer's batch is short): columns of b
    ((4, 3, 40), (4, 40, 9), 4),      # a batch of products: the batch axis
])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.skipif(not blas.can_limit_threads(), reason="without BLAS control there is one thread only")
def test_matmul_splits_the_longer_side_and_matches_numpy(use_threads, monkeypatch, a_shape, b_shape, split_length,
                                                         transposed):
    use_threads(3)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    if transposed:  # what LinearFn passes: weight.T, a column-major view
        b = np.ascontiguousarray(np.swapaxes(b, -1, -2)).swapaxes(-1, -2)
    seen = []
    real_run = threads.run
    monkeypatch.setattr(threads, "run", lambda work, pieces: seen.append(pieces) or real_run(work, pieces))
    np.testing.assert_allclose(linalg.matmul(a, b), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert len(seen) == 1 and len(seen[0]) == 3 and seen[0][-1].stop == split_length


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_batch_stored_row_major_across_products_keeps_that_order_in_the_result(use_threads, pieces):
    """(M, B, K) memory seen as (B, M, K) (LocallyConnected2d's patches) gives a result stored (M, B, N)."""
    use_threads(pieces)
    rng = np.random.default_rng(4)
    a = rng.standard_normal((6, 5, 40)).transpose(1, 0, 2)  # 5 products of (6, 40), rows interleaved
    b = rng.standard_normal((5, 40, 7))
    result = linalg.matmul(a, b)
    np.testing.assert_allclose(result, np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert result.transpose(1, 0, 2).flags.c_contiguous
    assert linalg.matmul(np.ascontiguousarray(a), b).flags.c_contiguous  # plain batches stay C order


CASES = [  # (N, C, H, W, C_out, kernel, stride, padding, dilation): each path of backend/conv.py
    (5, 3, 7, 6, 4, 3, 1, 1, 1),   # stride 1: per-kernel-row GEMMs into the padded grid; patch-major patches
    (5, 3, 7, 6, 4, (2, 3), 1, (0, 2), (2, 1)),
    (4, 1, 6, 6, 3, 3, 1, 1, 1),   # one input channel: a single GEMM and col2im; offset-major patches
    (5, 2, 8, 7, 3, 3, 2, 1, 1),   # a stride: a GEMM per offset and col2im
    (5, 2, 9, 17, 3, 3, 2, 1, 1),  # a stride with offset-major patches (kw·C = 6 < W_out = 9)
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.skipif(not blas.can_limit_threads(), reason="without BLAS control there is one thread only")
def test_one_two_and_three_threads_agree(use_threads, case, channels_last):
    n, c, h, w, c_out, kernel, stride, padding, dilation = case
    rng = np.random.default_rng(2)
    x_np = rng.standard_normal((n, c, h, w))
    if channels_last:
        x_np = np.ascontiguousarray(x_np.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w_np = rng.standard_normal((c_out, c, *((kernel, kernel) if isinstance(kernel, int) else kernel)))
    b_np = rng.standard_normal(c_out)
    results = []
    for count in (1, 2, 3):  # 3: two pool threads, uneven pieces
        use_threads(count)
        x, wt, b = (Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = x.conv2d(wt, b, stride=stride, padding=padding, dilation=dilation)
        (y * y).sum().backward()
        results.append([y.data, x.grad.data, wt.grad.data, b.grad.data])
    for one, *split in zip(*results):
        for other in split:
            np.testing.assert_allclose(other, one, rtol=1e-10, atol=1e-12)


def test_without_blas_calls_everything_falls_back_to_numpy():
    """Where OpenBLAS cannot be found, one thread, numpy's matmul, and the same gradients."""
    script = (
        "from tinygrad_cnn import Tensor, backend, gradcheck\n"
        "from tinygrad_cnn.backend import blas\n"
        "import numpy as np\n"
        "assert not blas.can_limit_threads() and not blas.gemm_available(np.float64)\n"
        "assert backend.thread_count() == 1 and backend.configure(threads=4) == 1\n"
        "rng = np.random.default_rng(0)\n"
        "x = Tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)\n"
        "w = Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)\n"
        "assert gradcheck(lambda x, w: x.conv2d(w, padding=1), (x, w))\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TINYGRAD_CNN_NO_BLAS_CALLS": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(("ufunc", "operands"), [
    (np.maximum, (np.arange(-6.0, 6.0, dtype=np.float32).reshape(3, 4), 0)),      # a Python scalar stays weak
    (np.greater, (np.arange(12.0).reshape(3, 2, 2), 5.5)),                        # a boolean result
    (np.multiply, (np.ones((4, 3), np.float32), (np.arange(4) % 2 == 0)[:, None])),  # float32 · bool mask
    (np.add, (np.arange(24.0).reshape(2, 3, 4), np.arange(4.0))),                 # broadcast along the split
    (np.add, (np.arange(3.0).reshape(1, 3), np.arange(12.0).reshape(4, 3))),      # the full operand second
    (np.multiply, (np.float64(2.0), np.arange(5, dtype=np.float32))),             # a numpy scalar
])
def test_elementwise_matches_the_ufunc(monkeypatch, ufunc, operands):
    monkeypatch.setattr(elementwise, "MIN_ELEMENTWISE_SIZE", 2)
    expected = ufunc(*operands)
    result = elementwise.elementwise(ufunc, *operands)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_elementwise_keeps_the_memory_layout(monkeypatch):
    monkeypatch.setattr(elementwise, "MIN_ELEMENTWISE_SIZE", 2)
    nhwc = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 4, 5, 3)
    channels_last = nhwc.transpose(0, 3, 1, 2)
    result = elementwise.elementwise(np.maximum, channels_last, 7)
    np.testing.assert_array_equal(result, np.maximum(channels_last, 7))
    assert result.strides == channels_last.strides


def test_run_inside_a_piece_does_not_wait_for_itself(use_threads):
    use_threads(2)
    pieces = threads.chunks(4)

    def outer(s):
        return sum(threads.run(lambda t: t.stop - t.start, threads.chunks(6)))

    assert threads.run(outer, pieces) == [6] * len(pieces)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_threads_of_its_own(use_threads):
    """The child of a fork has none of the parent's pool threads; without a new pool it would wait forever."""
    use_threads(2)
    threads.run(lambda s: None, threads.chunks(4))  # the parent's pool thread exists now
    script = (
        "import os, sys\n"
        "from tinygrad_cnn import backend\n"
        "from tinygrad_cnn.backend import threads\n"
        "backend.configure(threads=2); threads.MIN_PIECE_COST = 1\n"
        "threads.run(lambda s: None, threads.chunks(4))\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print(sum(threads.run(lambda s: s.stop - s.start, threads.chunks(10))), flush=True)\n"
        "    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10"


def test_a_big_product_nobody_splits_runs_on_blas_threads_and_gives_them_back(use_threads):
    """linalg.matmul lets BLAS thread a product too small for our split (an MLP layer), then holds it to one again."""
    if not blas.can_limit_threads():
        pytest.skip("threadpoolctl cannot set this BLAS's threads")
    backend.configure(2)
    seen = []
    real = blas.threaded
    with mock.patch.object(blas, "threaded", side_effect=lambda work: seen.append(1) or real(work)):
        a, b = np.random.default_rng(0).random((64, 784)), np.random.default_rng(1).random((784, 256))
        with mock.patch.object(threads, "MIN_PIECE_COST", 1 << 40), mock.patch.object(threads, "_last_split", -np.inf):
            np.testing.assert_allclose(linalg.matmul(a, b), a @ b)
            np.testing.assert_allclose(linalg.matmul(a[:4], b[:, :4]), a[:4] @ b[:, :4])  # small: not threaded
            assert seen == [1]
            threads.run(lambda s: None, [slice(0, 1), slice(1, 2)])  # our threads split something...
            np.testing.assert_allclose(linalg.matmul(a, b), a @ b)  # ...so BLAS stays on one thread for a while
            assert seen == [1] and threads.seconds_since_split() < linalg.QUIET
    assert all(library.num_threads == 1 for library in blas._controller().lib_controllers)


@given(n=st.integers(1, 3), c=st.integers(1, 5), tiles=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       kernel=st.sampled_from([(1, 1), (2, 2), (3, 2), (2, 3)]), seed=st.integers(0, 99))
def test_tiled_max_pool_grad_equals_the_strided_views(n, c, tiles, kernel, seed):
    """Windows tiling a channels-last input take whole-array passes: the same dx, masks and 1/count as the
    per-offset strided views (ties included: values rounded, and relu'd zeros)."""
    from tinygrad_cnn.backend import pool

    h, w = tiles[0] * kernel[0], tiles[1] * kernel[1]
    rng = np.random.default_rng(seed)
    x = np.maximum(np.round(rng.standard_normal((n, h, w, c)), 1), 0).astype(np.float32).transpose(0, 3, 1, 2)
    out = pool.max_pool(x, kernel)
    g = rng.standard_normal(out.shape).astype(np.float32)
    dx, (masks, scale) = pool.max_pool_grad(g, kernel, x, out)
    with mock.patch.object(pool, "_tiles_exactly", lambda *args: False):
        dx_views, (masks_views, scale_views) = pool.max_pool_grad(g, kernel, x, out)
    np.testing.assert_array_equal(dx, dx_views)
    np.testing.assert_array_equal(scale, scale_views)
    assert all(np.array_equal(a, b) for a, b in zip(masks, masks_views)) and len(masks) == len(masks_views)
    if c > 1:  # (a size-1 axis has any stride)
        assert dx.strides[1:] == dx_views.strides[1:]  # channels-last, like the input


@pytest.mark.parametrize("layout", ["channels_last", "nchw", "sliced", "rows"])
@pytest.mark.parametrize("channels", [1, 3, 32])
@pytest.mark.parametrize("block", [(8, 32), (2048, 1 << 17)])
def test_normalize_passes_are_the_whole_array_formulas(use_threads, layout, channels, block):
    """Batch norm's fused passes, block by block over the threads (several blocks, a partial last row) or as
    whole arrays (layouts without the channels innermost): the plain numpy formulas, in the input's layout."""
    from tinygrad_cnn.backend import normalize

    use_threads(2)
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((5, 9, 7, channels)).astype(np.float32).transpose(0, 3, 1, 2)
    x = {"channels_last": x, "nchw": np.ascontiguousarray(x), "sliced": x[:, :, ::2],
         "rows": np.ascontiguousarray(x[:, :, 0, 0])}[layout]
    g = x * 0.5 + 1.0  # another array in x's layout
    shape = (1, channels) + (1,) * (x.ndim - 2)
    axes = (0, *range(2, x.ndim))
    mean, a, k, c = (rng.standard_normal(channels).astype(np.float32) for _ in range(4))
    m, x64, g64 = mean.reshape(shape).astype(np.float64), x.astype(np.float64), g.astype(np.float64)
    with mock.patch.object(normalize, "ROW", block[0]), mock.patch.object(normalize, "BLOCK", block[1]), \
            mock.patch.object(threads, "MIN_PIECE_COST", 1):
        sums = normalize.centered_square_sums(x, mean)
        dots = normalize.centered_dots(g, x, mean)
        out = normalize.scale_shift(x, a, c)
        grad = normalize.batch_norm_input_grad(g, x, mean, a, k, c)
    np.testing.assert_allclose(sums, ((x64 - m) ** 2).sum(axes), rtol=1e-5)
    np.testing.assert_allclose(dots, (g64 * (x64 - m)).sum(axes), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out, x64 * a.reshape(shape) + c.reshape(shape), rtol=1e-6, atol=1e-6)
    expected = g64 * a.reshape(shape) - (x64 - m) * k.reshape(shape) - c.reshape(shape)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)
    assert out.dtype == grad.dtype == np.float32 and sums.shape == dots.shape == (channels,)
    if channels > 1 and layout != "sliced":
        assert out.strides == grad.strides == x.strides


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, ">f4", bool])
def test_zero_and_one_are_read_only_0d_arrays_that_keep_the_kernels_dtype(dtype):
    """The kernels' constants give the values a Python scalar gave, in the operand's own dtype (relu of int8
    stays int8, and of bool stays bool, where numpy's maximum with the scalar 0 gave int64)."""
    dtype = np.dtype(dtype)
    zero, one = elementwise.ZERO[dtype], elementwise.ONE[dtype]
    assert zero.shape == one.shape == () and zero.dtype == one.dtype == dtype and (zero, one) == (0, 1)
    assert elementwise.ZERO[dtype] is zero and not zero.flags.writeable
    a = np.array([-2, 0, 3]).astype(dtype)  # (uint8: -2 wraps to 254)
    assert elementwise.relu(a).dtype == dtype.newbyteorder("=")  # (ufuncs answer in native byte order)
    assert np.array_equal(elementwise.relu(a), np.maximum(a, 0))
    if dtype.kind == "f":
        g, y = np.array([0.5, -1.0, 2.0], dtype=dtype), np.array([0.25, 0.0, -0.5], dtype=dtype)
        assert elementwise.tanh_grad(g, y).tobytes() == (g * (1 - y * y)).tobytes()
        assert elementwise.sigmoid_grad(g, y).tobytes() == (g * (y * (1 - y))).tobytes()
        assert elementwise.relu_grad(g, a).tobytes() == (g * (a > 0)).tobytes()
