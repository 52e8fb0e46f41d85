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

from . import report_sections
from .claims import claim_answers
from .experiments import Results
from .summary import summarize

SECTIONS = (
    "What a convolution is",
    "Answers to the four claims",
    "Parameters per layer",
    "Accuracy, train–test gap and learning curves",
    "Sample efficiency",
    "Translation: where invariance comes from",
    "What each network looks at",
    "Adversarial robustness (FGSM)",
    "What was learned",
    "Cost: FLOPs and time",
    "Settings and reproducibility",
)


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
    """The whole report, section by section (report_sections.py), from the Results and their summary."""
    doc = Doc()
    s = summarize(r)
    env, st = r.environment, r.settings
    seeds = ", ".join(map(str, env["seeds"]))
    doc.h(1, "What a convolutional network does differently from a regular one, measured")
    doc.p(f"Networks trained on Fashion-MNIST ({env['train_size']:,} training images, {env['test_size']:,} test "
          f"images) with the same seeds, data order, optimizer and budget: an **MLP** (every pixel connected to every "
          "hidden unit), a **CNN** (3×3 convolutions: local connectivity and shared weights, then 2×2 max pooling "
          "and a dense head), **CNN-GAP** (the same convolutions, then global average pooling and one linear layer) "
          "and an **LCN**, the CNN's exact geometry with `LocallyConnected2d`: local connectivity *without* weight "
          "sharing. Comparing CNN with LCN measures what sharing does; LCN with MLP, what locality does. "
          + ("The MLP and the CNN are also trained with random shifts of up to ±2 px (*+ shift aug.*). "
             if st.augment != "none" else "")
          + f"**Every trained measurement is repeated over {st.seeds} seed{'s' if st.seeds > 1 else ''} ({seeds})** "
          "and shown as the mean ± the half-width of its 95% Student-t interval; a difference between two models "
          "is a *paired* interval (the models share seeds and data order), and a verdict is \"yes\" or \"no\" only "
          "when that interval excludes zero, otherwise \"within noise at this size\". Mode: "
          f"{st.label}. Regenerate with `tinygrad-cnn compare{' --quick' if st.label == 'quick' else ''} --seed "
          f"{r.seed} --seeds {st.seeds}`; every number is also in `results.json`, per model and per seed.")
    report_sections.convolution(doc, r, SECTIONS[0])
    doc.h(2, SECTIONS[1])
    doc.ul(claim_answers(r, s))
    report_sections.parameters(doc, r, s, SECTIONS[2])
    report_sections.accuracy(doc, r, s, SECTIONS[3])
    report_sections.sample_efficiency(doc, r, s, SECTIONS[4])
    report_sections.translation(doc, r, s, SECTIONS[5])
    report_sections.looks(doc, r, s, SECTIONS[6])
    report_sections.adversarial(doc, r, s, SECTIONS[7])
    report_sections.learned(doc, r, s, SECTIONS[8])
    report_sections.cost(doc, r, s, SECTIONS[9])
    report_sections.settings(doc, r, SECTIONS[10])
    return doc
