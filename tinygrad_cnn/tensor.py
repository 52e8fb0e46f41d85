"""`Tensor`: a numpy array that remembers how it was computed.

This file holds the rules a user meets first (construction, dtypes,
broadcasting, error messages) and thin methods that call a primitive from
ops.py (one `Function.apply` each) or combine several (the composites:
softmax, var, ...). Nothing here computes a gradient: that is ops.py's job.

Broadcasting, the one place it happens::

    a: (3, 1) ─┐                     expand (a view, no copy)        Mul
               ├─ broadcast shape ──▶  a: (2, 3, 4), b: (2, 3, 4) ──▶ same-shape primitive
    b: (2, 1, 4)┘   (2, 3, 4)

Only sides that need a gradient are expanded; `ExpandFn.backward` sums the
gradient back. Constants ride on numpy's own broadcasting.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import numpy as np

from . import autograd, ops
from .autograd import Function, op_name

Scalar = Union[int, float, bool]
DTypeLike = Any
_FLOAT32 = np.dtype(np.float32)

_rng = np.random.default_rng()


def default_generator() -> np.random.Generator:
    """The generator behind `Tensor.rand`/`randn`, nn's initialisation and dropout."""
    return _rng


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    `data` is a number, nested list, numpy array or Tensor. Python floats become
    float32; a float64 array stays float64; integers stay integers (and carry no
    gradient). A numpy array is used as is, not copied (like `torch.from_numpy`).
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_hooks", "__weakref__")
    __array_ufunc__ = None  # numpy defers to our reflected operators: `ndarray * Tensor` keeps the graph

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    _ctx: Function | None
    name: str | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: DTypeLike = None, name: str | None = None):
        if isinstance(data, Tensor):
            array = data.data
        elif isinstance(data, np.ndarray):
            array = data
        elif isinstance(data, np.generic):
            array = np.asarray(data)
        elif isinstance(data, (int, float, list, tuple)):
            try:
                array = np.array(data)
            except ValueError as e:
                raise ValueError(f"Tensor: cannot build a tensor from this nested sequence ({e})") from None
            if array.dtype == np.float64 and dtype is None:
                array = array.astype(np.float32)
        else:
            raise TypeError(f"Tensor: cannot build a tensor from {type(data).__name__}")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: unsupported dtype {array.dtype} (use bool, integer or floating data)")
        if dtype is not None:
            array = array.astype(np.dtype(dtype), copy=False)
        if requires_grad and array.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, this one is {array.dtype}")
        self.data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self.name = name
        self._hooks = None

    @staticmethod
    def _wrap(data: np.ndarray, requires_grad: bool = False) -> Tensor:
        """Fast constructor for arrays we made ourselves (no checks)."""
        t = object.__new__(Tensor)
        t.data, t.requires_grad = data, requires_grad
        t.grad = t._ctx = t.name = t._hooks = None  # one chained store: ~20% cheaper than a 6-tuple unpack
        return t

    # ------------------------------------------------------------------ attributes
    shape = property(lambda self: self.data.shape, doc="The shape, a tuple of ints.")
    dtype = property(lambda self: self.data.dtype, doc="The numpy dtype.")
    ndim = property(lambda self: self.data.ndim, doc="The number of dimensions.")
    grad_fn = property(lambda self: self._ctx, doc="The node that made this tensor, None for a leaf.")
    is_leaf = property(lambda self: self._ctx is None, doc="True unless this tensor was computed by a recorded op.")

    @property
    def T(self) -> Tensor:
        """The axes reversed (the transpose of a matrix): always a permutation, so permute's checks are skipped."""
        return ops.PermuteFn.apply(self, dims=tuple(range(self.data.ndim - 1, -1, -1)))

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> Scalar:
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python scalar, shape is {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory)."""
        return Tensor._wrap(self.data)

    def astype(self, dtype: DTypeLike) -> Tensor:
        dtype = np.dtype(dtype)
        return self if dtype == self.data.dtype else ops.CastFn.apply(self, dtype=dtype)

    # PyTorch's names for shape and dtype (a script ported with `import tinygrad_cnn as torch` uses them)
    def size(self, dim: int | None = None) -> Any:
        """The shape (PyTorch's `size()`), or one side of it with `size(dim)`; `numel()` counts the elements."""
        return self.data.shape if dim is None else self.data.shape[_axis(dim, self.data.ndim, "size")]

    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    def t(self) -> Tensor:
        """The transpose of a matrix (a vector or scalar is returned as is), as `torch.Tensor.t`."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {self.shape} (use transpose)")
        return self.T if self.ndim == 2 else self

    def type(self, dtype: DTypeLike = None) -> Any:
        """With a dtype, this tensor in it (`x.type(torch.float)`); without, its type's name ('torch.FloatTensor')."""
        if dtype is None:
            return _TYPE_NAMES.get(self.data.dtype, f"tinygrad_cnn.{self.data.dtype}")
        return self.astype(dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def long(self) -> Tensor:
        return self.astype(np.int64)

    def int(self) -> Tensor:
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        return self.astype(np.bool_)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """`to(dtype)`, `to("cpu")`, `to(device, dtype)`, `to(other_tensor)`: numpy arrays live on the CPU only."""
        dtype = to_arguments(args, kwargs)
        return self if dtype is None else self.astype(dtype)

    def cpu(self) -> Tensor:
        return self

    device = property(lambda self: CPU, doc="Where the data lives: always the CPU (numpy).")
    is_cuda = property(lambda self: False)

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    def __index__(self) -> int:
        """A one-element integer tensor indexes a list (`classes[pred.argmax(0)]`), as in PyTorch."""
        if self.data.size != 1 or self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be converted to an index, "
                            f"got shape {self.shape} and dtype {self.dtype}")
        return int(self.data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=200)
        extra = f", grad_fn=<{op_name(self._ctx)}>" if self._ctx is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        name = f", name={self.name!r}" if self.name else ""
        return f"Tensor({body}, dtype={self.data.dtype}{extra}{name})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter's display: the graph that made this tensor, as SVG (viz draws it; imported only here)."""
        from .viz import tensor_mimebundle

        return tensor_mimebundle(self, include, exclude)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d self / d leaf into the `.grad` of every leaf that requires grad."""
        autograd.backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _HookHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = _HookHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Start (or stop) recording operations on this leaf, in place; returns it."""
        if self._ctx is not None and not requires_grad:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of leaf variables "
                               "(use detach() to get a tensor that does not require grad)")
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(f"only floating-point tensors can require gradients, this one is {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ in-place operations
    # PyTorch's safety rule: allowed on tensors that do not require grad, under no_grad() and on
    # `.grad`; a tensor a recorded node will read is marked modified, so that node's backward
    # refuses to run instead of computing with the new values (autograd.mark_modified).
    def _writable(self, op: str, operands: tuple = ()) -> np.ndarray:
        """The array to write into, after PyTorch's rule; the caller stamps it once the write succeeded."""
        recording = autograd.is_grad_enabled()
        if self.requires_grad and recording:
            if self._ctx is None:
                raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in an in-place "
                                   "operation. (Wrap it in `with no_grad():`, or use the out-of-place form.)")
            raise RuntimeError(f"{op}: an in-place operation on a tensor computed by {op_name(self._ctx)} that "
                               "requires grad; use the out-of-place form (x = x + y, not x += y or x.add_(y))")
        if recording and any(isinstance(x, Tensor) and x.requires_grad for x in operands):
            raise RuntimeError(f"{op}: the value written in place requires grad, and an in-place write is not "
                               "recorded here; use the out-of-place form (x = x + y), which is")
        if not self.data.flags.writeable:
            self.data = self.data.copy()  # a read-only view (an expand, a broadcast): this tensor gets its own
        return self.data

    def _assign(self, op: str, ufunc: Callable, *operands: Any, casting: str = "same_kind") -> Tensor:
        out = self._writable(op, operands)
        arrays = [x.data if isinstance(x, Tensor) else x for x in operands]
        try:
            np.copyto(out, ufunc(out, *arrays), casting=casting)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{op}: {e} (in place on a tensor of shape {self.shape} and dtype {self.dtype})") from None
        autograd.mark_modified(out)
        return self

    def add_(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return self._assign("add_", lambda a, b: a + alpha * b, other)

    def sub_(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        return self._assign("sub_", lambda a, b: a - alpha * b, other)

    def mul_(self, other: Any) -> Tensor:
        return self._assign("mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        return self._assign("div_", np.true_divide, other)

    def zero_(self) -> Tensor:
        return self._assign("zero_", np.zeros_like)

    def fill_(self, value: Any) -> Tensor:
        return self._assign("fill_", lambda a, v: np.full_like(a, v), value, casting="unsafe")

    def copy_(self, src: Any) -> Tensor:
        return self._assign("copy_", lambda a, b: np.broadcast_to(b, a.shape), src, casting="unsafe")

    def clamp_(self, min: Scalar | None = None, max: Scalar | None = None) -> Tensor:
        return self._assign("clamp_", lambda a: np.clip(a, min, max))

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        return self._assign("uniform_", lambda x: _rng.uniform(a, b, x.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        return self._assign("normal_", lambda x: _rng.normal(mean, std, x.shape))

    def __iadd__(self, other: Any) -> Tensor:
        return self._augmented(other, self.add_, Tensor.__add__)

    def __isub__(self, other: Any) -> Tensor:
        return self._augmented(other, self.sub_, Tensor.__sub__)

    def __imul__(self, other: Any) -> Tensor:
        return self._augmented(other, self.mul_, Tensor.__mul__)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._augmented(other, self.div_, Tensor.__truediv__)

    def _augmented(self, other: Any, in_place: Callable, out_of_place: Callable) -> Tensor:
        """`x += y` in place where PyTorch's rule allows; x = x + y where the result must be recorded
        (x computed with grad, or y requiring grad: `total += loss`), so its gradient is right."""
        if autograd.is_grad_enabled() and ((self.requires_grad and self._ctx is not None) or (
                isinstance(other, Tensor) and other.requires_grad)):
            return out_of_place(self, other)
        return in_place(other)

    def retain_grad(self) -> None:
        """Keep the gradient of a non-leaf tensor in `.grad` (leaves always keep theirs)."""
        if self._ctx is None:
            return

        def keep(grad: Tensor) -> None:
            if not autograd.is_grad_enabled():
                grad = grad.detach()
            self.grad = grad if self.grad is None else self.grad + grad

        self.register_hook(keep)

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def manual_seed(seed: int) -> None:
        """Seed the random constructors, nn's weight initialisation and dropout."""
        global _rng
        _rng = np.random.default_rng(seed)

    @staticmethod
    def zeros(*shape: Any, dtype: DTypeLike = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def ones(*shape: Any, dtype: DTypeLike = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def full(shape: Any, value: Scalar, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        if dtype is None:
            dtype = np.float32 if isinstance(value, float) else np.asarray(value).dtype
        return Tensor(np.full(_shape_arg((shape,)), value, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: DTypeLike = np.float32, requires_grad: bool = False) -> Tensor:
        return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)

    @staticmethod
    def arange(start: Scalar, stop: Scalar | None = None, step: Scalar = 1, dtype: DTypeLike = None,
               requires_grad: bool = False) -> Tensor:
        if dtype is None:
            is_float = any(isinstance(v, float) for v in (start, stop, step))
            dtype = np.float32 if is_float else np.int64
        array = np.arange(start, stop, step, dtype=dtype) if stop is not None else np.arange(start, dtype=dtype)
        return Tensor(array, requires_grad=requires_grad)

    @staticmethod
    def rand(*shape: Any, dtype: DTypeLike = np.float32, requires_grad: bool = False) -> Tensor:
        """Uniform on [0, 1)."""
        return Tensor(_rng.random(_shape_arg(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)

    @staticmethod
    def randn(*shape: Any, dtype: DTypeLike = np.float32, requires_grad: bool = False) -> Tensor:
        """Standard normal."""
        return Tensor(_rng.standard_normal(_shape_arg(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)

    @staticmethod
    def uniform(*shape: Any, low: float = 0.0, high: float = 1.0, dtype: DTypeLike = np.float32,
                requires_grad: bool = False) -> Tensor:
        """Uniform on [low, high)."""
        array = _rng.random(_shape_arg(shape), dtype=_float_dtype(dtype)) * (high - low) + low
        return Tensor(array.astype(dtype, copy=False), requires_grad=requires_grad)

    @staticmethod
    def zeros_like(t: Tensor, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)

    @staticmethod
    def ones_like(t: Tensor, dtype: DTypeLike = None, requires_grad: bool = False) -> Tensor:
        return Tensor(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)

    # ------------------------------------------------------------------ binary operators
    def _operand(self, other: Any) -> Tensor:
        """Turn the other side of an operator into a Tensor; Python scalars take our dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.generic):
            other = other.item()
        if isinstance(other, (int, float)):
            dtype = self.data.dtype
            if isinstance(other, float) and dtype.kind != "f":
                dtype = _FLOAT32
            elif not isinstance(other, bool) and dtype.kind == "b":
                dtype = np.dtype(np.int64) if isinstance(other, int) else _FLOAT32
            return Tensor._wrap(np.array(other, dtype=dtype))
        if type(other) is np.ndarray and other.dtype.kind in "biuf":
            return Tensor._wrap(other)
        if isinstance(other, (np.ndarray, list, tuple)):
            return Tensor(other)
        raise TypeError(f"unsupported operand type for Tensor: {type(other).__name__}")

    def _binary(self, op: type[Function], other: Any, name: str, reflected: bool = False) -> Tensor:
        if type(other) is not Tensor:
            if type(other) is float and self.data.dtype.kind == "f":
                # the common case, made fast: a 0-d constant of our own dtype needs no promotion and no expand
                other = Tensor._wrap(np.array(other, dtype=self.data.dtype))
                return op.apply(other, self) if reflected else op.apply(self, other)
            other = self._operand(other)
        a, b = (other, self) if reflected else (self, other)
        if a.data.dtype is not b.data.dtype and a.data.dtype != b.data.dtype:  # (`is`: numpy's dtypes are shared)
            a, b = _promote(a, b)
        if a.data.shape != b.data.shape:
            if not ((b.data.ndim == 0 and not b.requires_grad) or (a.data.ndim == 0 and not a.requires_grad)):
                shape = broadcast_shape(a.data.shape, b.data.shape, name)
                if autograd.is_grad_enabled():
                    a, b = _expand_for_grad(a, shape), _expand_for_grad(b, shape)
        return op.apply(a, b)

    def __add__(self, other: Any) -> Tensor:
        return self._binary(ops.AddFn, other, "add")

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(ops.AddFn, other, "add", reflected=True)

    def __sub__(self, other: Any) -> Tensor:
        return self._binary(ops.SubFn, other, "sub")

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(ops.SubFn, other, "sub", reflected=True)

    def __mul__(self, other: Any) -> Tensor:
        return self._binary(ops.MulFn, other, "mul")

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(ops.MulFn, other, "mul", reflected=True)

    def __truediv__(self, other: Any) -> Tensor:
        return self._to_float()._binary(ops.DivFn, other, "div")

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._to_float()._binary(ops.DivFn, other, "div", reflected=True)

    def __pow__(self, other: Any) -> Tensor:
        return self._binary(ops.PowFn, other, "pow")

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(ops.PowFn, other, "pow", reflected=True)

    def __matmul__(self, other: Any) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return self._operand(other).matmul(self)

    def __neg__(self) -> Tensor:
        return ops.NegFn.apply(self)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise max; at ties each side gets half the gradient (as PyTorch)."""
        return self._binary(ops.MaximumFn, other, "maximum")

    def minimum(self, other: Any) -> Tensor:
        """Elementwise min; at ties each side gets half the gradient (as PyTorch)."""
        return self._binary(ops.MinimumFn, other, "minimum")

    def _to_float(self) -> Tensor:
        return self if self.data.dtype.kind == "f" else self.astype(np.float32)

    # comparisons: boolean results, no gradient, no graph
    def _compare(self, fn: Callable, other: Any, name: str) -> Tensor:
        other_data = other.data if isinstance(other, Tensor) else other
        if isinstance(other_data, np.ndarray) and other_data.shape != self.data.shape:
            broadcast_shape(self.data.shape, other_data.shape, name)
        return Tensor._wrap(fn(self.data, other_data))

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(np.less, other, "lt")

    def __le__(self, other: Any) -> Tensor:
        return self._compare(np.less_equal, other, "le")

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(np.greater, other, "gt")

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(np.greater_equal, other, "ge")

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(np.equal, other, "eq")

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(np.not_equal, other, "ne")

    # ------------------------------------------------------------------ elementwise functions
    def exp(self) -> Tensor:
        return ops.ExpFn.apply(self._to_float())

    def log(self) -> Tensor:
        return ops.LogFn.apply(self._to_float())

    def sqrt(self) -> Tensor:
        return self._to_float() ** 0.5

    def relu(self) -> Tensor:
        return ops.ReluFn.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.SigmoidFn.apply(self._to_float())

    def tanh(self) -> Tensor:
        return ops.TanhFn.apply(self._to_float())

    def abs(self) -> Tensor:
        return ops.AbsFn.apply(self)

    def __abs__(self) -> Tensor:
        return ops.AbsFn.apply(self)

    def neg(self) -> Tensor:
        return ops.NegFn.apply(self)

    def square(self) -> Tensor:
        return self * self

    def rsqrt(self) -> Tensor:
        """1 / √x."""
        return self._to_float() ** -0.5

    def sin(self) -> Tensor:
        return ops.SinFn.apply(self._to_float())

    def cos(self) -> Tensor:
        return ops.CosFn.apply(self._to_float())

    def log1p(self) -> Tensor:
        """ln(1 + x), exact where x is too small for 1 + x to tell it from 1."""
        return ops.Log1pFn.apply(self._to_float())

    def expm1(self) -> Tensor:
        """eˣ - 1, exact for tiny x."""
        return ops.Expm1Fn.apply(self._to_float())

    def erf(self) -> Tensor:
        """The error function, accurate to float64 rounding (the exact GELU is x · ½(1 + erf(x/√2)))."""
        return ops.ErfFn.apply(self._to_float())

    def sign(self) -> Tensor:
        """-1, 0 or 1; its gradient is zero (as PyTorch's)."""
        if self.data.dtype.kind == "b":
            return Tensor._wrap(self.data.copy())
        return ops.SignFn.apply(self) if self.requires_grad else Tensor._wrap(np.sign(self.data))

    # method forms of the operators, with PyTorch's extra arguments
    def add(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        """self + alpha · other."""
        return self + (other if alpha == 1 else self._operand(other) * alpha)

    def sub(self, other: Any, *, alpha: Scalar = 1) -> Tensor:
        """self - alpha · other."""
        return self - (other if alpha == 1 else self._operand(other) * alpha)

    def mul(self, other: Any) -> Tensor:
        return self * other

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """self / other; rounding_mode 'trunc' or 'floor' rounds the quotient (and has no gradient, as PyTorch)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
        other = self._operand(other)
        a, b = _promote(self, other) if self.dtype != other.dtype else (self, other)
        broadcast_shape(a.shape, b.shape, "div")
        if rounding_mode == "floor":  # Python's //: 1.0 // 0.1 is 9.0 (0.1 is a little more than 1/10)
            return Tensor._wrap(np.asarray(np.floor_divide(a.data, b.data)))
        if a.dtype.kind == "f":
            return Tensor._wrap(np.asarray(np.trunc(np.true_divide(a.data, b.data))))
        magnitude = np.floor_divide(np.abs(a.data), np.abs(b.data))  # exact for integers of any size
        return Tensor._wrap(np.asarray(np.where((a.data < 0) != (b.data < 0), -magnitude, magnitude)))

    def pow(self, exponent: Any) -> Tensor:
        return self**exponent

    def clip(self, min: Scalar | None = None, max: Scalar | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient passes where min ≤ x ≤ max (PyTorch's clamp)."""
        if min is None and max is None:
            raise ValueError("clip: at least one of min and max must be given")
        return ops.ClipFn.apply(self, low=min, high=max)

    clamp = clip

    def reciprocal(self) -> Tensor:
        return 1.0 / self._to_float()

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Tensor:
        """Elementwise `a if condition else b`, broadcasting all three."""
        cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
        if cond.dtype != np.bool_:
            cond = cond.astype(bool)
        if not isinstance(a, Tensor):
            if not isinstance(b, Tensor):
                a = Tensor(a)
            else:
                a = b._operand(a)
        b = a._operand(b)
        if a.data.dtype != b.data.dtype:
            a, b = _promote(a, b)
        shape = broadcast_shape(broadcast_shape(cond.shape, a.shape, "where"), b.shape, "where")
        if autograd.is_grad_enabled():
            a, b = _expand_for_grad(a, shape), _expand_for_grad(b, shape)
        return ops.WhereFn.apply(Tensor._wrap(cond), a, b)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None) -> Tensor:
        return ops.SumFn.apply(self, axis=_axes(self, axis, dim, "sum"), keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None) -> Tensor:
        """The largest value; the gradient is split evenly among ties."""
        return ops.MaxFn.apply(self, axis=_nonempty_axes(self, axis, dim, "max"), keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None) -> Tensor:
        """The smallest value; the gradient is split evenly among ties."""
        return ops.MinFn.apply(self, axis=_nonempty_axes(self, axis, dim, "min"), keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None) -> Tensor:
        axes = _axes(self, axis, dim, "mean")
        count = math.prod(self.shape[i] for i in axes)
        return self._to_float().sum(axes, keepdims) * (1.0 / count if count else math.nan)

    def var(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, correction: int = 1) -> Tensor:
        """Variance, divided by N - correction (Bessel's correction by default, as PyTorch)."""
        axes = _axes(self, axis, dim, "var")
        count = math.prod(self.shape[i] for i in axes)
        centered = self - self.mean(axes, keepdims=True)
        dof = count - correction
        return (centered * centered).sum(axes, keepdims) * (1.0 / dof if dof > 0 else math.inf)

    def std(self, axis: Any = None, keepdims: bool = False, *, dim: Any = None, correction: int = 1) -> Tensor:
        return self.var(axis, keepdims, dim=dim, correction=correction).sqrt()

    def argmax(self, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None) -> Tensor:
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=_one_axis(self, axis, dim), keepdims=keepdims)))

    def argmin(self, axis: int | None = None, keepdims: bool = False, *, dim: int | None = None) -> Tensor:
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=_one_axis(self, axis, dim), keepdims=keepdims)))

    def prod(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None) -> Tensor:
        """The product along `dim` (of everything when None), as a tree of pairwise multiplications.

        Multiplying halves (x₀·x₁, x₂·x₃, ...) until one is left takes log₂ n steps
        and gives the gradient Π_{j≠i} x_j exactly, even where some x are zero (the
        shortcut y / x_i divides by zero there), and its second derivative for free.
        """
        dim = axis if dim is None else dim
        x = self if dim is not None else self.reshape(-1)
        if x.ndim == 0:
            return x
        d = _axis(dim, x.ndim, "prod") if dim is not None else 0
        if x.dtype.kind in "biu" and x.dtype != np.uint64:  # PyTorch's prod of bools and integers is int64
            x = x.astype(np.int64)
        if x.shape[d] == 0:
            return Tensor(np.ones(x.shape[:d] + ((1,) if keepdim else ()) + x.shape[d + 1:], dtype=x.dtype))
        lead = (slice(None),) * d
        while x.shape[d] > 1:
            n = x.shape[d]
            pairs = x[(*lead, slice(0, n - 1, 2))] * x[(*lead, slice(1, n, 2))]
            x = Tensor.cat([pairs, x[(*lead, slice(n - 1, n))]], axis=d) if n % 2 else pairs
        return x if keepdim and dim is not None else x.squeeze(d)

    def cumsum(self, dim: int, *, axis: int | None = None) -> Tensor:
        """Running sums along `dim`: y_i = x_0 + ... + x_i."""
        d = _axis(dim if axis is None else axis, self.ndim, "cumsum")
        x = self.astype(np.int64) if self.dtype.kind == "b" else self
        return ops.CumsumFn.apply(x, axis=d) if self.ndim else x

    def norm(self, p: Any = "fro", dim: Any = None, keepdim: bool = False) -> Tensor:
        """The p-norm over `dim` (all elements when None): p = 1, 2 ('fro'), inf, -inf, 0 or any other number.

        At a zero vector the 2-norm has no derivative; the gradient there is 0, as
        PyTorch's (`sqrt` alone would give 0 · ∞ = nan).
        """
        if p == "fro":
            p = 2
        if not isinstance(p, (int, float)) or isinstance(p, bool):
            raise ValueError(f"norm: p must be a number, 'fro', inf or -inf, got {p!r}")
        x = self._to_float()
        axes = _axes(x, dim, None, "norm")
        if p == math.inf:
            return x.abs().max(axes, keepdim)
        if p == -math.inf:
            return x.abs().min(axes, keepdim)
        if p == 0:
            return (x != 0).astype(x.dtype).sum(axes, keepdim)
        if p == 1:
            return x.abs().sum(axes, keepdim)
        if p == 2:
            powered = x * x
        else:  # |x|ᵖ: at x = 0 its slope is 0 for p > 1 and infinite for p < 1, where PyTorch's gradient is 0
            zero_x = x.data == 0
            powered = Tensor.where(zero_x, 0.0, Tensor.where(zero_x, 1.0, x.abs()) ** p) if zero_x.any() else \
                x.abs() ** p
        total = powered.sum(axes, keepdim)
        zero = total.data == 0
        if not zero.any():
            return total ** (1.0 / p)
        return Tensor.where(zero, 0.0, Tensor.where(zero, 1.0, total) ** (1.0 / p))

    # ------------------------------------------------------------------ softmax family
    def logsumexp(self, axis: Any = -1, keepdims: bool = False, *, dim: Any = None) -> Tensor:
        """log Σ exp(x), shifted by the max so that no exp overflows."""
        axes = _nonempty_axes(self, axis, dim, "logsumexp")
        shift = np.max(self.data, axis=axes, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0)
        out = (self - shift).exp().sum(axes, keepdims=True).log() + shift
        return out if keepdims else out.squeeze(axes)

    def softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        """exp(x) / Σ exp(x); the max is subtracted first (softmax does not change under a shift)."""
        axes = _nonempty_axes(self, axis, dim, "softmax")
        e = (self - np.max(self.data, axis=axes, keepdims=True)).exp()
        return e / e.sum(axes, keepdims=True)

    def log_softmax(self, axis: int = -1, *, dim: int | None = None) -> Tensor:
        """x - logsumexp(x): stable even for logits of 1e4."""
        axes = _nonempty_axes(self, axis, dim, "log_softmax")
        return self - self.logsumexp(axes, keepdims=True)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape: Any) -> Tensor:
        return ops.ReshapeFn.apply(self, shape=_resolve_shape(self, _shape_arg(shape), "reshape"))

    view = reshape

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = _axis(start_dim, self.ndim, "flatten"), _axis(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        return self.reshape(*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])

    def permute(self, *dims: Any) -> Tensor:
        dims = tuple(_axis(d, self.ndim, "permute") for d in _shape_arg(dims))
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the axes of a tensor of shape {self.shape}")
        return ops.PermuteFn.apply(self, dims=dims)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        dims = list(range(self.ndim))
        a, b = _axis(dim0, self.ndim, "transpose"), _axis(dim1, self.ndim, "transpose")
        dims[a], dims[b] = dims[b], dims[a]
        return ops.PermuteFn.apply(self, dims=tuple(dims))

    def expand(self, *shape: Any) -> Tensor:
        """Broadcast to `shape` without copying (-1 keeps a size); new axes go in front."""
        shape = _shape_arg(shape)
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: cannot expand shape {self.shape} to fewer dimensions {shape}")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
        for i, s in enumerate(self.shape):
            if s != shape[lead + i] and s != 1:
                raise ValueError(f"expand: cannot expand shape {self.shape} to {shape}")
        return self if shape == self.shape else ops.ExpandFn.apply(self, shape=shape)

    def squeeze(self, axis: Any = None, *, dim: Any = None) -> Tensor:
        """Drop size-1 axes (all of them, or those in `axis` that have size 1, as PyTorch)."""
        axes = _axes(self, axis, dim, "squeeze")
        return self.reshape(*[s for i, s in enumerate(self.shape) if not (i in axes and s == 1)])

    def unsqueeze(self, axis: int | None = None, *, dim: int | None = None) -> Tensor:
        axis = axis if dim is None else dim  # t.unsqueeze(dim=0) is the PyTorch spelling
        if axis is None:
            raise TypeError("unsqueeze: missing the axis (or dim) argument")
        a = _axis(axis, self.ndim + 1, "unsqueeze")
        return self.reshape(*self.shape[:a], 1, *self.shape[a:])

    def pad(self, pad_width: Any, value: float = 0.0) -> Tensor:
        """numpy-style padding: one (before, after) pair per axis, or one int for every side."""
        if isinstance(pad_width, int):
            pad_width = [(pad_width, pad_width)] * self.ndim
        pairs = tuple((int(p[0]), int(p[1])) for p in pad_width)
        if len(pairs) != self.ndim or any(p < 0 for pair in pairs for p in pair):
            raise ValueError(f"pad: need {self.ndim} non-negative (before, after) pairs for shape {self.shape}, "
                             f"got {pad_width}")
        return ops.PadFn.apply(self, pad_width=pairs, value=value)

    def flip(self, *dims: Any) -> Tensor:
        """Reverse the order of the elements along each of `dims` (a view: a slice with step -1)."""
        listed = [_axis(d, self.ndim, "flip") for d in _shape_arg(dims)] if self.ndim else []
        if len(set(listed)) != len(listed):
            raise ValueError(f"flip: dim {dims} appears more than once")
        axes = set(listed)
        return self[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(self.ndim))]

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        """Shift the elements along `dims` by `shifts`, wrapping around (flattened first when dims is None)."""
        if dims is None:
            if not isinstance(shifts, int):
                raise ValueError(f"roll: with dims=None, shifts must be one int, got {shifts!r}")
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        shifts, dims = (shifts,) if isinstance(shifts, int) else tuple(shifts), (dims,) if isinstance(
            dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
        x = self
        for shift, dim in zip(shifts, dims):
            d = _axis(dim, self.ndim, "roll")
            n = x.shape[d]
            s = shift % n if n else 0
            if s:
                lead = (slice(None),) * d
                x = Tensor.cat([x[(*lead, slice(n - s, n))], x[(*lead, slice(0, n - s))]], axis=d)
        return x

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j][k] = self[index[i][j][k]][j][k] for dim = 0 (and so on): PyTorch's gather.

        `index` has self's number of dimensions and is no larger than self outside
        `dim`. Built as integer-array indexing (the index along `dim`, a plain
        arange along every other axis), whose backward scatter-adds.
        """
        idx = index.data if isinstance(index, Tensor) else np.asarray(index)
        d = _axis(dim, max(self.ndim, 1), "gather")
        if idx.dtype.kind not in "iu":
            raise TypeError(f"gather: index must be an integer tensor, got dtype {idx.dtype}")
        if idx.ndim != self.ndim:
            raise ValueError(f"gather: index has {idx.ndim} dimensions, input has {self.ndim} (shape {self.shape})")
        small = all(s <= t for i, (s, t) in enumerate(zip(idx.shape, self.shape)) if i != d)
        if not small:
            raise ValueError(f"gather: index of shape {idx.shape} is larger than input {self.shape} outside dim {d}")
        if idx.size and (idx.min() < 0 or idx.max() >= max(self.shape[d:d + 1] or (1,))):
            bad = idx[(idx < 0) | (idx >= (self.shape[d] if self.ndim else 1))].flat[0]
            raise IndexError(f"gather: index {int(bad)} is out of bounds for dimension {d} with size "
                             f"{self.shape[d] if self.ndim else 1}")
        if self.ndim == 0:
            return self.reshape(()) if idx.size else self
        key = list(np.indices(idx.shape, sparse=True))
        key[d] = idx
        return ops.GatherFn.apply(self, key=tuple(key))

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """`value` where `mask` is True, self elsewhere (mask broadcasts to self's shape)."""
        m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
        if broadcast_shape(m.shape, self.shape, "masked_fill") != self.shape:
            raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the input's {self.shape}")
        if isinstance(value, Tensor) and value.ndim != 0:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        out = Tensor.where(m, self._operand(value).astype(self.dtype), self)
        return out

    def __getitem__(self, key: Any) -> Tensor:
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(k.data if isinstance(k, Tensor) else np.asarray(k) if isinstance(k, list) else k for k in key)
        advanced = any(isinstance(k, np.ndarray) for k in key)
        op = ops.GatherFn if advanced else ops.SliceFn
        try:
            return op.apply(self, key=key)
        except (IndexError, TypeError, ValueError) as e:
            raise IndexError(f"index: {e} (indexing a tensor of shape {self.shape})") from None

    @staticmethod
    def cat(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
        tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
        if not tensors:
            raise ValueError("cat: expected a non-empty list of tensors")
        first = tensors[0]
        a = _axis(axis if dim is None else dim, first.ndim, "cat")
        for t in tensors[1:]:
            if t.ndim != first.ndim or any(s != u for i, (s, u) in enumerate(zip(t.shape, first.shape)) if i != a):
                raise ValueError(f"cat: shapes {first.shape} and {t.shape} differ outside axis {a}")
        dtype = first.dtype
        for t in tensors[1:]:
            dtype = _result_dtype(dtype, t.dtype)
        return ops.CatFn.apply(*[t.astype(dtype) for t in tensors], axis=a)

    @staticmethod
    def stack(tensors: Sequence[Tensor], axis: int = 0, *, dim: int | None = None) -> Tensor:
        tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
        if not tensors:
            raise ValueError("stack: expected a non-empty list of tensors")
        for t in tensors[1:]:
            if t.shape != tensors[0].shape:
                raise ValueError(f"stack: all tensors must have one shape, got {tensors[0].shape} and {t.shape}")
        a = _axis(axis if dim is None else dim, tensors[0].ndim + 1, "stack")
        return Tensor.cat([t.unsqueeze(a) for t in tensors], axis=a)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, other: Any) -> Tensor:
        """numpy's matmul rules: 1-D operands are promoted and squeezed, batch axes broadcast."""
        a, b = self, self._operand(other)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both arguments need at least 1 dimension, got shapes {a.shape} and {b.shape}")
        if a.data.dtype != b.data.dtype:
            a, b = _promote(a, b)
        a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
        b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
        if a2.shape[-1] != b2.shape[-2]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                             f"({a2.shape[-2]}x{a2.shape[-1]} and {b2.shape[-2]}x{b2.shape[-1]})")
        if b2.ndim == 2 and a2.ndim > 2:  # (..., M, K) @ (K, N): one big GEMM, not one per batch
            out = ops.MatmulFn.apply(a2.reshape(-1, a2.shape[-1]), b2).reshape(*a2.shape[:-1], b2.shape[-1])
        else:
            if a2.ndim > 2 or b2.ndim > 2:
                try:
                    batch = broadcast_shape(a2.shape[:-2], b2.shape[:-2], "matmul")
                except ValueError:
                    raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied (batch "
                                     f"dimensions {a2.shape[:-2]} and {b2.shape[:-2]} do not broadcast)") from None
                if autograd.is_grad_enabled():
                    a2 = _expand_for_grad(a2, batch + a2.shape[-2:])
                    b2 = _expand_for_grad(b2, batch + b2.shape[-2:])
            out = ops.MatmulFn.apply(a2, b2)
        if a.ndim == 1:
            out = out.squeeze(-2)
        if b.ndim == 1:
            out = out.squeeze(-1)
        return out

    def dot(self, other: Any) -> Tensor:
        """The inner product of two 1-D tensors."""
        other = self._operand(other)
        if self.ndim != 1 or other.ndim != 1:
            raise ValueError(f"dot: expected two 1-D tensors, got shapes {self.shape} and {other.shape}")
        return self.matmul(other)

    # ------------------------------------------------------------------ CNN (conv/)
    def conv2d(self, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1, groups: int = 1) -> Tensor:
        """2-D cross-correlation of an NCHW input with (C_out, C_in/groups, kh, kw) filters.

        Sizes are ints or pairs; `padding` may also be 'valid' or 'same' (stride 1), as in PyTorch.
        """
        from . import conv  # conv/ builds on Tensor: imported when first used

        return conv.conv2d(self, weight, bias, stride, padding, dilation, groups)

    def max_pool2d(self, kernel_size: Any = 2, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                   ceil_mode: bool = False, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Max over each window (stride defaults to the kernel); ties share the gradient evenly.

        The arguments are PyTorch's; with return_indices, also where each maximum is (int64, flat H·W index).
        """
        from . import conv  # conv/ builds on Tensor: imported when first used

        return conv.max_pool2d(self, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

    def avg_pool2d(self, kernel_size: Any = 2, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                   count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
        """Mean over each window; padded zeros count in the divisor unless count_include_pad=False.

        The arguments are PyTorch's (ceil_mode, count_include_pad, divisor_override: see `conv.avg_pool2d`).
        """
        from . import conv  # conv/ builds on Tensor: imported when first used

        return conv.avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def unfold2d(self, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
        """im2col: (N, C, H, W) → (N, C·kh·kw, L), like `torch.nn.functional.unfold`."""
        from . import conv  # conv/ builds on Tensor: imported when first used

        return conv.unfold2d(self, kernel_size, stride, padding, dilation)

    def fold2d(self, output_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
               dilation: Any = 1) -> Tensor:
        """col2im: (N, C·kh·kw, L) → (N, C, H, W), overlaps summed, like `torch.nn.functional.fold`."""
        from . import conv  # conv/ builds on Tensor: imported when first used

        return conv.fold2d(self, output_size, kernel_size, stride, padding, dilation)


class _HookHandle:
    """Returned by `register_hook`; `remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)


autograd.register_tensor_class(Tensor)


# ---------------------------------------------------------------------- helpers
_TYPE_NAMES = {np.dtype(np.float32): "torch.FloatTensor", np.dtype(np.float64): "torch.DoubleTensor",
               np.dtype(np.int64): "torch.LongTensor", np.dtype(np.int32): "torch.IntTensor",
               np.dtype(np.bool_): "torch.BoolTensor", np.dtype(np.uint8): "torch.ByteTensor"}


class Device:
    """Where tensors live, as `torch.device`. numpy arrays live in the CPU's memory, so "cpu" is the one there is."""

    def __init__(self, type: Any, index: int | None = None):
        name = type.type if isinstance(type, Device) else str(type)
        check_device(name, "device")
        self.type, self.index = name.split(":")[0], index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (Device, str)) and str(other).split(":")[0] == self.type

    def __hash__(self) -> int:
        return hash(self.type)

    def __str__(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return f"device(type={self.type!r})"


def check_device(device: Any, op: str) -> bool:
    """True for the CPU ("cpu", "cpu:0", device("cpu")); a clear error for any other device; False for non-devices."""
    name = device.type if isinstance(device, Device) else device
    if not isinstance(name, str):
        return False
    if name.split(":")[0] == "cpu":
        return True
    known = ("cuda", "mps", "xpu", "meta", "hip", "xla", "vulkan", "mkldnn", "opengl", "opencl", "ideep", "ve",
             "fpga", "ort", "mtia", "hpu", "lazy", "ipu", "privateuseone")
    if name.split(":")[0] in known:
        raise RuntimeError(f"{op}: device {name!r} is not available: tinygrad_cnn computes with numpy on the CPU "
                           "only (use 'cpu')")
    try:
        np.dtype(name)
    except TypeError:
        raise RuntimeError(f"{op}: {name!r} is neither a device nor a dtype (tinygrad_cnn knows only 'cpu')") from None
    return False


CPU = Device("cpu")


def to_arguments(args: tuple, kwargs: dict) -> np.dtype | None:
    """The dtype asked for by `.to(...)`'s arguments (None: keep it); any device but the CPU is an error."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    for arg in (*args, kwargs.pop("device", None)):
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif arg is not None and not check_device(arg, "to"):
            dtype = arg
    kwargs.pop("non_blocking", None), kwargs.pop("copy", None), kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
    return None if dtype is None else np.dtype(dtype)


def broadcast_shape(a: tuple, b: tuple, op: str) -> tuple:
    """numpy's broadcasting rule, with an error that names the op and both shapes."""
    if len(a) < len(b):
        a = (1,) * (len(b) - len(a)) + a
    elif len(b) < len(a):
        b = (1,) * (len(a) - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{op}: shapes {a} and {b} cannot be broadcast together")
    return tuple(out)


def _expand_for_grad(t: Tensor, shape: tuple) -> Tensor:
    return ops.ExpandFn.apply(t, shape=shape) if t.requires_grad and t.data.shape != shape else t


_promotions: dict = {}


def _result_dtype(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion: a float beats an integer; otherwise the wider type wins."""
    key = (a, b)
    if key not in _promotions:
        if a.kind == "f" and b.kind != "f":
            _promotions[key] = a
        elif b.kind == "f" and a.kind != "f":
            _promotions[key] = b
        else:
            _promotions[key] = np.promote_types(a, b)
    return _promotions[key]


def _promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    dtype = _result_dtype(a.data.dtype, b.data.dtype)
    return _cast_operand(a, dtype), _cast_operand(b, dtype)


def _cast_operand(t: Tensor, dtype: np.dtype) -> Tensor:
    if t.data.dtype == dtype or (t.data.dtype.kind == "b" and dtype.kind == "f"):
        return t  # numpy multiplies a float by a bool mask without a copy
    return ops.CastFn.apply(t, dtype=dtype)


def _shape_arg(shape: tuple) -> tuple:
    """Accept f(2, 3), f((2, 3)) and f([2, 3])."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        return tuple(operator.index(s) for s in shape)  # ints only: 2.5 or "2" is a TypeError, as in PyTorch
    except TypeError:
        raise TypeError(f"a shape must be ints, got {shape}") from None


def _resolve_shape(t: Tensor, shape: tuple, op: str) -> tuple:
    if -1 in shape:
        if shape.count(-1) > 1:
            raise ValueError(f"{op}: only one dimension can be -1, got {shape}")
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or t.numel() % known:
            raise ValueError(f"{op}: cannot reshape a tensor of shape {t.shape} into {shape}")
        shape = tuple(t.numel() // known if s == -1 else s for s in shape)
    if math.prod(shape) != t.numel() or any(s < 0 for s in shape):
        raise ValueError(f"{op}: cannot reshape a tensor of shape {t.shape} ({t.numel()} elements) into {shape}")
    return shape


class AxisError(ValueError, IndexError):
    """An axis out of range (both a ValueError and an IndexError, like numpy's)."""


def _axis(axis: int, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: an axis must be an int, got {axis!r}")
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise AxisError(f"{op}: axis {axis} is out of range for a tensor of {ndim} dimensions")
    return int(axis) % ndim if ndim else 0


def _axes(t: Tensor, axis: Any, dim: Any, op: str) -> tuple:
    """Normalise `axis` (int, tuple, None = all, may be negative; `dim` is an alias) to sorted ints."""
    if dim is not None:
        axis = dim
    ndim = t.data.ndim
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(sorted({_axis(a, ndim, op) for a in axis}))
        if len(axes) != len(axis):
            raise ValueError(f"{op}: repeated axis in {axis}")
        return axes if ndim else ()
    return (_axis(axis, ndim, op),) if ndim else ()


def _nonempty_axes(t: Tensor, axis: Any, dim: Any, op: str) -> tuple:
    axes = _axes(t, axis, dim, op)
    if any(t.shape[i] == 0 for i in axes) or (t.numel() == 0 and not axes):
        raise ValueError(f"{op}: cannot reduce over an empty axis (shape {t.shape})")
    return axes


def _one_axis(t: Tensor, axis: Any, dim: Any, op: str = "argmax") -> int | None:
    axis = axis if dim is None else dim
    if t.numel() == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor (shape {t.shape})")
    return None if axis is None else _axis(axis, t.ndim, op)


def _float_dtype(dtype: DTypeLike) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"random tensors are float32 or float64, not {dtype}")
    return dtype
