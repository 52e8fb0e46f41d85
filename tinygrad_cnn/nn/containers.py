"""ModuleList and ModuleDict: hold sub-modules in a list or a dict, registered as children.

A plain Python list of layers is invisible to `Module`: its parameters are not
in `parameters()` (so the optimizer never trains them) nor in `state_dict()`.
These containers register each module as a child under its index ("0", "1", ...)
or its key, exactly as `torch.nn` does, so ``self.layers = ModuleList(...)``
gives state_dict keys like ``layers.0.weight``. Neither has a `forward`: the
owner decides how to call them (unlike `Sequential`, which chains them).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from typing import Any, overload

from .module import Module


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line after the first (PyTorch's `_addindent`, so nested reprs line up)."""
    first, *rest = text.split("\n")
    return "\n".join([first] + [" " * spaces + line for line in rest])


class ModuleList(Module):
    """A list of modules, each registered as the child named by its index.

    Indexing, `append`, `extend`, `insert`, `del`, `pop`, `+` and `+=` behave
    like a list's; after an insertion or deletion the children are renumbered,
    so the names always run 0 .. len-1 (and state_dict keys follow). A slice is
    a new ModuleList holding the same module objects.
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self += modules

    def _name(self, index: int) -> str:
        """The child name of `index` (negative counts from the end), or an IndexError."""
        index = operator.index(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList: index {index} is out of range for {len(self)} modules")
        return str(index % len(self))

    def _renumber(self, modules: list[Module]) -> None:
        """Register `modules` as children 0 .. len-1, in order, in place of the current ones."""
        for name in list(self._modules):
            delattr(self, name)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> ModuleList: ...

    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return self._modules[self._name(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        setattr(self, self._name(index), module)

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[int(self._name(index))]
        self._renumber(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, other))

    def __dir__(self) -> list[str]:
        return [key for key in super().__dir__() if not key.isdigit()]

    def append(self, module: Module) -> ModuleList:
        """Add `module` at the end."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add every module of `modules` at the end, in order."""
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend should be called with an iterable, but got {type(modules).__name__}")
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert `module` before position `index` (list semantics: negative counts from the end)."""
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.insert: expected a Module, got {type(module).__name__}")
        modules = list(self._modules.values())
        modules.insert(operator.index(index), module)
        self._renumber(modules)

    def pop(self, key: int | slice) -> Module | ModuleList:
        """Remove the module (or slice of modules) at `key` and return it."""
        value = self[key]
        del self[key]
        return value

    def __repr__(self) -> str:
        """Like Module's, but a run of modules with the same repr prints once: ``(0-2): 3 x Linear(...)``."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return f"{type(self).__name__}()"
        runs: list[list[Any]] = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [_add_indent(f"({first}): {text}" if first == last else
                             f"({first}-{last}): {last - first + 1} x {text}", 2) for first, last, text in runs]
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules, each registered as the child named by its key.

    Keys are strings that make valid child names: not empty, without ".", and not
    an attribute the module already has (``"train"`` would hide the method).
    Insertion order is kept, and it is the order of `parameters()` and `state_dict()`.
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: module name should be a string. Got {type(key).__name__}")
        if not key:
            raise KeyError('ModuleDict: module name can\'t be empty string ""')
        if "." in key:
            raise KeyError(f'ModuleDict: module name can\'t contain ".", got: {key}')
        if key not in self._modules and hasattr(self, key):
            raise KeyError(f"ModuleDict: attribute '{key}' already exists")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            del self[key]

    def pop(self, key: str) -> Module:
        """Remove the module under `key` and return it."""
        value = self[key]
        del self[key]
        return value

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or from (key, module) pairs, in their order."""
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleDict.update should be called with an iterable of key/value pairs, but got "
                            f"{type(modules).__name__}")
        if isinstance(modules, (Mapping, ModuleDict)):
            for key, module in modules.items():
                self[key] = module
            return
        for j, pair in enumerate(modules):
            if not isinstance(pair, Iterable):
                raise TypeError(f"ModuleDict update sequence element #{j} should be Iterable; is "
                                f"{type(pair).__name__}")
            pair = tuple(pair)
            if len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} has length {len(pair)}; 2 is required")
            self[pair[0]] = pair[1]
