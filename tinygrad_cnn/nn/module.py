"""`Module`: the base class of every layer and model, shaped like `torch.nn.Module`.

A module is a tree. Assigning an attribute is what builds it::

    self.fc = Linear(784, 10)                        # a Module     -> a child
    self.weight = Tensor(w, requires_grad=True)       # grad Tensor  -> a parameter
    self.register_buffer("running_mean", Tensor(m))  # state that is not trained -> a buffer

Registered values also stay in the instance ``__dict__``, so reading
``self.weight`` in `forward` is a plain attribute lookup (PyTorch's
``__getattr__`` fallback is the slow path we avoid). Qualified names
(``features.0.weight``) come from walking the tree, in registration order:
they are the keys of `state_dict`, identical to PyTorch's for the same
architecture, so checkpoints move between the two.

Calling a module pushes a *scope entry* (`ModuleScope`: path, label, module)
onto the engine's scope stack while `forward` runs; every op recorded inside
remembers the stack in ``ctx.scope``, which is how a graph drawing knows that a
matmul belongs to ``classifier.1``. Paths are relative to the outermost module
being called, computed once per tree and cached until the tree changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .. import autograd
from ..autograd import no_grad, scope
from ..tensor import Tensor, to_arguments

# Bumped whenever any module registers or drops a parameter or child: cached
# scope paths are valid while it stays put (after construction, it does).
_tree_version = 0
# id(module) -> ModuleScope for the tree of the module whose call is running; None between calls.
_entries: dict[int, ModuleScope] | None = None


class ModuleScope:
    """What `Module.__call__` pushes on the scope stack: who is running `forward`.

    `path` is the qualified name relative to the outermost module being called
    ("" for it, "features.0" for a grandchild); `label` is the module's one-line
    description, e.g. ``Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))``.
    The module itself is held weakly so a cached entry never keeps a model alive.
    """

    __slots__ = ("_label", "_module", "path")

    def __init__(self, path: str, module: Module):
        self.path = path
        self._module = weakref.ref(module)
        self._label: str | None = None

    @property
    def module(self) -> Module:
        return self._module()  # type: ignore[return-value]

    @property
    def label(self) -> str:
        if self._label is None:
            module = self.module
            self._label = f"{type(module).__name__}({module.extra_repr()})" if module is not None else "?"
        return self._label

    def __repr__(self) -> str:
        return f"ModuleScope(path={self.path!r}, label={self.label!r})"


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` could not match (PyTorch returns the same pair)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class for layers and models: subclass it, assign layers in `__init__`, write `forward`."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    # ------------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run `forward` inside this module's scope (see the module docstring)."""
        entries = _entries
        if entries is None:
            return self._root_call(args, kwargs)
        entry = entries.get(id(self))
        if entry is None:
            entry = _stray_entry(self)
        with scope(entry):
            return self.forward(*args, **kwargs)

    def _root_call(self, args: tuple, kwargs: dict) -> Any:
        """The outermost call: make this module's tree the one paths are relative to."""
        global _entries
        _entries = entries = self._scope_entries()
        try:
            with scope(entries[id(self)]):
                return self.forward(*args, **kwargs)
        finally:
            _entries = None

    def _scope_entries(self) -> dict[int, ModuleScope]:
        cache = self.__dict__.get("_scope_cache")
        if cache is not None and cache[0] == _tree_version:
            return cache[1]
        entries = {id(m): ModuleScope(path, m) for path, m in self.named_modules()}
        for name, p in self.named_parameters():
            if p.name is None:  # label parameters for graph drawings; never overwrite a user's name
                p.name = name
        object.__setattr__(self, "_scope_cache", (_tree_version, entries))
        return entries

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        global _tree_version
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() was called "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")
        params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
        if isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
            _tree_version += 1
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r} (Tensor or None expected)")
            buffers[name] = value
        elif isinstance(value, Tensor) and value.requires_grad:
            modules.pop(name, None)
            params[name] = value
            _tree_version += 1
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} (a Tensor with "
                                "requires_grad=True or None expected; `del` the attribute first to replace it)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r} (Module or None "
                                "expected; `del` the attribute first to replace it)")
            modules[name] = None
            _tree_version += 1
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        global _tree_version
        for registry in (self._parameters, self._buffers, self._modules):
            if registry.pop(name, _MISSING) is not _MISSING:
                _tree_version += 1
        object.__delattr__(self, name)

    def __getstate__(self) -> dict:
        """Pickling and deepcopy skip the scope cache (it is keyed by object ids)."""
        state = self.__dict__.copy()
        state.pop("_scope_cache", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register state that is saved and loaded but not trained (BatchNorm's running statistics).

        A non-persistent buffer moves with the module but stays out of `state_dict`.
        """
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot register a buffer before Module.__init__() was called")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: attribute {name!r} already exists as a parameter or module")
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name: str, param: Tensor | None) -> None:
        """Register `param` (or None: a declared but absent parameter, like `bias=False`)."""
        if param is not None and not (isinstance(param, Tensor) and param.requires_grad):
            raise TypeError(f"register_parameter: {name!r} must be a Tensor with requires_grad=True or None")
        global _tree_version
        self._parameters[name] = param
        _tree_version += 1
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child under `name` (what attribute assignment does, for computed names)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        global _tree_version
        self._modules[name] = module
        _tree_version += 1
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------------ walking the tree
    def named_modules(self, memo: set[int] | None = None, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, pre-order, each once, with its qualified name."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, kind: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        tree = self.named_modules() if recurse else iter([("", self)])
        for prefix, module in tree:
            for name, t in module.__dict__[kind].items():
                if t is not None and id(t) not in seen:  # a shared tensor is listed once
                    seen.add(id(t))
                    yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(qualified name, parameter) pairs in registration order, as PyTorch lists them."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, p in self.named_parameters(recurse):
            yield p

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse):
            yield b

    def num_parameters(self, only_trainable: bool = False) -> int:
        """The number of scalar weights (counting a shared parameter once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call `fn` on every descendant, then on this module (for custom initialisation)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout drops, BatchNorm uses batch statistics); `eval()` undoes it."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget accumulated gradients (set them to None, as PyTorch's default)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter; frozen ones stay in `parameters()`."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # ------------------------------------------------------------------ state
    def to(self, *args: Any, **kwargs: Any) -> Module:
        """`model.to(device)` (the CPU is the one there is) or `model.to(dtype)`: floating parameters and
        buffers take the dtype, in place, as in PyTorch. Returns the module."""
        dtype = to_arguments(args, kwargs)
        if dtype is not None and dtype.kind != "f":
            raise TypeError(f"Module.to: only floating-point dtypes are accepted, got {dtype}")
        for t in (*self.parameters(), *self.buffers()) if dtype is not None else ():
            if t.dtype.kind == "f" and t.dtype != dtype:
                t.data = t.data.astype(dtype)
                t.grad = None if t.grad is None else Tensor(t.grad.data.astype(dtype))
        return self

    def cpu(self) -> Module:
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def _state_items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """PyTorch's state_dict order: a module's parameters, its persistent buffers, then its children.

        Unlike `named_parameters`, a module or tensor registered twice appears under both names (as in PyTorch).
        """
        skip = self.__dict__.get("_non_persistent", ())
        for name, t in self._parameters.items():
            if t is not None:
                yield prefix + name, t
        for name, t in self._buffers.items():
            if t is not None and name not in skip:
                yield prefix + name, t
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and persistent buffer as a numpy copy, keyed like PyTorch's state_dict."""
        return {name: np.array(t.data, copy=True) for name, t in self._state_items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy `state_dict` (numpy arrays, Tensors, anything array-like) into this module's arrays.

        Values are written in place and keep each array's dtype, so optimizers
        holding these parameters see the new values. Everything is checked
        before anything is written: with errors the module is left untouched and
        a RuntimeError lists every missing key, unexpected key and size mismatch
        at once. With ``strict=False`` missing and unexpected keys are returned
        instead (size mismatches still raise, as in PyTorch).
        """
        own = dict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, writes = [], []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            if array.dtype.kind not in "biuf":
                errors.append(f"value for {key} has unsupported dtype {array.dtype}")
            elif array.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {array.shape} from "
                              f"checkpoint, the shape in current model is {target.shape}.")
            else:
                writes.append((target, array))
        if strict:
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ". ")
            if unexpected:
                at = 1 if missing else 0
                errors.insert(at, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected)
                              + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        with no_grad():
            for target, array in writes:
                if target.data.flags.writeable:
                    np.copyto(target.data, array, casting="unsafe")
                else:  # a read-only view (e.g. a broadcast): give the tensor its own array
                    target.data = array.astype(target.data.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of this module's repr (override it)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_indent(repr(m), 2)}" for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Jupyter's display of a module: a drawing of its forward pass (`viz.module_mimebundle`).

        viz is imported here, when a notebook first displays a module, not at the top of this
        file: viz sits above the engine and nn (it draws their graphs, and needs graphviz), and
        nn must not depend on it to be imported. A method, not a hook that importing viz would
        attach, so a module displays the same whether or not anything imported viz before.
        """
        from ..viz import module_mimebundle

        return module_mimebundle(self, include, exclude)


_MISSING = object()


def _indent(text: str, spaces: int) -> str:
    """Indent every line after the first (PyTorch's `_addindent`, so nested reprs line up)."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [(" " * spaces + line) if line.strip() else "" for line in rest])


def _stray_entry(module: Module) -> ModuleScope:
    """A module called inside another's forward without being registered in its tree.

    It still gets a scope (nested inside its caller's), named after its class.
    """
    parents = [e for e in autograd.current_scope() if isinstance(e, ModuleScope)]
    parent = parents[-1].path if parents else ""
    name = type(module).__name__
    return ModuleScope(f"{parent}.{name}" if parent else name, module)
