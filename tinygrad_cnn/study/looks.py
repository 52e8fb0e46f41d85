"""What each trained network looks at: the study's use of probes.py, per seed (numbers) and for the figures.

    probe_statistics   per seed: where the saliency lies (on the garment or the background, how many
                       pixels hold half of it) and how large the measured receptive field of a conv2 unit is
    probe_pictures     the first seed's maps and images that the saliency, receptive-field and FGSM
                       figures draw
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..data.datasets import to_float_images
from ..tensor import Tensor
from ..training import seed_everything
from .experiments import SeedRun, Settings
from .probes import fgsm, mass_area, predict, receptive_box, receptive_field_size, saliency, unit_gradient

SALIENCY_MODELS = ("mlp", "cnn", "cnn-gap")
SALIENCY_IMAGES = 8  # drawn in the figure, each of another class
FGSM_SHOWN = 0.1  # the epsilon of the FGSM example figure
CONV2 = 4  # features[:CONV2] ends with conv2 (conv1, ReLU, pool, conv2): the unit whose receptive field is measured


def _conv2_stack(model: nn.Module) -> list[nn.Module]:
    return list(model.features)[:CONV2]


def _centre_unit(stack: list[nn.Module], x: np.ndarray) -> tuple[int, int, int]:
    """(channel, row, col) of the conv2 unit at the centre of the map that responds most, on average, to `x`."""
    with no_grad():
        out = nn.Sequential(*stack)(Tensor(x)).numpy()
    row, col = out.shape[2] // 2, out.shape[3] // 2
    return int(np.maximum(out[:, :, row, col], 0).mean(axis=0).argmax()), row, col


def receptive_field(model: nn.Module, x: np.ndarray, unit: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """The measured receptive field of one conv2 unit of a CNN against its theoretical box."""
    stack = _conv2_stack(model)
    was_training = model.training
    model.eval()
    channel, row, col = unit if unit is not None else _centre_unit(stack, x)
    gradient = unit_gradient(stack, x, channel, row, col)
    model.train(was_training)
    box = receptive_box(stack, row, col, x.shape[-2:])
    inside = float(gradient[box].sum() / max(gradient.sum(), 1e-30))
    return {"map": gradient, "box": box, "unit": (channel, row, col), "inside": inside,
            "theoretical": receptive_field_size(stack), "area50": mass_area(gradient, 0.5),
            "area90": mass_area(gradient, 0.9)}


def _initial_model(run: Any, builders: dict[str, Callable[[], nn.Module]], seed: int) -> nn.Module:
    """The model as it was before training: rebuilt with the run's seed (models.py builds reproducibly)."""
    seed_everything(seed)
    return builders[run.name]()


def probe_statistics(seed_run: SeedRun, builders: dict[str, Callable[[], nn.Module]], probe_set: Any,
                     settings: Settings) -> dict[str, float]:
    """Saliency and receptive-field numbers of one seed's models, on `settings.probe_images` test images."""
    images, labels = probe_set.images[:settings.probe_images], probe_set.labels[:settings.probe_images]
    x = to_float_images(images)
    background = images == 0  # Fashion-MNIST's background is exactly 0
    out: dict[str, float] = {}
    for name in SALIENCY_MODELS:
        maps = saliency(seed_run.runs[name].model, x, labels)
        totals = np.maximum(maps.sum(axis=(1, 2)), 1e-30)
        out[f"saliency_background_{name}"] = float(((maps * background).sum(axis=(1, 2)) / totals).mean())
        out[f"saliency_area_{name}"] = float(np.median([mass_area(m, 0.5) for m in maps]))
    out["background_share"] = float(background.mean())
    trained = receptive_field(seed_run.runs["cnn"].model, x)
    initial = receptive_field(_initial_model(seed_run.runs["cnn"], builders, seed_run.seed), x, trained["unit"])
    h, w = trained["theoretical"]
    out.update({"rf_theoretical": float(h * w), "rf_inside": trained["inside"], "rf_inside_init": initial["inside"],
                "rf_area50": float(trained["area50"]), "rf_area90": float(trained["area90"]),
                "rf_area50_init": float(initial["area50"]), "rf_area90_init": float(initial["area90"])})
    return out


def probe_pictures(first: SeedRun, builders: dict[str, Callable[[], nn.Module]], probe_set: Any, fgsm_set: Any,
                   settings: Settings) -> dict[str, Any]:
    """The arrays the probe figures draw, from the first seed's models."""
    first_of_class = np.unique(probe_set.labels, return_index=True)[1]  # one image per class, in file order
    picked = np.sort(first_of_class)[:SALIENCY_IMAGES]
    images, labels = probe_set.images[picked], probe_set.labels[picked]
    x = to_float_images(images)
    pictures: dict[str, Any] = {
        "classes": list(probe_set.classes), "saliency_images": images, "saliency_labels": labels,
        "saliency": {name: saliency(first.runs[name].model, x, labels) for name in SALIENCY_MODELS},
        "saliency_predictions": {name: predict(first.runs[name].model, x) for name in SALIENCY_MODELS},
    }
    rf_x = to_float_images(probe_set.images[:settings.probe_images])
    trained = receptive_field(first.runs["cnn"].model, rf_x)
    initial = receptive_field(_initial_model(first.runs["cnn"], builders, first.seed), rf_x, trained["unit"])
    pictures["receptive_field"] = {"trained": trained, "initial": initial}
    pictures["fgsm"] = _fgsm_example(first, fgsm_set)
    return pictures


def _fgsm_example(first: SeedRun, fgsm_set: Any) -> dict[str, Any]:
    """One test image that the MLP and the CNN both classify correctly, and its FGSM version for each."""
    x, y = to_float_images(fgsm_set.images[:200]), fgsm_set.labels[:200]
    right = (predict(first.runs["mlp"].model, x) == y) & (predict(first.runs["cnn"].model, x) == y)
    i = int(np.argmax(right)) if right.any() else 0
    example: dict[str, Any] = {"image": x[i, 0], "label": int(y[i]), "epsilon": FGSM_SHOWN, "models": {}}
    for name in ("mlp", "cnn"):
        model = first.runs[name].model
        adversarial = fgsm(model, x[i:i + 1], y[i:i + 1], FGSM_SHOWN)
        example["models"][name] = {"adversarial": adversarial[0, 0], "perturbation": adversarial[0, 0] - x[i, 0],
                                   "clean_prediction": int(predict(model, x[i:i + 1])[0]),
                                   "adversarial_prediction": int(predict(model, adversarial)[0])}
    return example
