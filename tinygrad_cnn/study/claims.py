"""The answers to the four claims, written from the numbers of one `compare` run.

Every sentence that judges a claim is chosen by an interval, never fixed in
advance: a difference counts as "yes" or "no" only when its 95% paired
interval over seeds excludes zero (stats.py), and as "within noise at this
size" otherwise. If a claim does not hold in a run, its answer says so.
The usual claims about CNNs versus regular networks:

    (a) far fewer parameters          (b) local patterns (edges, corners) in the first layer
    (c) fewer samples, less overfit   (d) robust to translation: shifted input, shifted feature map
"""

from __future__ import annotations

import math
from typing import Any

from .experiments import Results
from .stats import NO, NOISE, YES, Interval

NAMES = {"mlp": "MLP", "cnn": "CNN", "lcn": "LCN", "cnn-gap": "CNN-GAP", "mlp+shift": "MLP + shift aug.",
         "cnn+shift": "CNN + shift aug."}


def fmt_pct(x: float) -> str:
    """An accuracy as a percentage: 0.9123 → 91.2%."""
    return f"{100 * x:.1f}%"


def fmt_pts(d: float) -> str:
    """A difference of accuracies in percentage points, signed: 0.031 → +3.1 pts."""
    return f"{100 * d:+.1f} pts"


def _half(i: Interval, scale: float, digits: int) -> str:
    return f" ± {scale * i.half_width:.{digits}f}" if math.isfinite(i.half_width) else ""


def ci_pct(i: Interval) -> str:
    """An accuracy over seeds: 89.8% ± 0.4 (the 95% half-width, in points)."""
    return f"{100 * i.mean:.1f}%{_half(i, 100, 1)}"


def ci_pts(i: Interval) -> str:
    """A difference over seeds, in points: +3.2 ± 1.1 pts."""
    return f"{100 * i.mean:+.1f}{_half(i, 100, 1)} pts"


def ci_num(i: Interval, digits: int = 2) -> str:
    """Any other number over seeds: 0.38 ± 0.02."""
    return f"{i.mean:.{digits}f}{_half(i, 1, digits)}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:,.0f}×" if a / b >= 10 else f"{a / b:.1f}×"


def verdict(i: Interval, r: Results) -> str:
    """The verdict word of an interval, with what to do about noise."""
    v = i.verdict()
    if v != NOISE:
        return v
    if r.settings.seeds == 1:
        return f"{NOISE} (one seed: no interval; use --seeds 3 or more)"
    if r.settings.label == "quick":
        return f"{NOISE}: rerun without --quick"
    return NOISE


def claim_answers(r: Results, s: dict[str, Any]) -> list[str]:
    """One paragraph per claim, (a) to (d); `s` is summarize(r)."""
    return [_parameters(r, s), _local_patterns(r, s), _samples(r, s), _translation(r, s)]


def _parameters(r: Results, s: dict[str, Any]) -> str:
    p = s["parameters"]
    totals = p["totals"]
    per_layer = "; ".join(
        f"conv{i} has {c['conv']:,} parameters, the locally connected layer of the same geometry {c['local']:,} "
        f"({ratio(c['local'], c['conv'])}: the cost of not sharing) and a dense layer with the same input and output "
        f"{c['dense']:,} ({ratio(c['dense'], c['conv'])})" for i, c in enumerate(p["per_conv_layer"], start=1))
    cnn, mlp, gap = totals["cnn"], totals["mlp"], totals["cnn-gap"]
    if cnn < mlp:
        whole = f"Whole network, it holds too: the CNN has {cnn:,} parameters, {ratio(mlp, cnn)} fewer than the MLP's."
    else:
        whole = (f"Whole network, **it does not hold for the CNN**: it has {cnn:,} parameters, {ratio(cnn, mlp)} the "
                 f"MLP's {mlp:,}, and {p['biggest_share_percent']:.0f}% of them sit in its first linear layer "
                 f"(`{p['biggest_layer']}`), an ordinary dense layer reading the 64×7×7 maps; the two convolutions "
                 f"hold {p['conv_total']:,} ({p['conv_share_percent']:.1f}%).")
    gap_text = (f"**It holds for CNN-GAP**, the same conv blocks followed by global average pooling and one linear "
                f"layer: {gap:,} parameters, {ratio(mlp, gap)} fewer than the MLP" if gap < mlp else
                f"Even CNN-GAP has {gap:,} parameters, {ratio(gap, mlp)} the MLP's")
    acc = s["finals"]["cnn-gap_minus_cnn"]["test_acc"]
    fewer = all(c["conv"] < c["local"] and c["conv"] < c["dense"] for c in p["per_conv_layer"])
    accuracy = judged(acc, f"its test accuracy is higher than the CNN's ({ci_pts(acc)})",
                      f"but after the same training **its test accuracy is lower than the CNN's** ({ci_pts(acc)})",
                      f"its test accuracy differs from the CNN's by {ci_pts(acc)}, {verdict(acc, r)}")
    return (f"**(a) Far fewer parameters?** Per layer, {'yes' if fewer else '**not always**'}: {per_layer}. {whole} "
            f"{gap_text}; {accuracy}. "
            f"The LCN, local but unshared, has {totals['lcn']:,} ({ratio(totals['lcn'], cnn)} the CNN's): sharing, "
            "not locality alone, is what makes convolution layers small.")


def _local_patterns(r: Results, s: dict[str, Any]) -> str:
    m = s["learned"]
    gain = s["learned_ramp_gain"]
    v = gain.verdict()
    if v == YES:
        cnn = (f"its filters moved towards edge and ramp detectors: the share of their energy in edge/ramp "
               f"patterns rose by {ci_num(gain)} (from {ci_num(m['cnn_ramp_init'])} at random initialisation to "
               f"{ci_num(m['cnn_ramp_trained'])}), and {m['cnn_edges_trained'].mean:.1f} of "
               f"{m['cnn_filters'].mean:.0f} filters are edge-like on average ({m['cnn_edges_init'].mean:.1f} at "
               "initialisation)")
    else:
        cnn = (f"but **its filters did not measurably become edge detectors**: the share of their energy in edge/ramp "
               f"patterns changed by {ci_num(gain)} ({verdict(gain, r)}; {ci_num(m['cnn_ramp_init'])} at random "
               f"initialisation, {ci_num(m['cnn_ramp_trained'])} after training; a measure of ramps and step edges, "
               "blind to thin lines and corners, so look at the filters and feature maps below too)")
    area = m["mlp_area_change"]
    if area.low > 50:
        mlp = (f"The MLP's first layer learned no local patterns: half of a unit's weight change is spread over "
               f"{ci_num(area, 0)} pixels (median), whole-image templates, where a CNN filter sees 9.")
    else:
        mlp = (f"The MLP's first layer learned fairly local patterns too: half of a unit's weight change lies in "
               f"{ci_num(area, 0)} pixels (median).")
    return (f"**(b) Local patterns such as edges in the first layer?** A conv1 unit sees 3×3 pixels, so whatever it "
            f"learns is local by construction; {cnn}. {mlp} Corners and the *order* in which features appear "
            "during training were not measured; \"first\" here means the first layer.")


def _sizes(ns: list[int]) -> str:
    return ", ".join(f"{n:,}" for n in ns)


def _samples(r: Results, s: dict[str, Any]) -> str:
    diffs = {int(n): d for n, d in s["sample_differences"].items()}
    shared = sorted(diffs)
    small, large = shared[0], shared[-1]
    by = {v: [n for n in shared if diffs[n]["cnn_minus_mlp"].verdict() == v] for v in (YES, NO, NOISE)}
    first, last = diffs[small]["cnn_minus_mlp"], diffs[large]["cnn_minus_mlp"]
    if len(by[YES]) == len(shared):
        answer = f"Yes: the CNN beats the MLP at every size, by {ci_pts(first)} at {small:,} images"
    elif len(by[NOISE]) == len(shared):
        answer = (f"**Not measurably**: the difference is {ci_pts(first)} at {small:,} images, and at every size "
                  f"{verdict(first, r)}")
    elif not by[YES]:
        answer = (f"**No, not here**: the CNN is behind the MLP at {_sizes(by[NO])} images and ahead at none "
                  f"({ci_pts(first)} at {small:,} images)")
    elif not by[NO]:
        answer = (f"Mostly: the CNN is ahead at {_sizes(by[YES])} images ({ci_pts(first)} at {small:,}) and the "
                  f"difference is within noise at {_sizes(by[NOISE])}")
    else:
        answer = (f"**Only in part**: the CNN is ahead at {_sizes(by[YES])} images and behind at {_sizes(by[NO])} "
                  f"({ci_pts(first)} at {small:,} images)")
    answer += f"; {ci_pts(last)} at {large:,} (paired 95% intervals over {r.settings.seeds} seeds)."
    split = ""
    if "lcn_minus_mlp" in diffs[small]:
        split = (f" Splitting the CNN − MLP difference at {small:,} images: locality (LCN − MLP) "
                 f"{ci_pts(diffs[small]['lcn_minus_mlp'])}, weight sharing (CNN − LCN) "
                 f"{ci_pts(diffs[small]['cnn_minus_lcn'])}.")
    gaps = {v: [n for n in shared if diffs[n]["mlp_gap_minus_cnn_gap"].verdict() == v] for v in (YES, NO, NOISE)}
    sample = s["sample"]
    overfit = (f" Overfitting (train − test accuracy): CNN {ci_pts(sample['cnn'][str(small)]['gap'])} vs MLP "
               f"{ci_pts(sample['mlp'][str(small)]['gap'])} at {small:,} images, "
               f"{ci_pts(sample['cnn'][str(large)]['gap'])} vs {ci_pts(sample['mlp'][str(large)]['gap'])} at "
               f"{large:,}; ")
    if len(gaps[YES]) == len(shared):
        overfit += "the CNN overfits less at every size."
    elif len(gaps[NOISE]) == len(shared):
        overfit += f"at every size the difference is {verdict(diffs[small]['mlp_gap_minus_cnn_gap'], r)}."
    elif not gaps[YES]:
        overfit += f"**the CNN overfits more** at {_sizes(gaps[NO])} images and less at none."
    else:
        overfit += f"the CNN overfits less at {_sizes(gaps[YES])} images only"
        overfit += f", more at {_sizes(gaps[NO])}" if gaps[NO] else ""
        overfit += f"; within noise at {_sizes(gaps[NOISE])}." if gaps[NOISE] else "."
    return f"**(c) Fewer training samples, less overfitting?** {answer}{split}{overfit}"


def _translation(r: Results, s: dict[str, Any]) -> str:
    t = s["translation"]
    k = r.settings.max_shift
    eq = t["equivariance"]
    first = next(key for key in eq["cnn"] if key.startswith("first layer, 1"))
    whole = next(key for key in eq["cnn"] if key.startswith("features"))
    exact = max(eq["cnn"][first].values + eq["cnn"][whole].values) < 1e-4
    maps = (f"A shifted input gives a shifted feature map: {'yes, exactly' if exact else '**only approximately**'} "
            f"for the CNN (relative error {eq['cnn'][first].mean:.1g} after conv1 for a 1-pixel shift, "
            f"{eq['cnn'][whole].mean:.1g} after both blocks for a {whole.split(', ')[1]} shift, borders excluded), "
            f"and not for the LCN ({eq['lcn'][first].mean:.2f} and {eq['lcn'][whole].mean:.2f}), which has no "
            "shared filter to slide.")
    gain = t["kept_gain"]["cnn vs mlp"][f"{k} px"]
    curves, kept = t["curves"], t[f"kept_{k}"]
    ranked = (f"CNN {ci_pct(curves['cnn'][0])} → {ci_pct(curves['cnn'][k])} (it keeps {ci_pct(kept['cnn'])} of its "
              f"above-chance accuracy), MLP {ci_pct(curves['mlp'][0])} → {ci_pct(curves['mlp'][k])} (keeps "
              f"{ci_pct(kept['mlp'])})")
    acc = judged(gain, f"The CNN's predictions are more robust than the MLP's but not invariant: at {k} px, {ranked}",
                  f"**The CNN's predictions are not more robust than the MLP's here**: at {k} px, {ranked}",
                  f"The CNN's predictions are **not measurably** more or less robust than the MLP's: at {k} px, "
                  f"{ranked}; the difference in the share kept, {ci_pts(gain)}, is {verdict(gain, r)}")
    return (f"**(d) Robust to translation?** {maps} {acc}. Equivariant maps do not make invariant predictions: "
            "after the last pooling, the flatten + dense head reads each feature at a fixed position. "
            f"{ingredients(r, s)}")


def ingredients(r: Results, s: dict[str, Any]) -> str:
    """What each ingredient buys against shifts, each judged by the paired interval of the share of accuracy kept."""
    t = s["translation"]["kept_gain"]
    k = r.settings.max_shift
    share, gap = t["cnn vs lcn"]["2 px"], t["cnn-gap vs cnn"][f"{k} px"]
    parts = [judged(share, f"weight sharing gives equivariant maps, and with them robustness to small shifts: at "
                            f"2 px the CNN keeps {ci_pts(share)} more of its accuracy than the LCN",
                     f"weight sharing gives equivariant maps, yet **at 2 px the CNN keeps less of its accuracy than "
                     f"the LCN** ({ci_pts(share)})",
                     f"weight sharing gives equivariant maps, though at 2 px the CNN's advantage over the LCN, "
                     f"{ci_pts(share)} of accuracy kept, is {verdict(share, r)}"),
             judged(gap, f"global average pooling gives a far more invariant read-out: at {k} px CNN-GAP keeps "
                          f"{ci_pts(gap)} more of its accuracy than the CNN",
                     f"**global average pooling did not make the read-out more robust here**: at {k} px CNN-GAP "
                     f"keeps {ci_pts(gap)} more of its accuracy than the CNN",
                     f"global average pooling's gain at {k} px, {ci_pts(gap)} of accuracy kept, is {verdict(gap, r)}")]
    key = f"cnn+{r.settings.augment} vs cnn"
    if key in t:
        near, far = t[key]["2 px"], t[key][f"{k} px"]
        parts.append(judged(near, f"augmentation teaches the head: at 2 px, inside the ±2 px it trained on, the "
                                   f"augmented CNN keeps {ci_pts(near)} more of its accuracy than the CNN",
                             f"**augmentation did not help inside its own range**: at 2 px the augmented CNN keeps "
                             f"{ci_pts(near)} more of its accuracy than the CNN",
                             f"augmentation's gain at 2 px, {ci_pts(near)} of accuracy kept, is {verdict(near, r)}")
                     + f" (at {k} px, beyond that range: {ci_pts(far)}, {verdict(far, r)})")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def judged(i: Interval, yes: str, no: str, noise: str) -> str:
    """The sentence that fits the interval's verdict."""
    return {YES: yes, NO: no}.get(i.verdict(), noise)
