"""The measured sections of the `compare` report, each written into a `report.Doc` from the summary.

Numbers come from `summarize(results)` (summary.py) so that each one printed is
also in results.json; numbers over seeds are printed as mean ± the 95%
half-width (claims.ci_pct and friends), verdicts from their intervals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .claims import NAMES, ci_num, ci_pct, ci_pts, fmt_pct, ingredients, judged, verdict
from .experiments import SAMPLE_MODELS, SHIFT_DIRECTIONS, Results
from .probes import FGSM_EPSILONS

if TYPE_CHECKING:
    from .report import Doc


def convolution(doc: Doc, r: Results, title: str) -> None:
    doc.h(2, title)
    doc.img(r.figures["convolution"], "One 3×3 filter at two positions, the same weights, two output pixels; a "
                                      "dense unit wired to every pixel")
    c = r.pictures["convolution"]
    doc.p(f"**Top:** a convolution layer slides one small filter over the image. Here it is filter {c['filter']} of "
          f"the trained CNN's first layer (seed {r.first.seed}): at each position the same nine weights and the same "
          "bias multiply the 3×3 pixels under them, and the sum is one pixel of the output map. Two positions, two "
          "boxes, one set of weights: a pattern gets the same response wherever it appears (*shared weights*), and "
          "each output pixel depends on nine input pixels only (*local connectivity*). **Bottom:** a unit of the "
          f"MLP's first layer (unit {c['unit']}) has one weight for every one of the 784 pixels and is the only unit "
          "that uses them. Everything below measures what these two wirings change.")


def parameters(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    rows = []
    for name, table in r.tables.items():
        total = s["parameters"]["totals"][name]
        for layer, share in zip(table, s["parameters"]["layer_share_percent"][name]):
            shapes = f"{'×'.join(map(str, layer.in_shape))} → {'×'.join(map(str, layer.out_shape))}"
            dense = f"{layer.dense_params:,}" if layer.params else "–"
            rows.append([NAMES[name], f"`{layer.name}` {layer.kind}", shapes, f"{layer.params:,}", f"{share:.1f}%",
                         dense, f"{layer.flops:,}"])
        rows.append([f"**{NAMES[name]} total**", "", "", f"**{total:,}**", "100%", "",
                     f"**{s['parameters']['flops'][name]:,}**"])
    doc.table(["model", "layer", "shape per image", "parameters", "share", "dense layer, same shapes",
               "FLOPs / image"], rows)
    doc.p("*Dense layer, same shapes*: the parameters a fully connected layer mapping the same input tensor to the "
          "same output tensor would need. Pooling layers have no parameters; max pooling shrinks each map 4×, "
          "global average pooling (`AdaptiveAvgPool2d(1)`) to one number per channel.")
    doc.img(r.figures["parameters"], "Parameters per layer, log scale")


def accuracy(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    f = s["finals"]
    rows = [[NAMES[name], f"{s_run.train_size:,}", f"{s['parameters']['totals'][name.split('+')[0]]:,}",
             ci_pct(f[name]["test_acc"]), ci_pct(f[name]["train_eval_acc"]), ci_pts(f[name]["gap"]),
             ci_num(f[name]["test_loss"], 3), ci_num(f[name]["train_eval_loss"], 3)]
            for name, s_run in r.first.runs.items()]
    doc.table(["model", "training images", "parameters", "test accuracy", "train accuracy", "gap (train − test)",
               "test loss", "train loss"], rows)
    lcn_note = ""
    if r.first.runs["lcn"].train_size < r.environment["train_size"]:
        lcn_note = (f" The LCN is trained on a class-balanced subset of {r.first.runs['lcn'].train_size:,} images: "
                    f"at {s['time']['lcn_over_cnn'].mean:.1f}× the CNN's time per image (measured below), more "
                    "would not fit the run's time budget.")
    diff = f["cnn_minus_mlp"]["test_acc"]
    st = r.settings
    doc.p(f"After {st.epochs} epoch{'s' if st.epochs > 1 else ''} (batch {st.batch_size}, {st.optimizer} lr "
          f"{st.lr:g}); mean ± 95% interval over {st.seeds} seeds. Train accuracy and loss are "
          f"measured after each epoch in eval mode on {r.environment['train_eval_size']:,} training images, not "
          f"averaged during the epoch, so the gap compares the same weights on both sets. CNN − MLP test accuracy, "
          f"paired: {ci_pts(diff)} ({verdict(diff, r)}).{lcn_note}")
    per_epoch = [[NAMES[name], e, ci_pct(rec["train_eval_acc"]), ci_pct(rec["test_acc"])]
                 for name, records in s["epochs"].items() for e, rec in enumerate(records, start=1)]
    doc.table(["model", "epoch", "train accuracy", "test accuracy"], per_epoch)
    doc.img(r.figures["learning_curves"], "Learning curves, mean over seeds: accuracy and loss per epoch, test solid, "
                                          "train dotted")


def sample_efficiency(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    st = r.settings
    doc.p(f"Class-balanced subsets of the training set, drawn anew for each seed; the largest is the main run above. "
          f"**Budget:** a set of n images is trained for max({st.epochs}, ⌈{st.min_images:,} / n⌉) epochs: at least "
          f"as many epochs as the main run and at least {st.min_images:,} images seen; every model gets the same "
          f"steps at every size. Test accuracy is on the same {r.environment['test_size']:,} test images "
          "throughout. Test accuracy (train accuracy in brackets), mean ± 95% over seeds:")
    table = s["sample"]
    sizes = sorted({int(n) for rows in table.values() for n in rows})
    rows = []
    for n in sizes:
        base = next(table[m][str(n)] for m in SAMPLE_MODELS if str(n) in table[m])
        rows.append([f"{n:,}", base["epochs"], base["steps"]]
                    + [f"{ci_pct(table[m][str(n)]['test'])} ({fmt_pct(table[m][str(n)]['train'].mean)})"
                       if str(n) in table[m] else "–" for m in SAMPLE_MODELS])
    doc.table(["training images", "epochs", "steps"] + [f"{NAMES[m]} test (train)" for m in SAMPLE_MODELS], rows)
    if any(str(n) not in table["lcn"] for n in sizes):
        doc.p(f"–: not run. The LCN, the slowest model, is trained on {', '.join(f'{int(n):,}' for n in table['lcn'])}"
              " images only (the last is its main run), to keep the run within its time budget.")
    diffs = s["sample_differences"]
    doc.table(["training images", "CNN − MLP test accuracy", "verdict: CNN ahead?", "MLP gap − CNN gap",
               "verdict: CNN overfits less?"],
              [[f"{int(n):,}", ci_pts(d["cnn_minus_mlp"]), verdict(d["cnn_minus_mlp"], r),
                ci_pts(d["mlp_gap_minus_cnn_gap"]), verdict(d["mlp_gap_minus_cnn_gap"], r)]
               for n, d in diffs.items()])
    doc.p("Both differences are paired over seeds: for each seed the two models trained on the same subset in the "
          "same order, and the interval is that of the per-seed differences.")
    doc.img(r.figures["sample_efficiency"], "Test accuracy and train–test gap against training-set size, mean ± 95%")


def translation(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    t, k = s["translation"], r.settings.max_shift
    directions = ", ".join(f"{d} (dy, dx per pixel = {v})" for d, v in SHIFT_DIRECTIONS.items())
    doc.p(f"Each of {r.environment['shift_test_size']:,} test images (class-balanced, the same for every model and "
          f"seed) is shifted by 0 to {k} pixels with zero fill (`shift_images`) in three fixed directions, "
          f"{directions}; the accuracy is averaged over the directions. The augmented runs saw random shifts of up to "
          "±2 px in training; the others only unshifted images.")
    rows = [[NAMES[n]] + [ci_pct(a) for a in curve] + [ci_pts(-t[f"drop_{k}"][n]), ci_pct(t[f"kept_{k}"][n])]
            for n, curve in t["curves"].items()]
    doc.table(["model"] + [f"{j} px" for j in range(k + 1)] + ["change", f"kept at {k} px"], rows)
    doc.p(f"*Kept*: the share of the above-chance accuracy left at {k} px, (accuracy at {k} px − 10%) / (accuracy "
          "at 0 px − 10%): 100% is invariant, 0% is down to chance. It compares models that reached different clean "
          "accuracies fairly: a model that learned less has less to lose in points, not more to keep.")
    doc.img(r.figures["translation"], "Accuracy on shifted test images, mean ± 95%; one test image shifted "
                                      "diagonally 0–4 px")
    doc.p(f"**What each ingredient buys.** {ingredients(r, s)} These verdicts test the textbook attribution: "
          "sharing makes the maps move with the input (measured exactly below), averaging over all positions stops "
          "the read-out from caring where a feature is, and augmentation shows a position-dependent head the shifts "
          "it must ignore, and only those.")
    gains = [[f"{NAMES[pair.split(' vs ')[0]]} vs {NAMES[pair.split(' vs ')[1]]}"]
             + [f"{ci_pts(i)}: {verdict(i, r)}" for i in by_px.values()]
             for pair, by_px in t["kept_gain"].items()]
    doc.table(["comparison (paired)", "more accuracy kept at 2 px", f"more accuracy kept at {k} px"], gains)
    detail = [[NAMES[n]] + [ci_pct(i) for i in by_dir.values()] for n, by_dir in t["directions"].items()]
    doc.table(["model"] + [f"{d}, {k} px" for d in SHIFT_DIRECTIONS], detail)
    doc.p("**Does a shifted input give a shifted feature map?** Relative difference between *map(shift(x))* and "
          f"*shift(map(x))*, borders excluded, over {r.environment['equivariance_images']} test images, mean over "
          "seeds (0 = exactly equivariant):")
    eq = t["equivariance"]
    keys = list(next(iter(eq.values())))
    doc.table(["model", *keys], [[NAMES[n]] + [f"{v.mean:.2g}" for v in errs.values()] for n, errs in eq.items()])
    doc.p("*first layer*: the output of conv1 (or LC1), same size as the input. *features*: the output of both "
          "blocks (7×7), where a shift of 4 pixels should move the maps by exactly one cell.")


def looks(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    p = s["probes"]
    doc.p("Gradients with respect to the *input* show what a trained network is sensitive to: the same "
          "`backward()` that trains the weights, taken with respect to the image "
          "(`x = Tensor(images, requires_grad=True)`).")
    doc.img(r.figures["saliency"], "Saliency |∂ logit of the true class / ∂ pixel| of the MLP, the CNN and CNN-GAP "
                                   "on the same 8 test images (first seed)")
    names = [n for n in ("mlp", "cnn", "cnn-gap") if f"saliency_background_{n}" in p]
    doc.table(["model", "share of saliency on the background", "pixels holding half of it (median)"],
              [[NAMES[n], ci_pct(p[f"saliency_background_{n}"]), ci_num(p[f"saliency_area_{n}"], 0)]
               for n in names])
    diff = s["saliency_background_mlp_minus_cnn"]
    judged_text = judged(diff, "**the MLP is more sensitive to the background** than the CNN: pixels where no garment "
                           "is, whose weights in its whole-image templates still move its logits",
                     "the CNN is more sensitive to the background than the MLP",
                     f"the two are {verdict(diff, r)}")
    doc.p(f"Over {r.settings.probe_images} test images per seed; the background (pixels exactly 0) is "
          f"{fmt_pct(p['background_share'].mean)} of an image. MLP − CNN share on the background, paired: "
          f"{ci_pts(diff)}: {judged_text}. A dense unit weighs every pixel wherever the garment is; a conv unit "
          "responds to local patterns, so its gradient is largest where the garment has edges and texture.")
    rf = r.pictures["receptive_field"]["trained"]
    th, tw = rf["theoretical"]
    doc.img(r.figures["receptive_field"], "Measured receptive field of one conv2 unit (mean |gradient| over test "
                                          "images) and the theoretical receptive field (box)")
    doc.p(f"**Measured vs theoretical receptive field.** A conv2 unit reads 3×3 pooled cells, each the maximum of "
          f"2×2 conv1 outputs, each reading 3×3 pixels: its theoretical receptive field is {th}×{tw} = "
          f"{p['rf_theoretical'].mean:.0f} pixels (`receptive_box` walks the layers back). The gradient of one "
          f"conv2 unit at the centre of the map, averaged over {r.settings.probe_images} test images, confirms the "
          f"box exactly ({ci_pct(p['rf_inside'])} of the gradient inside it: the engine's gradient is exact) and shows "
          f"where within it the unit really looks: half of the gradient lies in {ci_num(p['rf_area50'], 1)} pixels "
          f"and 90% in {ci_num(p['rf_area90'], 1)} after training, against {ci_num(p['rf_area50_init'], 1)} and "
          f"{ci_num(p['rf_area90_init'], 1)} for the same unit at initialisation. "
          + ("The *effective* receptive field is smaller than the theoretical one: half of the unit's sensitivity "
             "sits in less than half of the box."
             if p["rf_area50"].high < p["rf_theoretical"].mean / 2 else
             "The gradient is spread over most of the box: the effective receptive field fills the theoretical one."))


def adversarial(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    fg = s["fgsm"]
    doc.p(f"The fast gradient sign method moves every pixel by ε in the direction that raises the loss, "
          f"x + ε · sign(∂ loss / ∂ x), clipped to [0, 1] (pixels in [0, 1]; ε = 0.1 is a tenth of the range). "
          f"{r.environment['fgsm_size']:,} test images, each attacked against the model being tested; ε = 0 is the "
          "clean accuracy.")
    doc.table(["model"] + [f"ε = {e:g}" for e in FGSM_EPSILONS],
              [[NAMES[n]] + [ci_pct(a) for a in accs] for n, accs in fg["accuracy"].items()])
    diffs = fg["cnn_minus_mlp"]
    doc.table(["", *(f"ε = {e:g}" for e in FGSM_EPSILONS)],
              [["CNN − MLP (paired)", *(ci_pts(d) for d in diffs)],
               ["verdict: CNN more robust?", *(verdict(d, r) for d in diffs)]])
    doc.img(r.figures["fgsm"], "Accuracy under FGSM, mean ± 95%; one test image, its perturbation at ε = 0.1 and "
                               "the result, for the MLP and the CNN (first seed)")
    last = fg["kept_at_largest"]
    worst = max(last.values())
    doc.p((f"Neither architecture is robust: at ε = {FGSM_EPSILONS[-1]:g} the MLP keeps {fmt_pct(last['mlp'])} "
           f"and the CNN {fmt_pct(last['cnn'])} of its clean accuracy. " if worst < 0.75 else
           f"At ε = {FGSM_EPSILONS[-1]:g} the MLP keeps {fmt_pct(last['mlp'])} and the CNN {fmt_pct(last['cnn'])} of "
           "its clean accuracy. ")
          + "The perturbation is each network's own gradient sign, so it shows again what the network looks at: "
            "compare it with the saliency maps above.")


def learned(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    m = s["learned"]
    doc.img(r.figures["cnn_filters"], "The CNN's 32 first-layer 3×3 filters, before and after training (first seed)")
    doc.p(f"Share of each 3×3 filter's energy in the ramp/edge patterns a + b·x + c·y (an edge detector scores "
          f"near 1, noise 1/3): CNN conv1 {ci_num(m['cnn_ramp_init'])} at initialisation → "
          f"{ci_num(m['cnn_ramp_trained'])} after training (paired change {ci_num(s['learned_ramp_gain'])}: "
          f"{verdict(s['learned_ramp_gain'], r)}); filters above 0.7: {m['cnn_edges_init'].mean:.1f} → "
          f"{m['cnn_edges_trained'].mean:.1f} of {m['cnn_filters'].mean:.0f} (mean over seeds). LCN first layer "
          f"after training: {ci_num(m['lcn_ramp_trained'])}. The measure sees ramps and step edges only: a thin-line "
          "(bar) detector such as [−1, 2, −1] scores 0.")
    doc.img(r.figures["cnn_feature_maps"], "One test image and the CNN's maps after conv1 and conv2 (+ ReLU)")
    doc.img(r.figures["mlp_weights"], "The MLP's first-layer weights as 28×28 images, and their change in training")
    doc.p(f"Pixels holding half of a unit's squared weight (median over the MLP's first-layer units; a CNN conv1 "
          f"unit sees 9 pixels by construction): {ci_num(m['mlp_area_init'], 0)} at initialisation, "
          f"{ci_num(m['mlp_area_trained'], 0)} after training, {ci_num(m['mlp_area_change'], 0)} for the change "
          "alone.")
    doc.img(r.figures["lcn_filters"], "LCN first-layer filters 0–7 (rows) at five positions (columns)")
    doc.p(f"Without sharing, the filter for a channel differs from position to position: cosine similarity of "
          f"the same filter at horizontally adjacent positions {ci_num(m['lcn_similarity_trained'])} after training "
          f"({ci_num(m['lcn_similarity_init'])} at initialisation, {ci_num(m['lcn_similarity_change'])} for the "
          f"change alone; sharing would force 1). Relative change of the first layer's weights in training: CNN "
          f"{ci_num(m['cnn_relative_change'])}, LCN {ci_num(m['lcn_relative_change'])}, MLP "
          f"{ci_num(m['mlp_relative_change'])}.")


def cost(doc: Doc, r: Results, s: dict[str, Any], title: str) -> None:
    doc.h(2, title)
    p, f = s["parameters"], s["finals"]
    rows = [[NAMES[name], f"{p['flops'][arch]:,}", f"{p['flops_over_mlp'][arch]:.1f}×",
             ci_num(f[name]["train_seconds_per_epoch"], 1), ci_num(f[name]["train_us_per_image"], 0),
             ci_num(f[name]["test_us_per_image"], 0)]
            for name, arch in ((n, n.split("+")[0]) for n in r.run_names)]
    doc.table(["model", "FLOPs / image (forward)", "vs MLP", "train s / epoch", "train µs / image",
               "test µs / image"], rows)
    t = s["time"]
    why = (f": equal arithmetic, different cost. Its {p['totals']['lcn']:,} parameters are read and updated at "
           "every step, and its products are many small matrix multiplies (one per position) instead of one large "
           "one." if t["lcn_over_cnn"].mean > 1.2 else ", about the same.")
    doc.p(f"The CNN computes {p['flops_cnn_over_mlp']:.0f}× the MLP's FLOPs per image and takes "
          f"{ci_num(t['cnn_over_mlp'], 1)}× its training time per image. The LCN computes exactly the CNN's FLOPs and "
          f"takes {ci_num(t['lcn_over_cnn'], 1)}× its time{why}")
    doc.p("FLOPs: 2 × multiply-adds of the Linear, Conv2d and LocallyConnected2d layers, per image, forward only "
          "(a training step costs about 3× that). Times are wall-clock on this machine (see the load below): a "
          "shared machine inflates them, and the interval over seeds includes that.")


def settings(doc: Doc, r: Results, title: str) -> None:
    doc.h(2, title)
    env, st = r.environment, r.settings
    sizes = ", ".join(f"{row['n']:,}" for row in r.first.sample["mlp"])
    shrunk = (f"what was shrunk to fit the time budget: the main runs use {env['train_size']:,} of the "
              f"{env['train_available']:,} training images (the LCN {env['lcn_train_size']:,}), {st.epochs} epochs; "
              f"the test set is {env['test_size']:,} of the {env['test_available']:,} test images; translation uses "
              f"{env['shift_test_size']:,} and FGSM {env['fgsm_size']:,} of the "
              f"{env['test_size']:,} test images; the LCN's sample-efficiency sizes are "
              f"{', '.join(f'{n:,}' for n in (st.lcn_sizes or st.sizes))}")
    doc.ul([
        f"mode `{st.label}`, seeds {', '.join(map(str, env['seeds']))}, tinygrad_cnn {env['version']}, Python "
        f"{env['python']}, numpy {env['numpy']}",
        f"data: Fashion-MNIST from {env['data']} ({env['train_available']:,} training / {env['test_available']:,} "
        f"test images available; used {env['train_size']:,} / {env['test_size']:,}, the test images the same for "
        "every seed, the training subsets drawn per seed)",
        shrunk,
        f"main runs: {st.epochs} epochs, batch {st.batch_size}, {st.optimizer} lr {st.lr:g}; train–test gap measured "
        f"on {env['train_eval_size']:,} training images; augmentation: {st.augment}",
        f"sample efficiency: sizes {sizes}, each trained max({st.epochs}, ⌈{st.min_images:,} / n⌉) epochs",
        f"translation: {env['shift_test_size']:,} test images, shifts 0–{st.max_shift} px in directions "
        f"{', '.join(SHIFT_DIRECTIONS)}; FGSM: {env['fgsm_size']:,} test images, ε "
        f"{', '.join(f'{e:g}' for e in FGSM_EPSILONS)}; saliency and receptive field: {st.probe_images} test images",
        f"machine: {env['cpu_count']} CPUs, {env['machine']}; threads: {env['threads']}; load average "
        f"{env['load_start'][0]:.2f} at the start, {env['load_end'][0]:.2f} at the end (other work on the machine "
        "slows every time measured here)",
        f"total wall time {env['wall_seconds']:.0f} s ({env['wall_minutes']:.1f} min; estimated at the start "
        f"{env['estimate_minutes']:.1f} min), finished {env['finished']}",
    ])

