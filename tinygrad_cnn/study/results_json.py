"""results.json: every number of a `compare` run, per model and per seed, beside report.md.

    settings      the sizes and budgets (Settings)
    environment   data, machine, load, thread count, estimate and wall time
    models        per architecture: parameters and FLOPs, layer by layer
    summary       the report's numbers over seeds: {mean, half_width, low, high, values} per interval
                  (summary.py), paired differences included
    pictures      the numbers the probe figures are drawn from (receptive-field unit and box, FGSM example)
    seeds         per seed: each run's per-epoch history, the sample-efficiency rows, shifted and FGSM
                  accuracies, equivariance errors, filter and probe statistics

For anyone who wants to plot the study their own way, or check the report.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .experiments import Results
from .stats import Interval
from .summary import summarize


def plain(value: Any) -> Any:
    """A JSON-ready copy: Intervals as dicts, numpy numbers as Python ones, slices as [start, stop), inf as None."""
    if isinstance(value, Interval):
        return plain(value.to_json())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, slice):
        return [value.start, value.stop]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, (np.integer, bool)):
        return value if isinstance(value, bool) else int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def results_dict(r: Results) -> dict[str, Any]:
    """The whole of results.json as a dict."""
    rf = r.pictures.get("receptive_field", {})
    fgsm = r.pictures.get("fgsm", {})
    return plain({
        "settings": dataclasses.asdict(r.settings),
        "environment": r.environment,
        "models": {name: {"parameters": sum(la.params for la in table), "flops": sum(la.flops for la in table),
                          "layers": [{**dataclasses.asdict(la), "dense_params": la.dense_params} for la in table]}
                   for name, table in r.tables.items()},
        "summary": summarize(r),
        "pictures": {
            "receptive_field": {when: {k: v for k, v in rf[when].items() if k != "map"} for when in rf},
            "fgsm_example": {"label": fgsm.get("label"), "epsilon": fgsm.get("epsilon"),
                             "models": {name: {k: v for k, v in ex.items() if k.endswith("prediction")}
                                        for name, ex in fgsm.get("models", {}).items()}},
            "convolution": r.pictures.get("convolution", {}),
        },
        "seeds": [{
            "seed": s.seed,
            "runs": {name: {"train_size": run.train_size, "history": run.history} for name, run in s.runs.items()},
            "sample": s.sample, "shifts": s.shifts, "fgsm": s.fgsm, "equivariance": s.equivariance,
            "learned": s.learned, "probes": s.probes,
        } for s in r.seeds],
    })


def write_results(r: Results, path: Path) -> Path:
    """Write results.json (indented, so a diff between two runs reads line by line)."""
    path.write_text(json.dumps(results_dict(r), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
