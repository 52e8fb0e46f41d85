"""`tinygrad-cnn compare`: exact shifts, closed-form parameter and FLOP counts, and a full (tiny) report over seeds."""

from __future__ import annotations

import copy
import dataclasses
import json
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
from tinygrad_cnn.study.results_json import write_results
from tinygrad_cnn.study.summary import summarize
from tinygrad_cnn.training import seed_everything

FIGURES = ("convolution", "parameters", "learning_curves", "sample_efficiency", "translation", "saliency",
           "receptive_field", "fgsm", "cnn_filters", "cnn_feature_maps", "mlp_weights", "lcn_filters")
RUNS = {"mlp", "cnn", "cnn-gap", "lcn", "mlp+shift", "cnn+shift"}
TINY = Settings(label="tiny", train_size=200, test_size=100, epochs=1, sizes=(100,), min_images=200,
                train_eval_size=100, shift_test_size=50, seeds=2, fgsm_size=50, probe_images=20)
# The same four architectures, narrower, so the whole pipeline runs in seconds even on a busy machine.
SMALL_MODELS = {"mlp": lambda: models.mlp(hidden=(32, 16)), "cnn": lambda: models.cnn(channels=(4, 8), hidden=16),
                "cnn-gap": lambda: models.cnn_gap(channels=(4, 8)),
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
# the same convolutions, then global average pooling (no parameters) and one Linear(64, 10)
GAP_PARAMS = [1 * 32 * 3 * 3 + 32, 0, 32 * 64 * 3 * 3 + 64, 0, 0, linear(64, 10)]
MLP_FLOPS = 2 * (784 * 256 + 256 * 128 + 128 * 10)
CONV_FLOPS = 2 * (28 * 28 * 32 * 1 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10)  # the LCN's too
GAP_FLOPS = 2 * (28 * 28 * 32 * 1 * 9 + 14 * 14 * 64 * 32 * 9 + 64 * 10)


@pytest.mark.parametrize("name, params, flops", [("mlp", MLP_PARAMS, MLP_FLOPS), ("cnn", CNN_PARAMS, CONV_FLOPS),
                                                 ("lcn", LCN_PARAMS, CONV_FLOPS), ("cnn-gap", GAP_PARAMS, GAP_FLOPS)])
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
    assert sum(GAP_PARAMS) == 19_466 < sum(MLP_PARAMS) // 12  # claim (a) holds for the fully convolutional CNN
    assert MLP_FLOPS == 469_504 and CONV_FLOPS == 8_482_304


def test_cnn_gap_shares_the_cnn_conv_blocks() -> None:
    """Built after the same seed, CNN-GAP starts from the CNN's very conv weights: only the head differs."""
    seed_everything(0)
    cnn = models.cnn()
    seed_everything(0)
    gap = models.cnn_gap()
    for a, b in zip(cnn.features.parameters(), gap.features.parameters()):
        assert np.array_equal(a.numpy(), b.numpy())
    pool = layer_table(gap)[4]
    assert (pool.kind, pool.in_shape, pool.out_shape) == ("AdaptiveAvgPool2d", (64, 7, 7), (64, 1, 1))


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
    return results, out, write_report(results, out), write_results(results, out / "results.json")


def test_report_has_every_artifact_and_section(tiny_report: tuple) -> None:
    results, out, (md_path, html_path), _ = tiny_report
    md, page = md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")
    for key in FIGURES:
        png = out / f"{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"]({png.name})" in md
    assert page.count("data:image/png;base64,") == len(FIGURES)
    assert md.index("](convolution.png)") < md.index("## Answers to the four claims")  # the picture comes first
    body = page.split("<body>")[1]
    assert "<img" in body and "](" not in body and "**" not in body  # HTML, not leftover Markdown
    assert "<strong>(a)" in body and "<em>" in body and "<code>shift_images</code>" in body
    for section in SECTIONS:
        assert f"\n## {section}\n" in md and f"<h2>{section}</h2>" in page
    for claim in "abcd":
        assert f"**({claim})" in md
    assert re.search(r"total wall time \d+ s", md) and "seeds 0, 1" in md and "tinygrad_cnn 0." in md
    assert "repeated over 2 seeds (0, 1)" in md and "95%" in md and " ± " in md
    totals = {name: f"**{sum(row.params for row in table):,}**" for name, table in results.tables.items()}
    assert all(total in md for total in totals.values())  # each model's parameter total is in the table


def test_every_run_is_measured_for_every_seed(tiny_report: tuple) -> None:
    results = tiny_report[0]
    assert [s.seed for s in results.seeds] == [0, 1]
    for seed_run in results.seeds:
        assert set(seed_run.runs) == set(seed_run.shifts) == set(seed_run.fgsm) == RUNS
        assert set(seed_run.sample) == {"mlp", "cnn", "lcn"}
        for name, rows in seed_run.sample.items():
            assert [row["n"] for row in rows] == [100, 200], name
            assert all(0 <= row["test_acc"] <= 1 for row in rows)
        assert seed_run.equivariance["cnn"]["first layer, 1 px"] < 1e-5
        assert seed_run.probes["rf_theoretical"] == 64 and seed_run.probes["rf_inside"] == pytest.approx(1)
    for name in RUNS:
        assert len(results.shift_curve(name)) == TINY.max_shift + 1
        assert all(len(s.fgsm[name]) == 4 and all(0 <= a <= 1 for a in s.fgsm[name]) for s in results.seeds)


def test_results_json_holds_every_number_per_model_and_seed(tiny_report: tuple) -> None:
    results, _, _, path = tiny_report
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {"settings", "environment", "models", "summary", "pictures", "seeds"}
    assert data["settings"]["seeds"] == 2 and data["models"]["cnn-gap"]["parameters"] == 426
    assert [s["seed"] for s in data["seeds"]] == [0, 1]
    for seed_json, seed_run in zip(data["seeds"], results.seeds):
        assert set(seed_json["runs"]) == RUNS
        assert seed_json["runs"]["cnn"]["history"][-1]["test_acc"] == seed_run.runs["cnn"].final["test_acc"]
        assert seed_json["fgsm"]["mlp"] == seed_run.fgsm["mlp"]
    test_acc = data["summary"]["finals"]["cnn"]["test_acc"]
    assert test_acc["values"] == [s.runs["cnn"].final["test_acc"] for s in results.seeds]
    assert test_acc["mean"] == pytest.approx(np.mean(test_acc["values"]))
    assert test_acc["low"] <= test_acc["mean"] <= test_acc["high"]
    assert data["pictures"]["receptive_field"]["trained"]["theoretical"] == [8, 8]


def _set_sample(results: object, name: str, test: list[float], train: list[float]) -> None:
    for seed_run, te, tr in zip(results.seeds, test, train):
        for row in seed_run.sample[name]:
            row["test_acc"], row["train_acc"] = te, tr


def _set_shifts(results: object, name: str, curves: list[list[float]]) -> None:
    for seed_run, curve in zip(results.seeds, curves):
        seed_run.shifts[name] = {d: list(curve) for d in seed_run.shifts[name]}


def test_answers_follow_the_intervals(tiny_report: tuple) -> None:
    """Make the CNN lose at every seed, and the generated answers must say the claims fail."""
    results = copy.deepcopy(tiny_report[0])
    _set_sample(results, "cnn", [0.30, 0.32], [1.0, 1.0])
    _set_sample(results, "mlp", [0.80, 0.81], [0.80, 0.81])
    _set_shifts(results, "cnn", [[0.9, 0.5, 0.3, 0.2, 0.1], [0.9, 0.52, 0.31, 0.21, 0.11]])
    _set_shifts(results, "mlp", [[0.9, 0.88, 0.86, 0.84, 0.82], [0.9, 0.87, 0.86, 0.85, 0.83]])
    (_, _, c, d) = claim_answers(results, summarize(results))
    assert "**No, not here**" in c and "**the CNN overfits more** at" in c
    assert "**The CNN's predictions are not more robust than the MLP's here**" in d
    _set_sample(results, "cnn", [0.99, 0.98], [0.99, 0.98])
    assert "Yes: the CNN beats the MLP at every size" in claim_answers(results, summarize(results))[2]
    for seed_run in results.seeds:  # the main run level with the MLP's, within noise
        seed_run.sample["cnn"][-1]["test_acc"] = seed_run.sample["mlp"][-1]["test_acc"] + (
            0.01 if seed_run.seed == 0 else -0.01)
    assert "Mostly: the CNN is ahead at 100 images" in claim_answers(results, summarize(results))[2]


@pytest.mark.parametrize(("label", "advice"), [("quick", "rerun without --quick"), ("default", "within noise")])
def test_a_mean_inside_its_interval_is_no_verdict(tiny_report: tuple, label: str, advice: str) -> None:
    """Differences whose paired interval contains 0 read "within noise at this size", whatever their mean."""
    results = copy.deepcopy(tiny_report[0])
    results.settings = dataclasses.replace(results.settings, label=label)
    _set_sample(results, "cnn", [0.70, 0.74], [0.75, 0.79])  # CNN − MLP: +0.03 and −0.01, an interval around 0
    _set_sample(results, "mlp", [0.67, 0.75], [0.71, 0.80])
    _set_shifts(results, "cnn", [[0.9, 0.8, 0.7, 0.6, 0.5], [0.9, 0.8, 0.7, 0.6, 0.4]])
    _set_shifts(results, "mlp", [[0.9, 0.8, 0.7, 0.6, 0.45], [0.9, 0.8, 0.7, 0.6, 0.48]])
    (_, _, c, d) = claim_answers(results, summarize(results))
    assert "**Not measurably**" in c and "No, not here" not in c and "Yes" not in c and advice in c
    assert "**not measurably** more or less robust" in d and advice in d


def test_a_single_seed_gives_no_verdict(tiny_report: tuple) -> None:
    results = copy.deepcopy(tiny_report[0])
    results.seeds = results.seeds[:1]
    results.settings = dataclasses.replace(results.settings, seeds=1)
    c = claim_answers(results, summarize(results))[2]
    assert "one seed: no interval" in c and "± " not in c.split("Overfitting")[0]


@pytest.mark.slow
def test_quick_command_writes_the_report(tmp_path: Path) -> None:
    assert main(["compare", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert all(f"## {section}" in md for section in SECTIONS) and "mode `quick`, seeds 1, 2" in md
    assert all((tmp_path / f"{key}.png").is_file() for key in FIGURES) and (tmp_path / "report.html").is_file()
    assert len(json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))["seeds"]) == 2
