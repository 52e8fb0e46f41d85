"""Save and load weights in the safetensors format, with PyTorch's key names.

A checkpoint written by `save` loads into the same architecture in PyTorch::

    torch_model.load_state_dict(safetensors.torch.load_file("model.safetensors"))

and one saved from PyTorch (``safetensors.torch.save_file(m.state_dict(), path)``)
loads here with ``model.load_state_dict(nn.load(path))``. safetensors is a
header plus raw little-endian arrays: no pickle, so loading runs no code.

Saving is atomic: the bytes go to a temporary file in the same directory,
are flushed and fsynced, then `os.replace` swaps it in. A crash (or an
exception) at any point leaves either the old checkpoint or the new one,
never a truncated file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor
from .module import Module

PathLike = str | os.PathLike


def _import_safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("nn.save/nn.load need the safetensors package: pip install safetensors "
                          "(or pip install tinygrad_cnn[train])") from None
    return safetensors


def save(obj: Module | Mapping[str, Any], path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Write a module's `state_dict()` (or a dict of arrays/Tensors) to `path` as safetensors, atomically.

    `metadata` is a small str -> str dictionary stored in the header (read it back with `load_metadata`).
    """
    safetensors = _import_safetensors()
    state = obj.state_dict() if isinstance(obj, Module) else obj
    if not isinstance(state, Mapping):
        raise TypeError(f"nn.save: expected a Module or a dict of arrays, got {type(obj).__name__}")
    arrays = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise TypeError(f"nn.save: keys must be strings, got {key!r}")
        array = value.data if isinstance(value, Tensor) else np.asarray(value)
        # (not np.ascontiguousarray: it turns a 0-d array such as num_batches_tracked into shape (1,))
        arrays[key] = array if array.flags.c_contiguous else np.array(array, order="C")
    if metadata is not None:
        bad = [k for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise TypeError(f"nn.save: metadata must map str to str; offending keys: {bad}")
        metadata = dict(metadata)
    payload = safetensors.numpy.save(arrays, metadata=metadata)
    _write_atomically(os.fspath(path), payload)


def _write_atomically(path: str, payload: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX); not possible everywhere
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _read(path: PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"nn.load: no such checkpoint file: {os.fspath(path)!r}") from None


def load(path: PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file into {name: numpy array}, ready for `Module.load_state_dict`.

    A missing file raises FileNotFoundError; a truncated or corrupt one ValueError, each naming the file.
    """
    safetensors = _import_safetensors()
    payload = _read(path)
    try:
        return dict(safetensors.numpy.load(payload))
    except Exception as e:  # safetensors raises its own SafetensorError for every kind of damage
        raise ValueError(f"nn.load: {os.fspath(path)!r} is not a valid safetensors file ({e})") from None


def load_metadata(path: PathLike) -> dict[str, str]:
    """The metadata dictionary stored by `save(..., metadata=...)` (empty if none)."""
    safetensors = _import_safetensors()
    if not os.path.exists(path):
        raise FileNotFoundError(f"nn.load_metadata: no such checkpoint file: {os.fspath(path)!r}")
    try:
        with safetensors.safe_open(os.fspath(path), framework="np") as f:
            return dict(f.metadata() or {})
    except Exception as e:
        raise ValueError(f"nn.load_metadata: {os.fspath(path)!r} is not a valid safetensors file ({e})") from None
