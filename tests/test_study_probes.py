"""study/probes.py: input gradients with known answers (saliency, receptive fields, FGSM)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_cnn import models, nn
from tinygrad_cnn.study.probes import (
    fgsm,
    fgsm_accuracy,
    mass_area,
    predict,
    receptive_box,
    receptive_field_size,
    saliency,
    unit_gradient,
)
from tinygrad_cnn.training import seed_everything


def linear_model(h: int = 4, w: int = 5, classes: int = 3) -> nn.Sequential:
    seed_everything(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(h * w, classes))


def test_saliency_of_a_linear_model_is_its_weight_row() -> None:
    """logits = W x + b, so ∂ logit_y / ∂ x = W[y], whatever the image."""
    model = linear_model()
    x = np.random.default_rng(0).random((6, 1, 4, 5), dtype=np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    expected = np.abs(model[1].weight.numpy()[y]).reshape(6, 4, 5)
    np.testing.assert_allclose(saliency(model, x, y), expected, rtol=1e-6)


def test_probes_leave_the_model_as_they_found_it() -> None:
    model = linear_model()
    model.train()
    x, y = np.random.default_rng(1).random((3, 1, 4, 5), dtype=np.float32), np.array([0, 1, 2])
    saliency(model, x, y)
    fgsm(model, x, y, 0.1)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_fgsm_at_epsilon_zero_changes_nothing() -> None:
    seed_everything(0)
    model = models.cnn(channels=(2, 3), hidden=8)
    images = (np.random.default_rng(0).random((20, 28, 28)) * 255).astype(np.uint8)
    labels = np.arange(20) % 10
    x = images[:, None].astype(np.float32) / 255
    assert np.array_equal(fgsm(model, x, labels, 0.0), x)
    clean = float((predict(model, x) == labels).mean())
    assert fgsm_accuracy(model, images, labels, (0.0,)) == [clean]


def test_fgsm_on_a_linear_model_matches_the_closed_form() -> None:
    """Cross-entropy of softmax(W x + b): ∂ loss / ∂ x = Wᵀ (softmax − onehot), so the step is ε · sign of that."""
    model = linear_model()
    rng = np.random.default_rng(2)
    x = rng.random((5, 1, 4, 5)).astype(np.float32) * 0.5 + 0.25  # away from 0 and 1: the clip does not bite
    y = np.array([0, 1, 2, 0, 1])
    w, b = model[1].weight.numpy().astype(np.float64), model[1].bias.numpy().astype(np.float64)
    logits = x.reshape(5, -1) @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(5), y] -= 1
    expected = x + 0.1 * np.sign(p @ w).reshape(x.shape)
    np.testing.assert_allclose(fgsm(model, x, y, 0.1), expected, atol=1e-6)
    assert fgsm(model, np.ones_like(x), y, 0.5).max() <= 1  # pixels stay in [0, 1]
    with pytest.raises(ValueError, match="non-negative"):
        fgsm(model, x, y, -0.1)


def test_fgsm_lowers_accuracy() -> None:
    """A linear classifier fitted by hand (class c: bright pixels at row c) loses everything at a large ε."""
    rng = np.random.default_rng(3)
    labels = np.arange(40) % 4
    images = (rng.random((40, 4, 5)) * 60).astype(np.uint8)
    images[np.arange(40), labels] = 200
    model = linear_model(classes=4)
    weight = np.zeros((4, 4, 5), dtype=np.float32)
    weight[np.arange(4), np.arange(4)] = 1
    model[1].weight.data[...] = weight.reshape(4, 20)
    model[1].bias.data[...] = 0
    clean, small, large = fgsm_accuracy(model, images, labels, (0.0, 0.02, 0.6))
    assert clean == 1.0 and clean >= small > large


# ---------------------------------------------------------------- receptive fields
@pytest.mark.parametrize(("layers", "size"), [
    ([nn.Conv2d(1, 1, 3)], 3),
    ([nn.Conv2d(1, 1, 3), nn.ReLU(), nn.Conv2d(1, 1, 3)], 5),  # 3 + 2
    ([nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3, padding=1)], 8),  # the CNN's conv2: 3+1+2·2
    ([nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 3)], 7),  # 3 + 2·2
    ([nn.Conv2d(1, 1, 3, dilation=2)], 5),
    ([nn.Conv2d(1, 1, (3, 5))], (3, 5)),
])
def test_receptive_field_of_known_stacks(layers: list[nn.Module], size: int | tuple[int, int]) -> None:
    assert receptive_field_size(layers) == (size if isinstance(size, tuple) else (size, size))


def test_cnn_conv2_box_and_its_border_clipping() -> None:
    stack = list(models.cnn().features)[:4]
    assert receptive_box(stack, 7, 7, (28, 28)) == (slice(11, 19), slice(11, 19))
    assert receptive_box(stack, 0, 13, (28, 28)) == (slice(0, 5), slice(23, 28))  # clipped by the padding
    with pytest.raises(TypeError, match="BatchNorm2d"):
        receptive_field_size([nn.Conv2d(1, 1, 3), nn.BatchNorm2d(1)])


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 13), st.integers(0, 13), st.integers(0, 7))
def test_measured_gradient_lives_inside_the_theoretical_box(row: int, col: int, channel: int) -> None:
    """The engine's gradient of one conv2 unit is zero outside the box the layers allow, and not all zero inside."""
    seed_everything(row * 14 + col)
    stack = list(models.cnn(channels=(4, 8)).features)[:4]
    x = np.random.default_rng(row).random((3, 1, 28, 28), dtype=np.float32)
    g = unit_gradient(stack, x, channel, row, col)
    box = receptive_box(stack, row, col, (28, 28))
    inside = np.zeros_like(g, dtype=bool)
    inside[box] = True
    assert not g[~inside].any() and g[inside].any()


def test_mass_area() -> None:
    assert mass_area(np.array([[4.0, 0], [0, 0]]), 0.5) == 1
    assert mass_area(np.ones((4, 4)), 0.5) == 8 and mass_area(np.ones((4, 4)), 1.0) == 16
    assert mass_area(np.array([3.0, 1.0, 1.0, 1.0]), 0.5) == 1  # the largest value alone holds half
    assert mass_area(np.zeros(5), 0.5) == 0
