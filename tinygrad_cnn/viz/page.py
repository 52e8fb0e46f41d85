"""The backprop page drawn: its graph as SVG (`draw_svg`), and the HTML around it (`page_html`), one
self-contained file: inline SVG, CSS and script, nothing fetched.

Everything the page shows was computed in Python (viz/steps.py) and sits in one JSON block,
`<script type="application/json" id="backprop-data">`; the script below only replays it. Step k
applies the changes of steps 0..k (badges under nodes, labels on edges), marks the node of step k
with the CSS class `current`, fills the side panel with step k's HTML, and keeps
`<body data-step="k">` and the address's `#step=k` in line with the controls. Tools and tests read
those (`data-steps` holds N, the last step's number).
"""

from __future__ import annotations

import html
import json
from typing import Any

import graphviz

from .graph import Layout, Unit
from .style import COLORS, styled_digraph

CSS = """
* { box-sizing: border-box; }
body { margin: 0; height: 100vh; display: flex; flex-direction: column; color: #222;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; padding: 8px 14px;
         border-bottom: 1px solid #ddd; background: #f6f6f6; }
h1 { font-size: 15px; margin: 0; font-weight: 600; }
nav { display: flex; align-items: center; gap: 6px; }
nav button { font: inherit; padding: 2px 10px; min-width: 4.5em; cursor: pointer; }
#slider { width: 240px; }
#counter { font-variant-numeric: tabular-nums; min-width: 7.5em; }
.legend { display: flex; gap: 12px; font-size: 12px; color: #555; }
.legend span::before { content: ""; display: inline-block; width: 14px; height: 10px; margin-right: 4px;
                       vertical-align: -1px; border: 2px solid var(--c); border-radius: 3px; }
.legend .key-now { --c: #d62728; } .legend .key-partial { --c: #e67e22; }
.legend .key-partial::before { border-style: dashed; }
.legend .key-complete { --c: #2e7d32; } .legend .key-done { --c: #bbb; }
main { flex: 1; display: flex; min-height: 0; }
#graph { flex: 1; overflow: auto; padding: 10px; }
#graph svg { display: block; margin: 0 auto; max-width: 100%; height: auto; }
#panel { width: 430px; flex: none; overflow: auto; padding: 6px 16px 16px; border-left: 1px solid #ddd;
         background: #fcfcfc; }
#panel h2 { font-size: 16px; margin: 8px 0 4px; }
#panel h3 { font-size: 13px; margin: 14px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: #666; }
#panel p { margin: 4px 0; }
#panel table { border-collapse: collapse; width: 100%; font-size: 13px; }
#panel td, #panel th { border-top: 1px solid #e6e6e6; padding: 3px 6px 3px 0; vertical-align: top; text-align: left; }
#panel th { font-weight: 600; color: #555; border-top: 0; }
.rule, #panel code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
.rule { white-space: pre-wrap; background: #fff; border: 1px solid #e0e0e0; border-radius: 4px; padding: 5px 7px; }
.value { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; white-space: pre-wrap; color: #b03a2e; }
.note, .where, .keys { color: #777; font-size: 12px; }
.order { font-size: 13px; color: #444; }
.inside li { margin: 2px 0; }
#graph g.node > :is(ellipse, polygon, path) { transition: stroke-width .15s; }
#graph g.node.partial > :is(ellipse, polygon, path) { stroke: #e67e22; stroke-width: 3px; stroke-dasharray: 6 3; }
#graph g.node.complete > :is(ellipse, polygon, path) { stroke: #2e7d32; stroke-width: 2.5px; }
#graph g.node.done > :is(ellipse, polygon, path) { fill-opacity: .3; stroke: #aaa; stroke-width: 1px; }
#graph g.node.done > text:not(.grad) { fill: #777; }
#graph g.node.current > :is(ellipse, polygon, path) { stroke: #d62728; stroke-width: 5px; stroke-dasharray: none;
                                                      fill-opacity: 1; }
#graph text.grad { fill: #b03a2e; font-weight: bold; }
#graph g.edge.sent > path { stroke: #d62728; stroke-width: 3px; }
#graph g.edge.sent > polygon { stroke: #d62728; fill: #d62728; }
#graph g.edge.carried text.grad { fill: #999; font-weight: normal; }
"""

SCRIPT = r"""
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("backprop-data").textContent);
  const steps = data.steps, last = steps.length - 1, $ = (id) => document.getElementById(id);
  const node = (unit) => $("u_" + unit);
  // The gradient line is the last line of a node's or an edge's label (sized in Python for its longest text).
  const lastText = (g) => {
    const texts = g.querySelectorAll("text"), text = texts[texts.length - 1];
    text.classList.add("grad");
    return text;
  };
  const badges = {}, labels = {};
  data.badged.forEach((unit) => { badges[unit] = lastText(node(unit)); });
  data.labelled.forEach((id) => { labels[id] = lastText($(id)); });
  let shown = 0, timer = null;

  // The state at step k: steps 0..k replayed, each step listing only what it changes.
  function stateAt(k) {
    const badge = {}, status = {}, edge = {}, done = new Set();
    for (let i = 0; i <= k; i++) {
      if (i < k && steps[i].unit) done.add(steps[i].unit);
      for (const [unit, text, st] of steps[i].badges) { badge[unit] = text; status[unit] = st; }
      for (const [id, text] of steps[i].edges) edge[id] = [text, i];
    }
    return { badge, status, edge, done };
  }

  function show(k) {
    k = Math.max(0, Math.min(last, Number.isFinite(k) ? k : 0));
    const st = stateAt(k), current = steps[k].unit;
    const states = ["current", "done", "partial", "complete"];
    document.querySelectorAll("#graph g.node").forEach((g) => g.classList.remove(...states));
    for (const unit in badges) badges[unit].textContent = st.badge[unit] || "";
    for (const unit in st.status) node(unit).classList.add(st.status[unit]);
    st.done.forEach((unit) => node(unit).classList.add("done"));
    for (const id in labels) {
      const got = st.edge[id];
      labels[id].textContent = got ? got[0] : "";
      $(id).classList.toggle("sent", !!got && got[1] === k);
      $(id).classList.toggle("carried", !!got && got[1] < k);
    }
    if (current) {
      node(current).classList.remove("done");
      node(current).classList.add("current");
      node(current).scrollIntoView({ block: "center", inline: "center" });
    }
    $("panel").innerHTML = steps[k].panel;
    $("slider").value = String(k);
    $("counter").textContent = "step " + k + " of " + last;
    document.body.dataset.step = String(k);
    if (location.hash !== "#step=" + k) {
      try { history.replaceState(null, "", "#step=" + k); } catch (e) { /* a page shown in a srcdoc iframe */ }
    }
    shown = k;
  }

  function play(on) {
    clearInterval(timer);
    timer = null;
    if (on) {
      if (shown === last) show(0);
      timer = setInterval(() => (shown >= last ? play(false) : show(shown + 1)), 1200);
    }
    $("play").textContent = timer ? "❚❚ pause" : "▶ play";
  }

  const fromHash = () => { const m = /step=(\d+)/.exec(location.hash); return m ? parseInt(m[1], 10) : 0; };
  $("prev").addEventListener("click", () => { play(false); show(shown - 1); });
  $("next").addEventListener("click", () => { play(false); show(shown + 1); });
  $("play").addEventListener("click", () => play(timer === null));
  $("slider").addEventListener("input", () => { play(false); show(parseInt($("slider").value, 10)); });
  window.addEventListener("hashchange", () => { if (fromHash() !== shown) show(fromHash()); });
  document.addEventListener("keydown", (e) => {
    if (e.target === $("slider") || e.altKey || e.ctrlKey || e.metaKey) return;  // the slider moves itself
    if (e.target.tagName === "BUTTON" && (e.key === " " || e.key === "Enter")) return;  // a button clicks itself
    const keys = { ArrowRight: () => show(shown + 1), ArrowLeft: () => show(shown - 1),
                   Home: () => show(0), End: () => show(last) };
    if (e.key === " ") play(timer === null);
    else if (keys[e.key]) { play(false); keys[e.key](); }
    else return;
    e.preventDefault();
  });
  zoomSmallGraph();
  window.addEventListener("resize", zoomSmallGraph);
  show(fromHash());

  // A small graph is drawn larger, up to 1.6 times, as far as the space beside the panel allows.
  function zoomSmallGraph() {
    const svg = document.querySelector("#graph svg"), box = $("graph");
    const w = svg.viewBox.baseVal.width, h = svg.viewBox.baseVal.height, px = 4 / 3;  // Graphviz draws in points
    const zoom = Math.max(1, Math.min(1.6, (box.clientWidth - 24) / (w * px), (box.clientHeight - 24) / (h * px)));
    svg.setAttribute("width", w * zoom + "pt");
    svg.setAttribute("height", h * zoom + "pt");
  }
})();
"""


def page_html(title: str, svg: str, data: dict[str, Any]) -> str:
    """The whole page. `data` is Story.as_json(): its "steps" are steps 0 to N."""
    last = len(data["steps"]) - 1
    # Every "<" escaped: inside a <script>, "</script>" or "<!--" in a string would end or bend the block.
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    title = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backprop, step by step: {title}</title>
<style>{CSS}</style>
</head>
<body data-steps="{last}" data-step="0">
<header>
<h1>Backprop, step by step: {title}</h1>
<nav>
<button id="prev" type="button" title="previous step (←)">◀ prev</button>
<button id="play" type="button" title="play or pause (space)">▶ play</button>
<button id="next" type="button" title="next step (→)">next ▶</button>
<input id="slider" type="range" min="0" max="{last}" value="0" aria-label="step">
<span id="counter">step 0 of {last}</span>
</nav>
<div class="legend"><span class="key-now">running now</span><span class="key-partial">gradient still partial</span>
<span class="key-complete">gradient complete</span><span class="key-done">already ran</span></div>
</header>
<main>
<div id="graph">{svg}</div>
<aside id="panel"></aside>
</main>
<script type="application/json" id="backprop-data">{blob}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""


# ---------------------------------------------------------------------------- drawing
def draw_svg(layout: Layout, badges: dict[str, str], edges: dict[str, str]) -> str:
    """The graph as inline SVG: draw_graph's colours, an `id` on every node (u_NAME) and edge (eI).

    A node that will ever show a gradient gets one more label line, and an edge one more label line,
    holding the longest text it will show: Graphviz sizes the layout for it, and the page's script
    only rewrites that line (the last <text> of the node or edge).
    """
    g = styled_digraph("backprop")
    members: dict[Any, list[Unit]] = {}
    for unit in layout.units:
        members.setdefault(unit.cluster, []).append(unit)
    children: dict[Any, list[Any]] = {}
    for key, (parent, _) in layout.clusters.items():
        children.setdefault(parent, []).append(key)

    def fill(graph: graphviz.Digraph, key: Any) -> None:
        for unit in members.get(key, []):
            lines = [*unit.lines, badges[unit.name]] if unit.name in badges else unit.lines
            graph.node(unit.name, _dot_text(lines), id=f"u_{unit.name}", shape="ellipse" if unit.kind == "op"
                       else "box", style="filled,rounded" if unit.kind == "module" else "filled",
                       fillcolor=COLORS[unit.kind], **{"class": unit.kind})
        for child in children.get(key, []):
            sub = graphviz.Digraph(name=f"cluster_{len(names)}", graph_attr={
                "label": _dot_text([layout.clusters[child][1]]), "labeljust": "l", "color": "#999999",
                "fontsize": "10", "style": "rounded"})
            names.append(child)
            fill(sub, child)
            graph.subgraph(sub)

    names: list[Any] = []
    fill(g, None)
    for i, (source, target, label, _) in enumerate(layout.edges):
        lines = ([label] if label else []) + ([edges[f"e{i}"]] if f"e{i}" in edges else [])
        g.edge(source, target, **({"label": _dot_text(lines)} if lines else {}), id=f"e{i}")
    svg = g.pipe(format="svg", encoding="utf-8")
    return svg[svg.index("<svg"):]


def _dot_text(lines: list[str]) -> str:
    """Lines as a literal DOT label: backslashes kept, no HTML-label brackets, DOT's own newline."""
    return "\\n".join(s.replace("\\", "\\\\").replace("<", "‹").replace(">", "›") for s in lines)
