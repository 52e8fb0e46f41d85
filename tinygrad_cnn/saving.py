"""`save` and `load`: `torch.save` and `torch.load` for tensors and state dicts, written as safetensors.

With ``import tinygrad_cnn as torch`` the lines of PyTorch's tutorials work unchanged::

    torch.save(model.state_dict(), "model.pth")
    model.load_state_dict(torch.load("model.pth", weights_only=True))

Why not pickle, as PyTorch does: a pickle names functions to call while it is
read, so loading a stranger's checkpoint can run any code (the reason PyTorch
made ``weights_only=True`` its default). Here the file is always safetensors,
whatever its name (``model.pth`` included): a JSON header, then raw
little-endian arrays. Loading reads numbers and nothing else. The price is
that only tensors can be saved, so a whole model or an optimizer is refused,
and the error says what to save instead.

What `load` needs to give back what `save` was given, beyond the arrays, is kept
in the header's metadata under ``"tinygrad_cnn.save"``: whether a lone Tensor was
saved (it is stored under the key ``"tensor"``), the order of the keys
(safetensors sorts its header) and which tensors required grad (`torch.load`
restores that too). A file without it, such as one written by
``safetensors.torch.save_file``, loads as a dict of Tensors.

Saving to a path is atomic (`nn.save`: a temporary file in the same folder,
fsync, `os.replace`), so a crash or an error mid-save leaves the old file whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import IO, Any, Union

import numpy as np

from . import nn
from .nn.module import Module
from .optim import LRScheduler, Optimizer
from .tensor import Tensor

FileLike = Union[str, os.PathLike, IO[bytes]]

_METADATA_KEY = "tinygrad_cnn.save"
_SINGLE_KEY = "tensor"  # the key a lone Tensor is stored under
_WHAT_CAN_BE_SAVED = "a Tensor, or a dict of str -> Tensor such as model.state_dict()"
_WHY_NO_PICKLE = "tinygrad_cnn writes only tensors, as safetensors, never a pickle, so that loading never runs code"


def save(obj: Tensor | Mapping[str, Any], f: FileLike) -> None:
    """Write a Tensor, or a dict of str -> Tensor (or numpy array), to `f` as safetensors: `torch.save`.

    `f` is a path (written atomically, whatever its suffix) or a binary file object.
    Anything else a pickle could hold (a Module, an optimizer, numbers, nested
    dicts) raises TypeError naming what to save instead.
    """
    kind, values = _tensors(obj)
    arrays = {key: _array(key, value) for key, value in values.items()}
    record = {"object": kind, "keys": list(arrays),
              "requires_grad": [k for k, v in values.items() if isinstance(v, Tensor) and v.requires_grad]}
    metadata = {_METADATA_KEY: json.dumps(record)}
    if isinstance(f, (str, os.PathLike)):
        nn.save(arrays, f, metadata=metadata)
    elif hasattr(f, "write"):
        import safetensors.numpy  # a dependency; imported when used, like nn.save does

        f.write(safetensors.numpy.save(arrays, metadata=metadata))
    else:
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")


def load(f: FileLike, map_location: Any = None, pickle_module: Any = None, *, weights_only: bool | None = True,
         mmap: bool | None = None) -> Tensor | dict[str, Tensor]:
    """Read what `save` wrote (or any safetensors file): `torch.load` with ``weights_only=True``.

    Returns the Tensor that was saved, or a dict of Tensors in the saved order,
    ready for ``model.load_state_dict``. `map_location` may be None, 'cpu', a
    CPU device, a dict or a function: everything here lives on the CPU, so there
    is nothing to move. `mmap` is accepted and ignored (the file is read whole).
    ``weights_only=False`` and `pickle_module` would mean unpickling, and raise ValueError.
    """
    if weights_only is not None and not weights_only:
        raise ValueError(f"load: weights_only=False means unpickling arbitrary objects, which can run code; "
                         f"{_WHY_NO_PICKLE}. Leave weights_only=True (the default): it loads everything save() "
                         "writes.")
    if pickle_module is not None:
        raise ValueError(f"load: pickle_module is not supported: {_WHY_NO_PICKLE}")
    _check_location(map_location)
    payload, name = _read(f)
    arrays, record = _parse(payload, name)
    order = [k for k in record.get("keys", ()) if k in arrays]
    order += [k for k in arrays if k not in set(order)]
    requires_grad = set(record.get("requires_grad", ()))
    tensors = {k: _tensor(arrays[k], k in requires_grad) for k in order}
    if record.get("object") == "tensor" and list(tensors) == [_SINGLE_KEY]:
        return tensors[_SINGLE_KEY]
    return tensors


# ---------------------------------------------------------------------------- saving
def _tensors(obj: Any) -> tuple[str, dict[str, Any]]:
    """('tensor' or 'dict', {key: Tensor or array}) for what can be saved; a TypeError that teaches otherwise."""
    if isinstance(obj, Tensor):
        return "tensor", {_SINGLE_KEY: obj}
    name = type(obj).__name__
    if isinstance(obj, Module):
        raise TypeError(f"save: cannot save a whole module ({name}): torch.save would pickle it, classes and all, "
                        f"and loading a pickle can run any code; {_WHY_NO_PICKLE}. Save its weights instead, "
                        "save(model.state_dict(), f), then build the model and call model.load_state_dict(load(f)).")
    if isinstance(obj, (Optimizer, LRScheduler)):
        kind = "optimizer" if isinstance(obj, Optimizer) else "learning-rate scheduler"
        raise TypeError(f"save: cannot save {kind} {name}: its state holds numbers and nested dicts, not just "
                        f"tensors, and {_WHY_NO_PICKLE}. To resume training, write its state_dict() with "
                        "tinygrad_cnn.checkpoint.save_checkpoint(path, {'model': model.state_dict(), "
                        "'optimizer': optimizer.state_dict()}).")
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: cannot save an object of type {name}: only {_WHAT_CAN_BE_SAVED} can be saved; "
                        f"{_WHY_NO_PICKLE}.")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise TypeError(f"save: dict keys must be strings (safetensors names each tensor), got {key!r}")
        if not isinstance(value, (Tensor, np.ndarray)):
            raise TypeError(f"save: the value under {key!r} has type {type(value).__name__}: only "
                            f"{_WHAT_CAN_BE_SAVED} can be saved; {_WHY_NO_PICKLE}. Save each state dict to its own "
                            "file, or nested training state (epoch, optimizer) with "
                            "tinygrad_cnn.checkpoint.save_checkpoint(path, state).")
    return "dict", dict(obj)


def _array(key: str, value: Tensor | np.ndarray) -> np.ndarray:
    """The numpy array to write (C order: safetensors stores raw row-major bytes)."""
    array = value.data if isinstance(value, Tensor) else value
    if array.dtype.kind not in "biuf":
        raise TypeError(f"save: the array under {key!r} has dtype {array.dtype}; safetensors holds bool, integer "
                        "and floating-point arrays")
    return array if array.flags.c_contiguous else np.array(array, order="C")


# ---------------------------------------------------------------------------- loading
def _check_location(location: Any) -> None:
    """Accept what names the CPU (or maps storages, which is a no-op here); refuse any other device by name."""
    if location is None or callable(location):
        return
    if isinstance(location, Mapping):
        for target in location.values():
            _check_location(target)
        return
    if str(location).split(":")[0] != "cpu":
        raise RuntimeError(f"load: map_location={location!r} names a device tinygrad_cnn does not have: it computes "
                           "on the CPU (numpy) only. Use map_location='cpu', or leave it out.")


def _read(f: FileLike) -> tuple[bytes, str]:
    """The file's bytes and a name for error messages (a missing path raises FileNotFoundError naming it)."""
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as file:
            return file.read(), repr(os.fspath(f))
    if hasattr(f, "read"):
        return f.read(), repr(getattr(f, "name", f"<{type(f).__name__}>"))
    raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")


def _parse(payload: bytes, name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of a safetensors payload, and our record from its metadata ({} if another tool wrote it)."""
    import safetensors.numpy  # a dependency; imported when used, like nn.load does

    try:
        arrays = safetensors.numpy.load(payload)
    except Exception as e:  # safetensors raises its own SafetensorError for every kind of damage
        raise ValueError(_not_safetensors(payload, name, e)) from None
    header_size = int.from_bytes(payload[:8], "little")  # valid: safetensors just read the header
    metadata = json.loads(payload[8:8 + header_size]).get("__metadata__") or {}
    record = json.loads(metadata[_METADATA_KEY]) if _METADATA_KEY in metadata else {}
    return arrays, record


def _not_safetensors(payload: bytes, name: str, error: Exception) -> str:
    """Say what the file is, when we can tell: PyTorch's own format is the likely one."""
    if payload.startswith(b"PK\x03\x04") or payload.startswith(b"\x80"):  # torch.save's zip, or a legacy pickle
        return (f"load: {name} was written by PyTorch's torch.save (a pickle), not safetensors; {_WHY_NO_PICKLE}. "
                "Convert it once in PyTorch: from safetensors.torch import save_file; "
                "save_file(torch.load(path, weights_only=True), 'model.safetensors')")
    return f"load: {name} is not a safetensors file ({error})"


def _tensor(array: np.ndarray, requires_grad: bool) -> Tensor:
    """A Tensor owning a writable array (in-place ops and load_state_dict may write to it)."""
    if not array.flags.writeable:
        array = array.copy()
    return Tensor(array, requires_grad=requires_grad and array.dtype.kind == "f")

