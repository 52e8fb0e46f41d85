"""Rendering the `tinygrad-cnn compare` report: one document model, written as Markdown and as HTML.

The report is built once as a list of blocks (headings, paragraphs, tables,
images) and rendered twice, so report.md and report.html can never say
different things. The Markdown links the PNGs next to it; the HTML embeds them
(base64) so it is one file to mail or open anywhere.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .claims import claim_answers, fmt_pct, fmt_pts
from .experiments import SHIFT_DIRECTIONS, Results

SECTIONS = (
    "Answers to the four claims",
    "Parameters per layer",
    "Accuracy, train–test gap and learning curves",
    "Sample efficiency",
    "Translation robustness",
    "What was learned",
    "Cost: FLOPs and time",
    "Settings and reproducibility",
)
NAMES = {"mlp": "MLP", "cnn": "CNN", "lcn": "LCN"}


@dataclass
class Doc:
    """A report as a list of blocks: ("h", level, text), ("p", text), ("ul", items), ("table", header, rows),
    ("img", path, alt)."""

    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", items))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", header, [[str(c) for c in row] for row in rows]))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", Path(path), alt))

    def markdown(self) -> str:
        out: list[str] = []
        for kind, *rest in self.blocks:
            if kind == "h":
                out.append("#" * rest[0] + " " + rest[1])
            elif kind == "p":
                out.append(rest[0])
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in rest[0]))
            elif kind == "table":
                header, rows = rest
                lines = [header, ["---"] + ["---:"] * (len(header) - 1), *rows]
                out.append("\n".join("| " + " | ".join(cells) + " |" for cells in lines))
            else:
                out.append(f"![{rest[1]}]({rest[0].name})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body: list[str] = []
        for kind, *rest in self.blocks:
            if kind == "h":
                body.append(f"<h{rest[0]}>{_inline(rest[1])}</h{rest[0]}>")
            elif kind == "p":
                body.append(f"<p>{_inline(rest[0])}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in rest[0]) + "</ul>")
            elif kind == "table":
                header, rows = rest
                head = "".join(f"<th>{_inline(c)}</th>" for c in header)
                cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            else:
                png = base64.b64encode(rest[0].read_bytes()).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(rest[1])}" src="data:image/png;base64,{png}">'
                            f"<figcaption>{_inline(rest[1])}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45;padding:0 1em}"
                 "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
                 "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
                 "code{background:#f4f4f4;padding:0 3px}figcaption{color:#555;font-size:90%}")
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """Markdown's **bold**, *italics* and `code` as HTML, everything else escaped; nothing is parsed inside code."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part[1:-1], quote=False)}</code>")
            continue
        part = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html.escape(part, quote=False))
        out.append(re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", part))
    return "".join(out)


def write_report(results: Results, out: Path) -> tuple[Path, Path]:
    """report.md and report.html in `out` (the PNGs are already there); returns their paths."""
    doc = build_report(results)
    title = "CNN vs MLP, measured"
    md, page = out / "report.md", out / "report.html"
    md.write_text(doc.markdown(), encoding="utf-8")
    page.write_text(doc.html(title), encoding="utf-8")
    return md, page


def build_report(r: Results) -> Doc:
    doc = Doc()
    env, s = r.environment, r.settings
    doc.h(1, "What a convolutional network does differently from a regular one, measured")
    doc.p(f"Three networks trained on Fashion-MNIST ({env['train_size']:,} training images, {env['test_size']:,} "
          f"test images) with the same seed ({r.seed}), data order, optimizer and budget: an **MLP** (every pixel "
          "connected to every hidden unit), a **CNN** (3×3 convolutions: local connectivity and shared weights, "
          "then 2×2 max pooling) and an **LCN**, the CNN's exact geometry with `LocallyConnected2d`: local "
          "connectivity *without* weight sharing. Comparing CNN with LCN measures what sharing does; LCN with MLP, "
          f"what locality does. Mode: {s.label}. Regenerate with `tinygrad-cnn compare"
          f"{' --quick' if s.label == 'quick' else ''} --seed {r.seed}`.")
    doc.h(2, SECTIONS[0])
    doc.ul(claim_answers(r))
    _parameters(doc, r)
    _accuracy(doc, r)
    _sample_efficiency(doc, r)
    _translation(doc, r)
    _learned(doc, r)
    _cost(doc, r)
    _settings(doc, r)
    return doc


def _parameters(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[1])
    rows = []
    for name, table in r.tables.items():
        total = sum(layer.params for layer in table)
        for layer in table:
            shapes = f"{'×'.join(map(str, layer.in_shape))} → {'×'.join(map(str, layer.out_shape))}"
            dense = f"{layer.dense_params:,}" if layer.params else "–"
            rows.append([NAMES[name], f"`{layer.name}` {layer.kind}", shapes, f"{layer.params:,}",
                         f"{100 * layer.params / total:.1f}%", dense, f"{layer.flops:,}"])
        flops = sum(layer.flops for layer in table)
        rows.append([f"**{NAMES[name]} total**", "", "", f"**{total:,}**", "100%", "", f"**{flops:,}**"])
    doc.table(["model", "layer", "shape per image", "parameters", "share", "dense layer, same shapes",
               "FLOPs / image"], rows)
    doc.p("*Dense layer, same shapes*: the parameters a fully connected layer mapping the same input tensor to the "
          "same output tensor would need. Pooling layers have no parameters; they shrink each map 4×.")
    doc.img(r.figures["parameters"], "Parameters per layer, log scale")


def _accuracy(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[2])
    rows = []
    for name, run in r.runs.items():
        last = run.final
        rows.append([NAMES[name], f"{run.train_size:,}", f"{sum(la.params for la in r.tables[name]):,}",
                     fmt_pct(last["test_acc"]), fmt_pct(last["train_eval_acc"]),
                     fmt_pts(last["train_eval_acc"] - last["test_acc"]), f"{last['test_loss']:.3f}",
                     f"{last['train_eval_loss']:.3f}"])
    doc.table(["model", "training images", "parameters", "test accuracy", "train accuracy", "gap (train − test)",
               "test loss", "train loss"], rows)
    lcn_note = ""
    if r.runs["lcn"].train_size < r.environment["train_size"]:
        slower = _seconds_per_image(r, "lcn") / _seconds_per_image(r, "cnn")
        lcn_note = (f" The LCN is trained on a class-balanced subset of {r.runs['lcn'].train_size:,} images: at "
                    f"{slower:.1f}× the CNN's time per image (measured below), the full set would not fit the "
                    "default run's time budget.")
    doc.p(f"After {r.settings.epochs} epochs (batch {r.settings.batch_size}, {r.settings.optimizer} lr "
          f"{r.settings.lr:g}). Train accuracy and loss are measured after each epoch in eval mode on "
          f"{r.environment['train_eval_size']:,} training images, not averaged during the epoch, so the gap "
          f"compares the same weights on both sets.{lcn_note}")
    per_epoch = [[NAMES[name], rec["epoch"], f"{rec['train_loss']:.4f}", fmt_pct(rec["train_eval_acc"]),
                  fmt_pct(rec["test_acc"]), fmt_pts(rec["train_eval_acc"] - rec["test_acc"])]
                 for name, run in r.runs.items() for rec in run.history]
    doc.table(["model", "epoch", "running train loss", "train accuracy", "test accuracy", "gap"], per_epoch)
    doc.img(r.figures["learning_curves"], "Learning curves: accuracy and loss per epoch, test solid, train dashed")


def _sample_efficiency(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[3])
    s = r.settings
    doc.p(f"Class-balanced subsets of the training set (seed {r.seed}); the largest is the main run above. "
          f"**Budget:** a set of n images is trained for max({s.epochs}, ⌈{s.min_images:,} / n⌉) epochs: at least "
          f"as many epochs as the main run and at least {s.min_images:,} images seen, so that the small sets are "
          f"trained long enough to fit their training data; every model gets the same steps at every size. "
          f"{_fit_note(r)} Test accuracy is on the same {r.environment['test_size']:,} test images throughout.")
    names = list(r.sample)
    by_n = {name: {row["n"]: row for row in rows} for name, rows in r.sample.items()}
    rows = []
    for n in sorted({n for rows_ in by_n.values() for n in rows_}):
        base = next(by_n[name][n] for name in names if n in by_n[name])
        cells = [f"{n:,}", base["epochs"], base["steps"]]
        cells += [f"{fmt_pct(by_n[m][n]['test_acc'])} ({fmt_pct(by_n[m][n]['train_acc'])})" if n in by_n[m] else "–"
                  for m in names]
        rows.append(cells)
    doc.table(["training images", "epochs", "steps"] + [f"{NAMES[n]} test (train)" for n in names], rows)
    all_sizes = sorted({n for rows_ in by_n.values() for n in rows_})
    if any(n not in by_n[m] for n in all_sizes for m in names):
        lcn_sizes = ", ".join(f"{n:,}" for n in sorted(by_n["lcn"]))
        doc.p(f"–: not run. The LCN, the slowest model, is trained on {lcn_sizes} images only (the last is its main "
              "run), to keep the default run within its time budget.")
    doc.img(r.figures["sample_efficiency"], "Test accuracy and train–test gap against training-set size")


def _fit_note(r: Results) -> str:
    """Whether the smaller sets were in fact fit, from the measured training accuracies."""
    small = [row["train_acc"] for rows in r.sample.values() for row in rows[:-1]]
    if not small:
        return ""
    low, high = min(small), max(small)
    if low >= 0.97:
        return f"They were: every smaller set reached {fmt_pct(low)} training accuracy or more."
    return (f"Measured training accuracy on the smaller sets: {fmt_pct(low)} to {fmt_pct(high)}, so not every one "
            "was fit completely; read the smallest sizes as \"after this budget\".")


def _translation(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[4])
    directions = ", ".join(f"{d} (dy, dx per pixel = {v})" for d, v in SHIFT_DIRECTIONS.items())
    doc.p(f"Each of {r.environment['shift_test_size']:,} test images (class-balanced) is shifted by 0 to "
          f"{r.settings.max_shift} pixels with zero fill (`shift_images`) in three fixed directions, {directions}; "
          "the accuracy is averaged over the directions. The models were trained on unshifted images only.")
    rows = [[NAMES[n]] + [fmt_pct(a) for a in r.shift_curve(n)] + [fmt_pts(r.shift_curve(n)[-1] - r.shift_curve(n)[0])]
            for n in r.shifts]
    doc.table(["model"] + [f"{k} px" for k in range(r.settings.max_shift + 1)] + ["change"], rows)
    detail = [[NAMES[n]] + [fmt_pct(accs[-1]) for accs in r.shifts[n].values()] for n in r.shifts]
    doc.table(["model"] + [f"{d}, {r.settings.max_shift} px" for d in SHIFT_DIRECTIONS], detail)
    doc.img(r.figures["translation"], "Accuracy on shifted test images; one test image shifted diagonally 0–4 px")
    doc.p("**Does a shifted input give a shifted feature map?** Relative difference between *map(shift(x))* and "
          "*shift(map(x))*, borders excluded, over "
          f"{r.environment['equivariance_images']} test images (0 = exactly equivariant):")
    keys = list(next(iter(r.equivariance.values())))
    doc.table(["model", *keys], [[NAMES[n]] + [f"{v:.2g}" for v in errs.values()]
                                 for n, errs in r.equivariance.items()])
    doc.p("*first layer*: the output of conv1 (or LC1), same size as the input. *features*: the output of both "
          "blocks (7×7), where a shift of 4 pixels should move the maps by exactly one cell.")


def _learned(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[5])
    m = r.learned
    doc.img(r.figures["cnn_filters"], "The CNN's 32 first-layer 3×3 filters, before and after training")
    doc.p(f"Share of each 3×3 filter's energy in the ramp/edge patterns a + b·x + c·y (an edge detector scores "
          f"near 1, noise 1/3): CNN conv1 {m['cnn_ramp_init']:.2f} at initialisation → {m['cnn_ramp_trained']:.2f} "
          f"after training; filters above 0.7: {m['cnn_edges_init']:.0f} → {m['cnn_edges_trained']:.0f} of "
          f"{m['cnn_filters']:.0f}. LCN first layer after training: {m['lcn_ramp_trained']:.2f}. The measure sees "
          "ramps and step edges only: a thin-line (bar) detector such as [−1, 2, −1] scores 0.")
    doc.img(r.figures["cnn_feature_maps"], "One test image and the CNN's maps after conv1 and conv2 (+ ReLU)")
    doc.img(r.figures["mlp_weights"], "The MLP's first-layer weights as 28×28 images, and their change in training")
    doc.p(f"Pixels holding half of a unit's squared weight (median over the MLP's first-layer units; a CNN conv1 "
          f"unit sees 9 pixels by construction): {m['mlp_area_init']:.0f} at initialisation, "
          f"{m['mlp_area_trained']:.0f} after training, {m['mlp_area_change']:.0f} for the change alone.")
    doc.img(r.figures["lcn_filters"], "LCN first-layer filters 0–7 (rows) at five positions (columns)")
    doc.p(f"Without sharing, the filter for a channel differs from position to position: cosine similarity of "
          f"the same filter at horizontally adjacent positions {m['lcn_similarity_trained']:.2f} after training "
          f"({m['lcn_similarity_init']:.2f} at initialisation, {m['lcn_similarity_change']:.2f} for the change "
          f"alone; sharing would force 1). Relative change of the first layer's weights in training: CNN "
          f"{m['cnn_relative_change']:.2f}, LCN {m['lcn_relative_change']:.2f}, MLP {m['mlp_relative_change']:.2f}.")


def _seconds_per_image(r: Results, name: str) -> float:
    """Mean training wall time per image in the main run."""
    run = r.runs[name]
    return float(np.mean([rec["train_seconds"] for rec in run.history])) / run.train_size


def _cost(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[6])
    rows = []
    n_test = r.environment["test_size"]
    mlp_flops = sum(la.flops for la in r.tables["mlp"])
    for name, run in r.runs.items():
        epoch = float(np.mean([rec["train_seconds"] for rec in run.history]))
        evals = float(np.mean([rec["eval_seconds"] for rec in run.history]))
        flops = sum(la.flops for la in r.tables[name])
        rows.append([NAMES[name], f"{flops:,}", f"{flops / mlp_flops:.1f}×", f"{epoch:.1f}",
                     f"{1e6 * epoch / run.train_size:.0f}", f"{1e6 * evals / n_test:.0f}"])
    doc.table(["model", "FLOPs / image (forward)", "vs MLP", "train s / epoch", "train µs / image",
               "test µs / image"], rows)
    flops = {name: sum(la.flops for la in r.tables[name]) for name in r.runs}
    time_ratio = _seconds_per_image(r, "cnn") / _seconds_per_image(r, "mlp")
    lcn_ratio = _seconds_per_image(r, "lcn") / _seconds_per_image(r, "cnn")
    why = (f": equal arithmetic, different cost. Its {sum(la.params for la in r.tables['lcn']):,} parameters are "
           "read and updated at every step, and its products are many small matrix multiplies (one per position) "
           "instead of one large one." if lcn_ratio > 1.2 else ", about the same.")
    doc.p(f"The CNN computes {flops['cnn'] / flops['mlp']:.0f}× the MLP's FLOPs per image and takes {time_ratio:.0f}× "
          f"its training time per image. The LCN computes exactly the CNN's FLOPs and takes {lcn_ratio:.1f}× its "
          f"time{why}")
    doc.p("FLOPs: 2 × multiply-adds of the Linear, Conv2d and LocallyConnected2d layers, per image, forward only "
          "(a training step costs about 3× that). Times are wall-clock on this machine (see the load below): a "
          "shared machine inflates them.")


def _settings(doc: Doc, r: Results) -> None:
    doc.h(2, SECTIONS[7])
    env, s = r.environment, r.settings
    sizes = ", ".join(f"{row['n']:,}" for row in next(iter(r.sample.values())))
    doc.ul([
        f"mode `{s.label}`, seed {r.seed}, tinygrad_cnn {env['version']}, Python {env['python']}, numpy {env['numpy']}",
        f"data: Fashion-MNIST from {env['data']} ({env['train_available']:,} training / {env['test_available']:,} "
        f"test images available; used {env['train_size']:,} / {env['test_size']:,})",
        f"main run: {s.epochs} epochs, batch {s.batch_size}, {s.optimizer} lr {s.lr:g}, on {env['train_size']:,} "
        f"images ({env['lcn_train_size']:,} for the LCN); train–test gap measured on {env['train_eval_size']:,} "
        "training images",
        f"sample efficiency: sizes {sizes}, "
        f"each trained max({s.epochs}, ⌈{s.min_images:,} / n⌉) epochs",
        f"translation: {env['shift_test_size']:,} test images, shifts 0–{s.max_shift} px in directions "
        f"{', '.join(SHIFT_DIRECTIONS)}",
        f"machine: {env['cpu_count']} CPUs, {env['machine']}; threads: {env['threads']}; load average "
        f"{env['load_start'][0]:.2f} at the start, {env['load_end'][0]:.2f} at the end (other work on the machine "
        "slows every time measured here)",
        f"total wall time {env['wall_seconds']:.0f} s ({env['wall_seconds'] / 60:.1f} min), finished {env['finished']}",
    ])
