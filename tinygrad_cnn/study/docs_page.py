"""docs/cnn-vs-mlp.md from a real `compare` run: the page's prose around the run's own report, no number typed.

    python3 -m tinygrad_cnn.study.docs_page report/       # after `tinygrad-cnn compare --out report`

copies the run's PNGs and results.json into docs/images/cnn-vs-mlp/ and writes
docs/cnn-vs-mlp.md: a fixed introduction, every section of report.md (image
links pointed at the copies), and runnable checks. tests/test_study_doc.py
checks that every number of the page appears in the copied results.json.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

IMAGES = "images/cnn-vs-mlp"

INTRO = """# What a convolutional network does differently from a regular one, measured

*What is the difference between a convolutional neural network and a regular
neural network?* The usual answer: convolution layers connect each unit to a
small patch only (local connectivity) and slide one small filter over the
whole image (shared weights), and pooling shrinks the maps with no parameters.
From that, four claims follow:

- **(a)** a CNN needs far fewer parameters;
- **(b)** it learns local patterns, such as edges and corners, in its first layer;
- **(c)** it needs fewer training samples and overfits less;
- **(d)** it is robust to translation: a shifted input gives a shifted feature map.

This page does not repeat the claims; it measures them, over several seeds,
with error bars. Everything below the line is the report of one run of
`tinygrad-cnn compare` in its default mode, copied unedited (regenerate the
page with `python3 -m tinygrad_cnn.study.docs_page REPORT_DIR`); every number
in it is also in [results.json](images/cnn-vs-mlp/results.json), per model and
per seed. Where a claim does not hold in the measurement, the report says so.

```bash
tinygrad-cnn compare --out report         # the default run: writes report/report.md, report.html, results.json
tinygrad-cnn compare --quick --out quick  # every artifact on a 1,000-image subset, for a first look
```

---
"""

CHECKS = """
## Check it yourself

The parameter counts are closed forms the test suite checks, and anyone can recount them:

```python
from tinygrad_cnn import models
from tinygrad_cnn.study.measure import layer_table

names = ("mlp", "cnn", "cnn-gap", "lcn")
counts = {name: sum(row.params for row in layer_table(models.build(name))) for name in names}
assert counts == {"mlp": 235_146, "cnn": 421_642, "cnn-gap": 19_466, "lcn": 4_278_922}
```

The shift is a small exact function, and the equivariance test is a few lines on any model:

```python
import numpy as np
from tinygrad_cnn.study.experiments import equivariance_errors, shift_images

x = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)
assert shift_images(x, 1, -1)[0].tolist() == [[0, 0, 0], [2, 3, 0], [5, 6, 0]]  # down 1, left 1; zeros fill in

images = (np.random.default_rng(0).random((4, 28, 28)) * 255).astype(np.uint8)
cnn_error = equivariance_errors(models.cnn().features, images, (1,))   # untrained weights suffice
lcn_error = equivariance_errors(models.lcn().features, images, (1,))
assert max(cnn_error.values()) < 1e-5 < min(lcn_error.values())
```

And what a network looks at is one gradient with respect to the input:

```python
from tinygrad_cnn.study.probes import fgsm, receptive_box, saliency

model = models.cnn()
x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
labels = np.array([3, 7])
assert saliency(model, x, labels).shape == (2, 28, 28)       # |∂ logit of the label / ∂ pixel|
assert np.array_equal(fgsm(model, x, labels, 0.0), x)         # ε = 0 changes nothing
rows, cols = receptive_box(list(model.features)[:4], 7, 7, (28, 28))
assert (rows.stop - rows.start, cols.stop - cols.start) == (8, 8)   # a conv2 unit sees 8×8 pixels
```
"""


def docs_page(report_md: str) -> str:
    """The page: INTRO, the report without its title (image links into IMAGES), CHECKS."""
    body = report_md[report_md.index("\n") + 1:].lstrip("\n")
    body = "\n".join(line.replace("](", f"]({IMAGES}/", 1) if line.startswith("![") else line
                     for line in body.splitlines())
    return INTRO + "\n" + body.rstrip() + "\n" + CHECKS


def write_docs_page(report: Path, docs: Path) -> Path:
    """Copy the run's PNGs and results.json into docs/IMAGES and write docs/cnn-vs-mlp.md; returns its path."""
    images = docs / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.png"):
        old.unlink()
    for path in [*report.glob("*.png"), report / "results.json"]:
        shutil.copyfile(path, images / path.name)
    page = docs / "cnn-vs-mlp.md"
    page.write_text(docs_page((report / "report.md").read_text(encoding="utf-8")), encoding="utf-8")
    return page


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[2]
    print(f"wrote {write_docs_page(Path(sys.argv[1]), root / 'docs')}")
