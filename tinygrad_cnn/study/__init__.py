"""The study behind `tinygrad-cnn compare`: what a CNN does differently from an MLP, measured.

Four architectures get the same seeds, data order, optimizer and budget on Fashion-MNIST: an MLP,
a CNN, a CNN with a global-average-pooling head (CNN-GAP), and a locally connected network (the
CNN's geometry without weight sharing), which separates what locality does from what sharing
does; the MLP and the CNN are trained again with shift augmentation. Every trained measurement
is repeated over seeds and reported with a 95% interval; the numbers answer four usual claims
(parameters, first-layer filters, sample efficiency, robustness to shifts), and gradients with
respect to the input show what each network looks at.

    compare.py          run_compare: the command, the order the experiments run in, the figures drawn
    experiments.py      training, smaller training sets, shifted test images; SeedRun and Results
    plan.py             the sample-efficiency runs, and the time estimate printed at the start
    measure.py          what needs no training: parameters and FLOPs per layer, filter statistics
    probes.py           input gradients: saliency, receptive fields, FGSM
    looks.py            the probes applied to the trained models, per seed and for the figures
    stats.py            Student-t intervals over seeds, paired differences, verdicts
    summary.py          the report's numbers aggregated over seeds (read by the report and results.json)
    claims.py           the answers to the four claims, written from the intervals
    figures.py          the report's PNGs of training and translation
    figures_probes.py   the convolution picture, saliency, receptive field and FGSM PNGs
    report.py           the report, as Markdown and HTML; report_sections.py its measured sections
    results_json.py     results.json: every number, per model and per seed
    docs_page.py        docs/cnn-vs-mlp.md from a run's report
"""

from .compare import run_compare

__all__ = ["run_compare"]
