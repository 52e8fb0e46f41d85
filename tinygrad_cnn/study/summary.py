"""The numbers of the report, aggregated over seeds: one place that both report.md and results.json read.

`summarize(results)` returns a nested dict of `Interval`s (mean ± 95% over
seeds), paired differences and plain numbers (parameter counts, ratios). The
report formats numbers from it and results.json stores it, so every number the
report prints can be found in results.json (a test checks the docs page).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .experiments import SAMPLE_MODELS, Results, SeedRun
from .probes import FGSM_EPSILONS
from .stats import Interval, mean_interval

CHANCE = 0.1  # accuracy of a guess among Fashion-MNIST's 10 classes


def _row(seed_run: SeedRun, name: str, n: int) -> dict[str, float] | None:
    return next((row for row in seed_run.sample[name] if row["n"] == n), None)


def sample_sizes(r: Results, name: str) -> list[int]:
    """The training-set sizes a model of the sample-efficiency study was measured at (the same for every seed)."""
    return [row["n"] for row in r.first.sample[name]]


def sample_table(r: Results) -> dict[str, dict[int, dict[str, Any]]]:
    """Per model and training-set size: test and train accuracy, gap (train − test), epochs and steps."""
    table: dict[str, dict[int, dict[str, Any]]] = {}
    for name in SAMPLE_MODELS:
        table[name] = {}
        for n in sample_sizes(r, name):
            rows = [_row(s, name, n) for s in r.seeds]
            table[name][n] = {
                "test": mean_interval([row["test_acc"] for row in rows]),
                "train": mean_interval([row["train_acc"] for row in rows]),
                "gap": mean_interval([row["train_acc"] - row["test_acc"] for row in rows]),
                "epochs": rows[0]["epochs"], "steps": rows[0]["steps"],
            }
    return table


def _paired_sample(r: Results, a: str, b: str, n: int, key: str) -> Interval:
    def value(s: SeedRun, name: str) -> float:
        row = _row(s, name, n)
        return row["train_acc"] - row["test_acc"] if key == "gap" else row[key]

    return r.paired(lambda s: value(s, a), lambda s: value(s, b))


def sample_differences(r: Results) -> dict[int, dict[str, Interval]]:
    """Per size both models share: paired CNN − MLP test accuracy, MLP gap − CNN gap, and the LCN split."""
    shared = sorted(set(sample_sizes(r, "cnn")) & set(sample_sizes(r, "mlp")))
    out: dict[int, dict[str, Interval]] = {}
    for n in shared:
        out[n] = {"cnn_minus_mlp": _paired_sample(r, "cnn", "mlp", n, "test_acc"),
                  "mlp_gap_minus_cnn_gap": _paired_sample(r, "mlp", "cnn", n, "gap")}
        if n in sample_sizes(r, "lcn"):
            out[n]["lcn_minus_mlp"] = _paired_sample(r, "lcn", "mlp", n, "test_acc")
            out[n]["cnn_minus_lcn"] = _paired_sample(r, "cnn", "lcn", n, "test_acc")
    return out


def drop(s: SeedRun, name: str, k: int) -> float:
    """Accuracy lost between 0 and k pixels of shift (averaged over directions)."""
    curve = s.shift_curve(name)
    return curve[0] - curve[k]


def kept(s: SeedRun, name: str, k: int) -> float:
    """The share of the above-chance accuracy kept at a shift of k pixels: (acc_k − 1/10) / (acc_0 − 1/10).

    1 is invariant, 0 is down to chance. Measured above chance so that a model
    that learned less (a lower clean accuracy) does not look robust for having
    less to lose: a model at chance keeps nothing by this measure, not everything.
    """
    curve = s.shift_curve(name)
    return (curve[k] - CHANCE) / max(curve[0] - CHANCE, 1e-9)


def translation_summary(r: Results) -> dict[str, Any]:
    """Accuracy per shift, what is lost and kept at 2 px and at the largest shift, and paired comparisons."""
    k = r.settings.max_shift
    names = r.run_names
    out: dict[str, Any] = {
        "curves": {name: r.shift_curve(name) for name in names},
        f"drop_{k}": {name: r.interval(lambda s, name=name: drop(s, name, k)) for name in names},
        "kept_2": {name: r.interval(lambda s, name=name: kept(s, name, 2)) for name in names},
        f"kept_{k}": {name: r.interval(lambda s, name=name: kept(s, name, k)) for name in names},
        "directions": {name: {d: r.interval(lambda s, name=name, d=d: s.shifts[name][d][k])
                              for d in r.first.shifts[name]} for name in names},
        "equivariance": {name: {key: r.interval(lambda s, name=name, key=key: s.equivariance[name][key])
                                for key in r.first.equivariance[name]} for name in r.first.equivariance},
    }
    # kept(a) − kept(b), paired: how much more of its accuracy a keeps under a shift than b (positive: a is
    # more robust); and the plain difference of accuracies at the largest shift
    pairs = [("cnn", "mlp"), ("lcn", "mlp"), ("cnn", "lcn"), ("cnn-gap", "cnn")]
    pairs += [(f"{a}+{r.settings.augment}", a) for a in ("cnn", "mlp") if f"{a}+{r.settings.augment}" in names]
    out["kept_gain"] = {f"{a} vs {b}": {f"{px} px": r.paired(lambda s, a=a, px=px: kept(s, a, px),
                                                             lambda s, b=b, px=px: kept(s, b, px)) for px in (2, k)}
                        for a, b in pairs}
    out["accuracy_at_max"] = {f"{a} vs {b}": r.paired(lambda s, a=a: s.shift_curve(a)[k],
                                                      lambda s, b=b: s.shift_curve(b)[k]) for a, b in pairs}
    return out


def fgsm_summary(r: Results) -> dict[str, Any]:
    """Accuracy at each ε per run, and paired CNN − MLP differences."""
    names = r.run_names
    out: dict[str, Any] = {"epsilons": list(FGSM_EPSILONS),
                           "accuracy": {name: [r.interval(lambda s, name=name, i=i: s.fgsm[name][i])
                                               for i in range(len(FGSM_EPSILONS))] for name in names}}
    out["cnn_minus_mlp"] = [r.paired(lambda s, i=i: s.fgsm["cnn"][i], lambda s, i=i: s.fgsm["mlp"][i])
                            for i in range(len(FGSM_EPSILONS))]
    # mean accuracy at the largest ε over mean clean accuracy: the share of its accuracy a model keeps
    out["kept_at_largest"] = {name: accs[-1].mean / max(accs[0].mean, 1e-9) for name, accs in out["accuracy"].items()}
    return out


def finals(r: Results) -> dict[str, dict[str, Interval]]:
    """The main runs' last epoch, over seeds: accuracies, losses, gap, time per epoch and per image."""
    out = {}
    for name in r.run_names:
        out[name] = {key: r.final(name, key) for key in ("test_acc", "train_eval_acc", "test_loss",
                                                         "train_eval_loss")}
        out[name]["gap"] = r.interval(lambda s, name=name: s.runs[name].final["train_eval_acc"]
                                      - s.runs[name].final["test_acc"])
        out[name]["train_seconds_per_epoch"] = r.interval(
            lambda s, name=name: np.mean([rec["train_seconds"] for rec in s.runs[name].history]))
        out[name]["train_us_per_image"] = r.interval(
            lambda s, name=name: 1e6 * np.mean([rec["train_seconds"] for rec in s.runs[name].history])
            / s.runs[name].train_size)
        out[name]["test_us_per_image"] = r.interval(
            lambda s, name=name: 1e6 * np.mean([rec["eval_seconds"] for rec in s.runs[name].history])
            / r.environment["test_size"])
    out["cnn_minus_mlp"] = {"test_acc": r.paired(lambda s: s.runs["cnn"].final["test_acc"],
                                                 lambda s: s.runs["mlp"].final["test_acc"])}
    out["cnn-gap_minus_cnn"] = {"test_acc": r.paired(lambda s: s.runs["cnn-gap"].final["test_acc"],
                                                     lambda s: s.runs["cnn"].final["test_acc"])}
    return out


def parameters(r: Results) -> dict[str, Any]:
    """Parameter and FLOP totals per architecture, and the ratios the report quotes (no seeds: exact)."""
    totals = {name: sum(layer.params for layer in table) for name, table in r.tables.items()}
    flops = {name: sum(layer.flops for layer in table) for name, table in r.tables.items()}
    convs = [la for la in r.tables["cnn"] if la.kind == "Conv2d"]
    locals_ = [la for la in r.tables["lcn"] if la.kind == "LocallyConnected2d"]
    biggest = max(r.tables["cnn"], key=lambda la: la.params)
    conv_total = sum(c.params for c in convs)
    return {
        "totals": totals, "flops": flops,
        "cnn_over_mlp": totals["cnn"] / totals["mlp"], "mlp_over_cnn_gap": totals["mlp"] / totals["cnn-gap"],
        "lcn_over_cnn": totals["lcn"] / totals["cnn"], "cnn_over_cnn_gap": totals["cnn"] / totals["cnn-gap"],
        "conv_total": conv_total, "conv_share_percent": 100 * conv_total / totals["cnn"],
        "biggest_layer": biggest.name, "biggest_share_percent": 100 * biggest.params / totals["cnn"],
        "per_conv_layer": [{"conv": c.params, "local": lc.params, "dense": c.dense_params,
                            "local_over_conv": lc.params / c.params, "dense_over_conv": c.dense_params / c.params}
                           for c, lc in zip(convs, locals_)],
        "flops_cnn_over_mlp": flops["cnn"] / flops["mlp"],
        "flops_over_mlp": {name: f / flops["mlp"] for name, f in flops.items()},
        "layer_share_percent": {name: [100 * la.params / totals[name] for la in table]
                                for name, table in r.tables.items()},
    }


def summarize(r: Results) -> dict[str, Any]:
    """Every aggregated number of the report."""
    first = r.first
    return {
        "parameters": parameters(r),
        "finals": finals(r),
        "epochs": {name: [{key: r.interval(lambda s, name=name, e=e, key=key: s.runs[name].history[e][key])
                           for key in ("train_eval_acc", "test_acc")}
                          for e in range(len(first.runs[name].history))] for name in r.run_names},
        "sample": {name: {str(n): row for n, row in rows.items()} for name, rows in sample_table(r).items()},
        "sample_differences": {str(n): d for n, d in sample_differences(r).items()},
        "translation": translation_summary(r),
        "fgsm": fgsm_summary(r),
        "learned": {key: r.interval(lambda s, key=key: s.learned[key]) for key in first.learned},
        "learned_ramp_gain": r.paired(lambda s: s.learned["cnn_ramp_trained"], lambda s: s.learned["cnn_ramp_init"]),
        "probes": {key: r.interval(lambda s, key=key: s.probes[key]) for key in first.probes},
        "saliency_background_mlp_minus_cnn": r.paired(lambda s: s.probes["saliency_background_mlp"],
                                                      lambda s: s.probes["saliency_background_cnn"]),
        "time": {"cnn_over_mlp": _time_ratio(r, "cnn", "mlp"), "lcn_over_cnn": _time_ratio(r, "lcn", "cnn")},
    }


def _time_ratio(r: Results, a: str, b: str) -> Interval:
    """Training time per image of a over b's, per seed (the machine's load moves both)."""
    def per_image(s: SeedRun, name: str) -> float:
        run = s.runs[name]
        return float(np.mean([rec["train_seconds"] for rec in run.history])) / run.train_size

    return r.interval(lambda s: per_image(s, a) / per_image(s, b))
