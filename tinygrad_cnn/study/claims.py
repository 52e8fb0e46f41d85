"""The answers to the four claims, written from the numbers of one `compare` run.

Every sentence that judges a claim is chosen by comparing measured numbers,
never fixed in advance: if a claim does not hold in a run, its answer says so.
The usual claims about CNNs versus regular networks:

    (a) far fewer parameters          (b) local patterns (edges, corners) in the first layer
    (c) fewer samples, less overfit   (d) robust to translation: shifted input, shifted feature map
"""

from __future__ import annotations

import itertools
import math

from .experiments import Results


def fmt_pct(x: float) -> str:
    """An accuracy as a percentage: 0.9123 → 91.2%."""
    return f"{100 * x:.1f}%"


def fmt_pts(d: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.031 → +3.1 pts."""
    return f"{100 * d:+.1f} pts"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:,.0f}×" if a / b >= 10 else f"{a / b:.1f}×"


def claim_answers(r: Results) -> list[str]:
    """One paragraph per claim, (a) to (d)."""
    return [_parameters(r), _local_patterns(r), _samples(r), _translation(r)]


def _parameters(r: Results) -> str:
    totals = {name: sum(layer.params for layer in table) for name, table in r.tables.items()}
    convs = [la for la in r.tables["cnn"] if la.kind == "Conv2d"]
    locals_ = [la for la in r.tables["lcn"] if la.kind == "LocallyConnected2d"]
    per_layer = "; ".join(
        f"conv{i} has {c.params:,} parameters, the locally connected layer of the same geometry {lc.params:,} "
        f"({_ratio(lc.params, c.params)}: the cost of not sharing) and a dense layer with the same input and output "
        f"{c.dense_params:,} ({_ratio(c.dense_params, c.params)})"
        for i, (c, lc) in enumerate(zip(convs, locals_), start=1))
    biggest = max(r.tables["cnn"], key=lambda la: la.params)
    conv_total = sum(c.params for c in convs)
    cnn, mlp = totals["cnn"], totals["mlp"]
    if cnn < mlp:
        whole = (f"Whole network, it holds too: the CNN has {cnn:,} parameters, {_ratio(mlp, cnn)} fewer than the "
                 f"MLP's {mlp:,}.")
    else:
        whole = (f"Whole network, **it does not hold here**: the CNN has {cnn:,} parameters, {_ratio(cnn, mlp)} the "
                 f"MLP's {mlp:,}.")
    fewer = all(c.params < lc.params and c.params < c.dense_params for c, lc in zip(convs, locals_))
    return (f"**(a) Far fewer parameters?** Per layer, {'yes' if fewer else '**not always**'}: {per_layer}. {whole} "
            f"{100 * biggest.params / cnn:.0f}% of the CNN's parameters sit in its first linear layer "
            f"(`{biggest.name}`, {biggest.in_shape[0]:,} → {biggest.out_shape[0]:,}), an ordinary dense layer; the "
            f"two convolutions hold {conv_total:,} ({100 * conv_total / cnn:.1f}%). The LCN, local but unshared, "
            f"has {totals['lcn']:,} ({_ratio(totals['lcn'], cnn)} the CNN's): sharing, not locality alone, is what "
            "makes convolution layers small.")


def _local_patterns(r: Results) -> str:
    m = r.learned
    gain = m["cnn_ramp_trained"] - m["cnn_ramp_init"]
    if gain > 0.1:
        cnn = (f"its filters moved towards edge and ramp detectors: the share of their energy in edge/ramp "
               f"patterns rose from {m['cnn_ramp_init']:.2f} (random) to {m['cnn_ramp_trained']:.2f}, and "
               f"{m['cnn_edges_trained']:.0f} of {m['cnn_filters']:.0f} filters are now edge-like "
               f"({m['cnn_edges_init']:.0f} at initialisation)")
    else:
        cnn = (f"but **its filters did not measurably become edge detectors** in this run: the share of their energy "
               f"in edge/ramp patterns went from {m['cnn_ramp_init']:.2f} (random) to {m['cnn_ramp_trained']:.2f} "
               "(a measure of ramps and step edges; it does not see thin lines or corners, so look at the filters "
               "and feature maps below too)")
    area = m["mlp_area_change"]
    if area > 50:
        mlp = (f"The MLP's first layer learned no local patterns: half of a unit's weight change is spread over "
               f"{area:.0f} pixels (median), whole-image templates (see its weights below), where a CNN filter "
               f"sees 9.")
    else:
        mlp = (f"The MLP's first layer learned fairly local patterns too: half of a unit's weight change lies in "
               f"{area:.0f} pixels (median).")
    return (f"**(b) Local patterns such as edges in the first layer?** A conv1 unit sees 3×3 pixels, so whatever it "
            f"learns is local by construction; {cnn}. {mlp} Corners and the *order* in which features appear "
            "during training were not measured; \"first\" here means the first layer.")


def standard_error(p: float, q: float, n: int) -> float:
    """Standard error of the difference of two accuracies p and q, each measured on n test images."""
    return math.sqrt((p * (1 - p) + q * (1 - q)) / max(n, 1))


def _gap_error(row: dict[str, float], r: Results) -> float:
    """Standard error of one train − test gap (train accuracy on min(n, train_eval_size) images, test on all)."""
    n_train = min(row["n"], r.settings.train_eval_size)
    train, test = row["train_acc"], row["test_acc"]
    return math.sqrt(train * (1 - train) / n_train + test * (1 - test) / max(r.environment["test_size"], 1))


def _within_noise(r: Results) -> str:
    """What to do about a difference inside the noise: measure on more images."""
    if r.settings.label == "quick":
        return "within noise at this size: rerun without --quick"
    return "within noise at this size: a run on more images would tell"


def _sizes(ns: list[int]) -> str:
    return ", ".join(f"{n:,}" for n in ns)


def _images_to_reach(rows: list[dict[str, float]], target: float) -> float | None:
    """Training-set size at which a model's test accuracy first reaches `target` (log-linear interpolation)."""
    if rows[0]["test_acc"] >= target:
        return rows[0]["n"]
    for lo, hi in itertools.pairwise(rows):
        if hi["test_acc"] >= target:
            t = (target - lo["test_acc"]) / (hi["test_acc"] - lo["test_acc"])
            return math.exp(math.log(lo["n"]) + t * (math.log(hi["n"]) - math.log(lo["n"])))
    return None


def _samples(r: Results) -> str:
    by_n = {name: {row["n"]: row for row in rows} for name, rows in r.sample.items()}
    shared = sorted(set(by_n["cnn"]) & set(by_n["mlp"]))
    cnn, mlp = [by_n["cnn"][n] for n in shared], [by_n["mlp"][n] for n in shared]
    small, large = shared[0], shared[-1]
    lcn = by_n["lcn"].get(small)
    diff = [c["test_acc"] - m["test_acc"] for c, m in zip(cnn, mlp)]
    noise = [2 * standard_error(c["test_acc"], m["test_acc"], r.environment["test_size"]) for c, m in zip(cnn, mlp)]
    ahead = [n for n, d, e in zip(shared, diff, noise) if d > e]
    behind = [n for n, d, e in zip(shared, diff, noise) if d < -e]
    ties = [n for n in shared if n not in ahead and n not in behind]
    if len(ahead) == len(shared):
        verdict = f"Yes: the CNN beats the MLP at every size, by {fmt_pts(diff[0])} at {small:,} images"
    elif not ahead and not behind:
        verdict = (f"**Not measurably**: the CNN and the MLP are level at every size ({fmt_pts(diff[0])} at "
                   f"{small:,} images), {_within_noise(r)}")
    elif not ahead:
        verdict = (f"**No, not here**: the CNN is behind the MLP at {_sizes(behind)} images and ahead at none "
                   f"({fmt_pts(diff[0])} at {small:,} images)")
    elif not behind:
        verdict = (f"Mostly: the CNN is ahead at {len(ahead)} of {len(shared)} sizes ({fmt_pts(diff[0])} at "
                   f"{small:,} images) and level with the MLP, within noise, at {_sizes(ties)}")
    else:
        verdict = (f"**Only in part**: the CNN is ahead at {_sizes(ahead)} images and behind at {_sizes(behind)} "
                   f"({fmt_pts(diff[0])} at {small:,} images)")
    verdict += (f"; the difference is {fmt_pts(diff[-1])} at {large:,} (differences under about "
                f"{100 * max(noise):.1f} pts, two standard errors on {r.environment['test_size']:,} test images, are "
                "noise).")
    if small in ahead:  # only a lead beyond the noise is worth converting into images
        reach = _images_to_reach(mlp, cnn[0]["test_acc"])
        verdict += (f" The MLP needs about {reach:,.0f} images to match the CNN's {fmt_pct(cnn[0]['test_acc'])} at "
                    f"{small:,}." if reach else f" The MLP does not reach the CNN's {fmt_pct(cnn[0]['test_acc'])} "
                    f"at {small:,} even with {large:,} images.")
    split = ""
    if lcn is not None:
        locality, sharing = lcn["test_acc"] - mlp[0]["test_acc"], cnn[0]["test_acc"] - lcn["test_acc"]
        split = (f" Splitting the CNN − MLP difference at {small:,} images: locality (LCN − MLP) "
                 f"{fmt_pts(locality)}, weight sharing (CNN − LCN) {fmt_pts(sharing)}.")
    gaps = [(c["train_acc"] - c["test_acc"], m["train_acc"] - m["test_acc"]) for c, m in zip(cnn, mlp)]
    gap_noise = [2 * math.hypot(_gap_error(c, r), _gap_error(m, r)) for c, m in zip(cnn, mlp)]
    less = [n for n, (gc, gm), e in zip(shared, gaps, gap_noise) if gm - gc > e]
    more = [n for n, (gc, gm), e in zip(shared, gaps, gap_noise) if gc - gm > e]
    level = [n for n in shared if n not in less and n not in more]
    overfit = (f" Overfitting (train − test accuracy): CNN {fmt_pts(gaps[0][0])} vs MLP {fmt_pts(gaps[0][1])} at "
               f"{small:,} images, {fmt_pts(gaps[-1][0])} vs {fmt_pts(gaps[-1][1])} at {large:,}; ")
    if len(less) == len(shared):
        overfit += "the CNN overfits less at every size."
    elif not less and not more:
        overfit += f"level at every size, {_within_noise(r)}."
    elif not less:
        overfit += f"**the CNN overfits more** at {_sizes(more)} images and less at none."
    else:
        overfit += f"the CNN overfits less at {_sizes(less)} images only"
        overfit += f", more at {_sizes(more)}" if more else ""
        overfit += f"; level within noise at {_sizes(level)}." if level else "."
    if lcn is not None:
        overfit += (f" The LCN ({sum(la.params for la in r.tables['lcn']):,} parameters) has a gap of "
                    f"{fmt_pts(lcn['train_acc'] - lcn['test_acc'])} at {small:,} images.")
    return f"**(c) Fewer training samples, less overfitting?** {verdict}{split}{overfit}"


def _translation(r: Results) -> str:
    curves = {name: r.shift_curve(name) for name in r.shifts}
    k = len(curves["cnn"]) - 1
    drop = {name: c[0] - c[-1] for name, c in curves.items()}
    eq = r.equivariance
    first = next(key for key in eq["cnn"] if key.startswith("first layer, 1"))
    whole = next(key for key in eq["cnn"] if key.startswith("features"))
    exact = eq["cnn"][first] < 1e-4 and eq["cnn"][whole] < 1e-4
    maps = (f"A shifted input gives a shifted feature map: {'yes, exactly' if exact else '**only approximately**'} "
            f"for the CNN (relative error {eq['cnn'][first]:.1g} after conv1 for a 1-pixel shift, "
            f"{eq['cnn'][whole]:.1g} after both blocks for a {whole.split(', ')[1]} shift, borders excluded), and not "
            f"for the LCN ({eq['lcn'][first]:.2f} and {eq['lcn'][whole]:.2f}), which has no shared filter to slide.")
    ranked = f"CNN {fmt_pct(curves['cnn'][0])} → {fmt_pct(curves['cnn'][-1])}, MLP {fmt_pct(curves['mlp'][0])} → " \
             f"{fmt_pct(curves['mlp'][-1])}, LCN {fmt_pct(curves['lcn'][0])} → {fmt_pct(curves['lcn'][-1])}"
    n = r.environment["shift_test_size"]  # a drop is a difference of two accuracies: both ends count
    noise = 2 * math.hypot(standard_error(curves["cnn"][0], curves["mlp"][0], n),
                           standard_error(curves["cnn"][-1], curves["mlp"][-1], n))
    if abs(drop["cnn"] - drop["mlp"]) <= noise:
        acc = (f"The predictions are **not measurably** more or less robust than the MLP's: at {k} px, {ranked}. The "
               f"CNN loses {100 * drop['cnn']:.1f} points and the MLP {100 * drop['mlp']:.1f}, {_within_noise(r)} "
               f"(differences under {100 * noise:.1f} pts are noise), and neither is invariant")
    elif drop["cnn"] < drop["mlp"]:
        acc = (f"The predictions are more robust than the MLP's but not invariant: at {k} px, {ranked}. The CNN loses "
               f"{100 * drop['cnn']:.1f} points where the MLP loses {100 * drop['mlp']:.1f}")
    else:
        acc = (f"**The predictions are not more robust than the MLP's here**: at {k} px, {ranked}. The CNN loses "
               f"{100 * drop['cnn']:.1f} points, the MLP {100 * drop['mlp']:.1f}")
    one = curves["cnn"][1] - curves["cnn"][0]
    return (f"**(d) Robust to translation?** {maps} {acc}; after 1 px the CNN has already moved "
            f"{fmt_pts(one)}. Equivariant maps do not make invariant predictions: after the last pooling, the flatten "
            "+ dense classifier reads each feature at a fixed position.")

