"""Every ```python block in docs/*.md runs, and every examples/*.py script runs.

Docs: the blocks of one page run in order in one shared namespace (a page reads
like one notebook), each page is its own test, in a fresh temporary working
directory. A block whose fence says ```python no-run is shown but not run (use
sparingly: for output-free sketches that cannot run here). A page that trains
or reads real data can mark itself slow with the comment ``<!-- slow -->``.

Examples: each script runs in a subprocess with a timeout, from a temporary
working directory. A script that needs real data or takes long says
``# slow-example`` on one of its first lines and then runs only with `-m slow`.

New pages and scripts are picked up by the glob: nothing to register here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
EXAMPLE_TIMEOUT_S = 300
SLOW_EXAMPLE_TIMEOUT_S = 3600
HEAD_LINES = 10  # where `# slow-example` is looked for

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*(.*)$")


@dataclass
class Block:
    code: str
    line: int  # 1-based line of the first code line in the page
    info: list[str]


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page (CommonMark fences: ``` or ~~~, any length ≥ 3)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).split()
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not closing.group(2).strip():
                break
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            i += 1
        blocks.append(Block("\n".join(body) + "\n", i - len(body) + 1 if body else i + 1, info))
        i += 1
    return blocks


def python_blocks(text: str) -> list[Block]:
    return [b for b in code_blocks(text) if b.info[:1] in (["python"], ["py"]) and "no-run" not in b.info[1:]]


def _doc_param(page: Path):
    slow = "<!-- slow -->" in page.read_text(encoding="utf-8")
    return pytest.param(page, id=page.name, marks=[pytest.mark.slow] if slow else [])


def _example_param(script: Path):
    with script.open(encoding="utf-8") as f:
        head = [next(f, "") for _ in range(HEAD_LINES)]
    slow = any(line.strip() == "# slow-example" for line in head)
    return pytest.param(script, slow, id=script.name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("page", [_doc_param(p) for p in DOC_PAGES])
def test_doc_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    for number, block in enumerate(python_blocks(page.read_text(encoding="utf-8")), start=1):
        # Pad with blank lines so that a traceback points at the page's own line numbers.
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        try:
            exec(code, namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}: python block {number} (line {block.line}) failed: "
                                 f"{type(e).__name__}: {e}") from e


@pytest.mark.parametrize("script, slow", [_example_param(s) for s in EXAMPLES])
def test_example_runs(script: Path, slow: bool, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path),  # an example's temporary folder lands here
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    timeout = SLOW_EXAMPLE_TIMEOUT_S if slow else EXAMPLE_TIMEOUT_S
    try:
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"{script.name} ran past {timeout} s; mark it `# slow-example` if it is meant to be long\n"
                    f"--- stdout so far (tail)\n{out[-2000:]}")
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n--- stdout (tail)\n{result.stdout[-3000:]}"
        f"\n--- stderr (tail)\n{result.stderr[-3000:]}")


def test_block_parser() -> None:
    page = "\n".join([
        "text", "```python", "x = 1", "```", "", "````md", "```python", "not code", "```", "````",
        "```python no-run", "boom()", "```", "~~~py", "y = x + 1", "~~~", "```bash", "ls", "```",
    ])
    blocks = python_blocks(page)
    assert [b.code for b in blocks] == ["x = 1\n", "y = x + 1\n"]
    assert [b.line for b in blocks] == [3, 15]
