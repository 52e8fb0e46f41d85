"""Training checkpoints: everything a run needs to continue exactly where it stopped, in one file.

One safetensors file, written atomically by `nn.save` (temp file, fsync, rename),
so a crash mid-save never leaves a broken checkpoint. Arrays (weights, buffers,
optimizer moments) are its tensors, under prefixed keys (``model.features.0.weight``,
``optimizer.state.0.exp_avg``); everything else (epoch, history, scheduler and
random-generator states) is JSON in its metadata. Why so much state: a resumed
run only equals an uninterrupted one if the data order, the dropout masks and
the optimizer's moments all continue from the same point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import nn

_JSON_KEY = "tinygrad_cnn.checkpoint"


def _split(tree: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Move every numpy array of a nested dict/list into `arrays`; leave a reference in its place."""
    if isinstance(tree, np.ndarray):
        arrays[prefix] = tree
        return {"__array__": prefix}
    if isinstance(tree, dict):
        return {str(k): _split(v, f"{prefix}.{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, f"{prefix}.{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _join(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (nested dicts of arrays, numbers, strings) to one safetensors file, atomically."""
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split(state, "state", arrays)
    nn.save({k: v if v.flags.c_contiguous else np.array(v, order="C") for k, v in arrays.items()}, path,
            metadata={_JSON_KEY: json.dumps(skeleton)})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read what `save_checkpoint` wrote (FileNotFoundError / ValueError name the file)."""
    metadata = nn.load_metadata(path)
    if _JSON_KEY not in metadata:
        raise ValueError(f"{path}: not a tinygrad_cnn training checkpoint (no {_JSON_KEY!r} metadata)")
    state = _join(json.loads(metadata[_JSON_KEY]), nn.load(path))
    return _restore_int_keys(state)


def _restore_int_keys(tree: Any) -> Any:
    """JSON turned the optimizer's integer state keys into strings; turn them back."""
    if isinstance(tree, dict):
        return {(int(k) if k.isdigit() else k): _restore_int_keys(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_restore_int_keys(v) for v in tree]
    return tree
