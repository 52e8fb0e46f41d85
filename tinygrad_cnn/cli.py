"""The `tinygrad-cnn` command (also `python -m tinygrad_cnn`).

    tinygrad-cnn train   --model cnn --epochs 5 --out runs/cnn     train one model, with progress bars
    tinygrad-cnn compare [--quick] --out report                    MLP vs CNN vs locally connected: report.md/html
    tinygrad-cnn graph   --model cnn --out cnn.svg [--depth 1]     draw a training step's graph
    tinygrad-cnn bench                                             seconds per training step, ours vs PyTorch
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", default=None,
                   help="folder with the four Fashion-MNIST IDX files (default: search $TINYGRAD_CNN_DATA, "
                        "~/.cache/tinygrad_cnn, /usr/share/datasets/fashion-mnist, then the embedded subset)")


def build_parser() -> argparse.ArgumentParser:
    from .models import MODELS

    parser = argparse.ArgumentParser(prog="tinygrad-cnn", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model on Fashion-MNIST")
    train.add_argument("--model", choices=sorted(MODELS), default="cnn")
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 for adam, 0.05 for sgd)")
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adam")
    train.add_argument("--schedule", choices=["none", "cosine"], default="none",
                       help="learning-rate schedule, stepped per epoch (cosine: a half cosine down to 0)")
    train.add_argument("--seed", type=int, default=0)
    _add_data_arg(train)
    train.add_argument("--out", metavar="DIR", default=None, help="output folder (default: runs/MODEL)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")

    compare = sub.add_parser("compare", help="measure what makes a CNN different from an MLP; writes a report")
    compare.add_argument("--quick", action="store_true", help="a one-minute run on a subset (a first look)")
    compare.add_argument("--out", metavar="DIR", default="report")
    compare.add_argument("--seed", type=int, default=0)
    _add_data_arg(compare)

    graph = sub.add_parser("graph", help="draw the computation graph of a model's training step")
    graph.add_argument("--model", choices=sorted(MODELS), default="cnn")
    graph.add_argument("--out", metavar="FILE", default=None, help="FILE.svg, .png or .pdf (default: MODEL.svg)")
    graph.add_argument("--depth", type=int, default=None, help="collapse modules below this depth")
    graph.add_argument("--backward", action="store_true", help="also draw the recorded backward pass")
    graph.add_argument("--grads", action="store_true", help="shade tensors by gradient norm after a backward")

    bench = sub.add_parser("bench", help="time training steps of mlp and cnn, against PyTorch when installed")
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--steps", type=int, default=20)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from . import data, models
    from .training import TrainConfig, Trainer, seed_everything

    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, seed=args.seed, schedule=args.schedule)
    out = Path(args.out or f"runs/{args.model}")
    try:
        train_set = data.FashionMNIST(args.data, train=True)
        test_set = data.FashionMNIST(args.data, train=False)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seed_everything(args.seed)
    model = models.build(args.model)
    trainer = Trainer(config, model, train_set, test_set, out=out)
    if args.resume:
        try:
            resumed = trainer.resume()
        except ValueError as e:  # a checkpoint of another run, or a corrupt file: say which, no traceback
            print(f"error: {e}", file=sys.stderr)
            return 2
        if resumed:
            print(f"resuming {out / 'checkpoint.safetensors'} after epoch {trainer.epoch}")
        else:
            print(f"nothing to resume in {out}: starting afresh")
    print(f"{args.model}: {model.num_parameters():,} parameters, {len(train_set):,} training images, "
          f"writing to {out}/")
    trainer.fit()
    if trainer.interrupted:
        print(f"interrupted: checkpoint saved; continue with --resume --out {out}")
        return 130
    best = max(trainer.history, key=lambda r: r["test_acc"]) if trainer.history else None
    if best:
        print(f"best test accuracy {best['test_acc']:.4f} (epoch {best['epoch']}); curves in {out}/curves.png")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .study import run_compare

    return run_compare(out=Path(args.out), quick=args.quick, seed=args.seed, data_root=args.data)


def cmd_graph(args: argparse.Namespace) -> int:
    from . import models, viz

    model = models.build(args.model)
    dot = viz.draw_model(model, depth=args.depth, backward=args.backward, grads=args.grads)
    out = Path(args.out or f"{args.model}.svg")
    fmt = out.suffix.lstrip(".") or "svg"
    if fmt == "dot":
        out.write_text(dot.source)
    else:
        dot.render(outfile=str(out), format=fmt, cleanup=True)
    print(f"wrote {out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(batch_size=args.batch_size, steps=args.steps)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "compare": cmd_compare, "graph": cmd_graph, "bench": cmd_bench}
    return commands[args.command](args)
