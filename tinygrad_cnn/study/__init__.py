"""The study behind `tinygrad-cnn compare`: what a CNN does differently from an MLP, measured.

Three models get the same seed, data order, optimizer and budget on Fashion-MNIST: an MLP,
a CNN, and a locally connected network (the CNN's geometry without weight sharing), which
separates what locality does from what sharing does. The numbers answer four usual claims
(parameters, first-layer filters, sample efficiency, robustness to shifts) in a report.

    compare.py       run_compare: the command, and the order the experiments run in
    experiments.py   training, smaller training sets, shifted test images
    measure.py       what needs no training: parameters and FLOPs per layer, filter statistics
    figures.py       the report's PNGs
    claims.py        the answers to the four claims, written from the numbers
    report.py        the report, as Markdown and HTML
"""

from .compare import run_compare

__all__ = ["run_compare"]
