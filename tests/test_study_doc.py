"""docs/cnn-vs-mlp.md shows a real default run: every number on the page appears in that run's results.json.

The page is written by `python3 -m tinygrad_cnn.study.docs_page REPORT_DIR` from a run's report; its
results.json is copied beside the figures. A number typed by hand, or left over from another run, has no
counterpart in results.json and fails here. Numbers are compared as printed: "89.8%" matches a value
that prints as 89.8 with one decimal, either as is or ×100 (accuracies are stored as fractions).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinygrad_cnn.study.docs_page import IMAGES, docs_page

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "cnn-vs-mlp.md"
RESULTS = ROOT / "docs" / IMAGES / "results.json"
NUMBER = re.compile(r"(?<![A-Za-z_\d.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![A-Za-z_\d.])\d+(?:\.\d+)?")


def prose(markdown: str) -> str:
    """The page without code (fenced and inline), link targets and HTML comments: the text a reader reads."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def numbers_in(text: str) -> list[str]:
    """Every number as printed, without its sign (a minus may be typographic) or thousands separators."""
    return [m.replace(",", "") for m in NUMBER.findall(text)]


def printed_forms(results: object) -> set[str]:
    """Every way a value of results.json can be printed: 0, 1, 2 or 3 decimals, as is or ×100; and the
    numbers inside its strings (dates, versions, the machine's name)."""
    forms: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, bool) or value is None:
            return
        elif isinstance(value, (int, float)):
            for scaled in (abs(value), abs(100 * value)):
                forms.update(f"{scaled:.{d}f}" for d in range(4))
        elif isinstance(value, str):
            forms.update(numbers_in(value))

    walk(results)
    return forms


def test_number_matching_on_a_known_example() -> None:
    forms = printed_forms({"acc": 0.8984, "params": 421642, "finished": "2025-01-02 08:30", "half": None})
    page = "test accuracy 89.8% ± 0.4 pts; 421,642 parameters; finished 2025-01-02 08:30; conv2 and 3×3"
    found = numbers_in(prose(page))
    assert found == ["89.8", "0.4", "421642", "2025", "01", "02", "08", "30", "3", "3"]
    assert {"89.8", "421642", "2025", "08"} <= forms and "0.4" not in forms and "3" not in forms
    assert numbers_in(prose("`4.2` and ```\n5.5\n``` and ![a](x1.png)")) == []


@pytest.fixture(scope="module")
def page_and_results() -> tuple[str, dict]:
    if not RESULTS.is_file():
        pytest.fail(f"{RESULTS} is missing: regenerate the page with python3 -m tinygrad_cnn.study.docs_page REPORT")
    return PAGE.read_text(encoding="utf-8"), json.loads(RESULTS.read_text(encoding="utf-8"))


def test_the_page_is_a_real_default_run(page_and_results: tuple[str, dict]) -> None:
    page, results = page_and_results
    settings, env = results["settings"], results["environment"]
    assert settings["label"] == "default" and settings["seeds"] >= 3 and len(results["seeds"]) == settings["seeds"]
    assert env["wall_seconds"] <= 15 * 60, "the default run must fit 15 minutes"
    assert f"repeated over {settings['seeds']} seeds" in page
    for png in re.findall(rf"\]\(({re.escape(IMAGES)}/[^)]+\.png)\)", page):
        assert (PAGE.parent / png).is_file(), png


def test_every_number_on_the_page_is_in_results_json(page_and_results: tuple[str, dict]) -> None:
    page, results = page_and_results
    forms = printed_forms(results)
    missing = [n for n in numbers_in(prose(page)) if n not in forms]
    assert not missing, f"numbers on docs/cnn-vs-mlp.md that results.json does not hold: {missing[:20]}"


def test_the_page_is_the_report_unedited(page_and_results: tuple[str, dict], tmp_path: Path) -> None:
    """What docs_page writes from a report: the report's sections, its image links pointed at the copies."""
    report = "# title\n\nintro 12.3\n\n## Section\n\ntext 4.5\n\n![alt](fig.png)\n"
    page = docs_page(report)
    assert "# title" not in page and page.count("\n# ") == 0 and page.startswith("# What a convolutional")
    assert "intro 12.3\n\n## Section\n\ntext 4.5" in page and f"![alt]({IMAGES}/fig.png)" in page
    assert page_and_results[0].count("\n## ") >= 11  # every section of the report is on the page
