"""`tinygrad-cnn compare`: exact shifts, closed-form parameter and FLOP counts, and a full (tiny) report."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import models
from tinygrad_cnn.cli import main
from tinygrad_cnn.study import compare
from tinygrad_cnn.study.claims import claim_answers
from tinygrad_cnn.study.experiments import Settings, epochs_for_size, equivariance_errors, shift_images
from tinygrad_cnn.study.measure import half_energy_area, layer_table, neighbour_similarity, ramp_fraction
from tinygrad_cnn.study.report import SECTIONS, write_report
from tinygrad_cnn.training import seed_everything

FIGURES = ("parameters", "learning_curves", "sample_efficiency", "translation", "cnn_filters", "cnn_feature_maps",
           "mlp_weights", "lcn_filters")
TINY = Settings(label="tiny", train_size=200, test_size=100, epochs=1, sizes=(100,), min_images=200,
                train_eval_size=100, shift_test_size=50)
# The same three architectures, narrower, so the whole pipeline runs in seconds even on a busy machine.
SMALL_MODELS = {"mlp": lambda: models.mlp(hidden=(32, 16)), "cnn": lambda: models.cnn(channels=(4, 8), hidden=16),
                "lcn": lambda: models.lcn(channels=(4, 8), hidden=16)}


# ---------------------------------------------------------------- shift_images
def test_shift_moves_pixels_and_fills_zeros() -> None:
    x = np.arange(1, 10, dtype=np.uint8).reshape(1, 3, 3)
    assert shift_images(x, 0, 1)[0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]
    assert shift_images(x, 1, 0)[0].tolist() == [[0, 0, 0], [1, 2, 3], [4, 5, 6]]
    assert shift_images(x, -1, -1)[0].tolist() == [[5, 6, 0], [8, 9, 0], [0, 0, 0]]
    assert shift_images(x, 2, -2)[0].tolist() == [[0, 0, 0], [0, 0, 0], [3, 0, 0]]
    assert (shift_images(x, 0, 0) == x).all()
    assert not shift_images(x, 3, 0).any() and not shift_images(x, 0, -7).any()
    assert shift_images(x, 1, 1).dtype == np.uint8
    assert x[0, 0, 0] == 1  # the input is left alone


@given(st.integers(-6, 6), st.integers(-6, 6), st.integers(1, 5), st.integers(1, 5))
def test_shift_matches_per_pixel_definition(dy: int, dx: int, h: int, w: int) -> None:
    images = np.random.default_rng(0).random((2, 3, h, w)).astype(np.float32)
    out = shift_images(images, dy, dx)
    for y in range(h):
        for x in range(w):
            inside = 0 <= y - dy < h and 0 <= x - dx < w
            expected = images[..., y - dy, x - dx] if inside else 0
            assert np.array_equal(out[..., y, x], np.broadcast_to(expected, (2, 3)))


def test_shift_rejects_a_vector() -> None:
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        shift_images(np.zeros(5), 1, 1)


# ---------------------------------------------------------------- parameters and FLOPs, against closed forms
def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


MLP_PARAMS = [linear(784, 256), linear(256, 128), linear(128, 10)]
CNN_PARAMS = [1 * 32 * 3 * 3 + 32, 0, 32 * 64 * 3 * 3 + 64, 0, linear(64 * 7 * 7, 128), linear(128, 10)]
# one 3×3 filter (and bias) per output position and channel: 28·28 positions, then 14·14
LCN_PARAMS = [28 * 28 * (32 * 1 * 3 * 3 + 32), 0, 14 * 14 * (64 * 32 * 3 * 3 + 64), 0, linear(3136, 128),
              linear(128, 10)]
MLP_FLOPS = 2 * (784 * 256 + 256 * 128 + 128 * 10)
CONV_FLOPS = 2 * (28 * 28 * 32 * 1 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10)  # the LCN's too


@pytest.mark.parametrize("name, params, flops", [("mlp", MLP_PARAMS, MLP_FLOPS), ("cnn", CNN_PARAMS, CONV_FLOPS),
                                                 ("lcn", LCN_PARAMS, CONV_FLOPS)])
def test_layer_table_matches_closed_forms(name: str, params: list[int], flops: int) -> None:
    model = models.build(name)
    table = layer_table(model)
    assert [row.params for row in table] == params
    assert sum(params) == model.num_parameters()
    assert sum(row.flops for row in table) == flops


def test_layer_table_shapes_and_dense_equivalent() -> None:
    conv1, pool1, conv2 = layer_table(models.cnn())[:3]
    assert (conv1.kind, conv1.in_shape, conv1.out_shape) == ("Conv2d", (1, 28, 28), (32, 28, 28))
    assert (pool1.kind, pool1.out_shape, pool1.flops) == ("MaxPool2d", (32, 14, 14), 0)
    assert conv2.flops == 2 * 64 * 14 * 14 * 32 * 9
    assert conv1.dense_params == linear(28 * 28, 32 * 28 * 28)


def test_totals_as_the_docs_quote_them() -> None:
    assert sum(MLP_PARAMS) == 235_146 and sum(CNN_PARAMS) == 421_642 and sum(LCN_PARAMS) == 4_278_922
    assert MLP_FLOPS == 469_504 and CONV_FLOPS == 8_482_304


# ---------------------------------------------------------------- filter statistics
def test_filter_statistics_on_known_patterns() -> None:
    ramp = np.array([[-1.0, 0, 1]] * 3)
    checker = np.array([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]]) - 1 / 9
    assert ramp_fraction(ramp[None]) == pytest.approx([1.0])
    assert ramp_fraction(checker[None])[0] < 0.2
    one_hot = np.zeros((1, 784))
    one_hot[0, 300] = 1
    assert half_energy_area(one_hot).tolist() == [1]
    assert half_energy_area(np.ones((2, 784))).tolist() == [392, 392]
    shared = np.broadcast_to(np.random.default_rng(0).random((1, 1, 4, 1, 3, 3)), (5, 5, 4, 1, 3, 3))
    assert neighbour_similarity(shared) == pytest.approx(1.0)


def test_epochs_for_size() -> None:
    assert epochs_for_size(500, 2, 16_000) == 32
    assert epochs_for_size(60_000, 2, 16_000) == 2


def test_convolution_is_equivariant_and_local_connection_is_not() -> None:
    images = (np.random.default_rng(0).random((4, 28, 28)) * 255).astype(np.uint8)
    seed_everything(0)
    cnn, lcn = equivariance_errors(models.cnn().features, images, (1, 4)), \
        equivariance_errors(models.lcn().features, images, (1, 4))
    assert set(cnn) == {"first layer, 1 px", "first layer, 4 px", "features, 4 px"}
    assert max(cnn.values()) < 1e-5
    assert min(lcn.values()) > 0.1


# ---------------------------------------------------------------- the whole report, on a tiny budget
@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compare, "BUILDERS", SMALL_MODELS)
        results = compare.run_experiments(TINY, out, seed=0, progress=False)
    return results, out, write_report(results, out)


def test_report_has_every_artifact_and_section(tiny_report: tuple) -> None:
    results, out, (md_path, html_path) = tiny_report
    md, page = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    for key in FIGURES:
        png = out / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png.name})" in md
    assert page.count("data:image/png;base64,") == len(FIGURES)
    body = page.split("<body>")[1]
    assert "<img" in body and "](" not in body and "**" not in body  # HTML, not leftover Markdown
    assert "<strong>(a)" in body and "<em>" in body and "<code>shift_images</code>" in body
    for section in SECTIONS:
        assert f"\n## {section}\n" in md and f"<h2>{section}</h2>" in page
    for claim in "abcd":
        assert f"**({claim})" in md
    assert re.search(r"total wall time \d+ s", md) and "seed 0" in md and "tinygrad_cnn 0." in md
    totals = {name: f"**{sum(row.params for row in table):,}**" for name, table in results.tables.items()}
    assert all(total in md for total in totals.values())  # each model's parameter total is in the table


def test_every_model_is_measured(tiny_report: tuple) -> None:
    results = tiny_report[0]
    assert set(results.runs) == set(results.sample) == set(results.shifts) == {"mlp", "cnn", "lcn"}
    for name, rows in results.sample.items():
        assert [row["n"] for row in rows] == [100, 200], name
        assert all(0 <= row["test_acc"] <= 1 for row in rows)
        assert len(results.shift_curve(name)) == TINY.max_shift + 1
    assert results.equivariance["cnn"]["first layer, 1 px"] < 1e-5


def test_answers_follow_the_numbers(tiny_report: tuple) -> None:
    """Make the CNN lose everywhere, and the generated answers must say the claims fail."""
    results = copy.deepcopy(tiny_report[0])
    for cnn_row, mlp_row in zip(results.sample["cnn"], results.sample["mlp"]):
        cnn_row["test_acc"], cnn_row["train_acc"] = 0.3, 1.0
        mlp_row["test_acc"], mlp_row["train_acc"] = 0.8, 0.8
    results.shifts["cnn"] = {d: [0.9, 0.5, 0.3, 0.2, 0.1] for d in results.shifts["cnn"]}
    results.shifts["mlp"] = {d: [0.9, 0.88, 0.86, 0.84, 0.82] for d in results.shifts["mlp"]}
    (_, _, c, d) = claim_answers(results)
    assert "**No, not here**" in c and "**the CNN overfits more** at" in c
    assert "**The predictions are not more robust than the MLP's here**" in d
    for row in results.sample["cnn"]:
        row["test_acc"], row["train_acc"] = 0.99, 0.99
    assert "Yes: the CNN beats the MLP at every size" in claim_answers(results)[2]
    results.sample["cnn"][-1]["test_acc"] = 0.81  # level with the MLP's 0.8, within the noise of 100 test images
    assert "Mostly: the CNN is ahead at 1 of 2 sizes" in claim_answers(results)[2]
    more = "**it does not hold here**" in claim_answers(results)[0]
    assert more == (sum(r.params for r in results.tables["cnn"]) >= sum(r.params for r in results.tables["mlp"]))


@pytest.mark.parametrize(("label", "advice"), [("quick", "rerun without --quick"), ("default", "more images")])
def test_verdicts_inside_the_noise_say_so(tiny_report: tuple, label: str, advice: str) -> None:
    """Equal numbers are no verdict: (c) and (d) say "within noise" and how to measure better, not "No"."""
    results = copy.deepcopy(tiny_report[0])
    results.settings = dataclasses.replace(results.settings, label=label)
    for cnn_row, mlp_row in zip(results.sample["cnn"], results.sample["mlp"]):
        cnn_row.update(test_acc=0.70, train_acc=0.75)
        mlp_row.update(test_acc=0.71, train_acc=0.76)
    for name in ("cnn", "mlp"):
        results.shifts[name] = {d: [0.9, 0.8, 0.7, 0.6, 0.5] for d in results.shifts[name]}
    (_, _, c, d) = claim_answers(results)
    assert "**Not measurably**" in c and "No, not here" not in c and c.count(advice) == 2  # accuracy and overfitting
    assert "**not measurably** more or less robust" in d and advice in d


@pytest.mark.slow
def test_quick_command_writes_the_report(tmp_path: Path) -> None:
    assert main(["compare", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"## {section}" in md for section in SECTIONS) and "mode `quick`, seed 1" in md
    assert all((tmp_path / f"{key}.png").is_file() for key in FIGURES) and (tmp_path / "report.html").is_file()
