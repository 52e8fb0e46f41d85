"""The `tinygrad-cnn` command (also `python -m tinygrad_cnn`).

    tinygrad-cnn train   --model cnn --epochs 5 --out runs/cnn     train one model, with progress bars
    tinygrad-cnn compare [--quick] --out report                    MLP vs CNN vs locally connected: report.md/html
    tinygrad-cnn graph   --model cnn --out cnn.svg [--depth 1]     draw a training step's graph
    tinygrad-cnn graph   --model mlp --backprop-page mlp.html      ... or step through its backward pass
    tinygrad-cnn bench                                             ms per training step, ours vs PyTorch

A user's mistake (a bad option, a folder that cannot be written, missing data,
no Graphviz) ends in one to three lines on stderr and exit status 2, found
before any training starts; the library raises typed exceptions and `main`
turns them into those lines. An unexpected bug still shows its traceback.
"""

from __future__ import annotations

import argparse
import math
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .tensor import Tensor

GRAPH_FORMATS = ("svg", "png", "pdf", "dot")
PAGE_NODES = 50  # the most nodes a backprop page of the command shows when no --depth is given
EXAMPLES = """commands, with an example each:
  train     tinygrad-cnn train --model cnn --epochs 5 --out runs/cnn
  compare   tinygrad-cnn compare --quick --out report
  graph     tinygrad-cnn graph --model cnn --depth 1 --out cnn.svg
  bench     tinygrad-cnn bench --steps 20

`tinygrad-cnn COMMAND --help` lists a command's options and their defaults."""


class UsageError(Exception):
    """A mistake in what the user asked for: `main` prints it in one line and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: one line and a hint, not the usage block
        self.exit(2, f"{self.prog}: error: {message}\n  (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _number(kind: type, minimum: float, what: str):
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


positive_int = _number(int, 1, "a whole number of at least 1")
count_from_zero = _number(int, 0, "a whole number of at least 0")
positive_float = _number(float, math.ulp(0.0), "a number above 0")


def path_text(text: str) -> str:
    """A file or folder name: not empty (an empty --out would quietly mean the default, or the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return text


def _add_data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", type=path_text, default=None,
                   help="folder with the four Fashion-MNIST IDX files (default: search $TINYGRAD_CNN_DATA, "
                        "~/.cache/tinygrad_cnn, /usr/share/datasets/fashion-mnist, then the embedded subset)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .models import MODELS

    parser = _Parser(prog="tinygrad-cnn", description=__doc__.split("\n")[0], epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model on Fashion-MNIST", formatter_class=_Help,
                           description="Train one model on Fashion-MNIST, with progress bars. The run folder gets\n"
                                       "metrics.jsonl, checkpoint.safetensors, model.safetensors and curves.png.")
    # None: not given. A new run takes TRAIN_DEFAULTS, a resumed one what its folder stored.
    train.add_argument("--model", choices=sorted(MODELS), default=None, help="(default: cnn)")
    train.add_argument("--epochs", type=positive_int, default=None, help="epochs in all, also on --resume (default: 5)")
    train.add_argument("--batch-size", type=positive_int, default=None, help="(default: 64)")
    train.add_argument("--lr", type=positive_float, default=None,
                       help="learning rate (default: 1e-3 for adam and adamw, 0.05 for sgd)")
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default=None, help="(default: adam)")
    train.add_argument("--schedule", choices=["none", "cosine"], default=None,
                       help="learning-rate schedule, stepped per epoch (cosine: a half cosine down to 0; "
                            "default: none)")
    train.add_argument("--seed", type=count_from_zero, default=None, help="(default: 0)")
    train.add_argument("--augment", choices=["none", "shift"], default=None,
                       help="shift: move each training image by a random shift of up to ±2 px (default: none)")
    _add_data_arg(train)
    train.add_argument("--out", metavar="DIR", type=path_text, default=None,
                       help="the run folder (default: runs/MODEL)")
    resume = train.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="continue the run in --out with its stored settings (--epochs: the new total)")
    resume.add_argument("--force", action="store_true", help="start afresh in a folder that holds a run")

    compare = sub.add_parser("compare", help="measure what makes a CNN different from an MLP; writes a report",
                             formatter_class=_Help)
    compare.add_argument("--quick", action="store_true", help="a one-minute run on a subset (a first look)")
    compare.add_argument("--out", metavar="DIR", type=path_text, default="report", help="the report folder")
    compare.add_argument("--seed", type=count_from_zero, default=0,
                         help="the first seed (initialisation, subsets and data order); the others follow it")
    compare.add_argument("--seeds", type=positive_int, default=None,
                         help="how many seeds every trained measurement is repeated over (default: 3, --quick 2)")
    compare.add_argument("--augment", choices=["shift", "none"], default="shift",
                         help="the augmentation of the MLP and CNN that the translation section adds "
                              "(none: leave them out)")
    _add_data_arg(compare)

    graph = sub.add_parser("graph", help="draw the computation graph of a model's training step",
                           formatter_class=_Help)
    graph.add_argument("--model", choices=sorted(MODELS), default="cnn")
    graph.add_argument("--out", metavar="FILE", type=path_text, default=None,
                       help=f"FILE.{', .'.join(GRAPH_FORMATS)} (default: MODEL.svg; .dot needs no Graphviz)")
    graph.add_argument("--depth", type=count_from_zero, default=None, help="collapse modules below this depth")
    graph.add_argument("--backward", action="store_true", help="also draw the recorded backward pass")
    graph.add_argument("--grads", action="store_true", help="shade tensors by gradient norm after a backward")
    graph.add_argument("--backprop-page", metavar="FILE.html", type=path_text, default=None,
                       help="write a page that steps through the backward pass, one node at a time (then the "
                            "picture is drawn only if --out is given; without --depth, the most detailed depth "
                            f"with at most {PAGE_NODES} nodes)")

    bench = sub.add_parser("bench", help="ms per training step of mlp, cnn, cnn-bn (Adam) and mlp (SGD momentum), "
                                         "against PyTorch when installed", formatter_class=_Help)
    bench.add_argument("--batch-size", type=positive_int, default=64, help="images per training step")
    bench.add_argument("--steps", type=positive_int, default=20, help="steps timed per model (the median is shown)")
    bench.add_argument("--rounds", type=positive_int, default=3,
                       help="alternating rounds of ours and PyTorch's, each in a fresh process (the ratio's range)")
    return parser


def writable_folder(path: Path, option: str = "--out") -> Path:
    """Make sure `path` is a folder we can write into (made if missing), before any work starts."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: this is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write there ({e.strerror or e})") from None
    return path


def load_fashion_mnist(root: str | None) -> tuple:
    """The training and test sets, or a UsageError that says what is wrong with --data."""
    from . import data

    try:
        return data.FashionMNIST(root, train=True), data.FashionMNIST(root, train=False)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"--data: {e}") from None


TRAIN_DEFAULTS = {"model": "cnn", "epochs": 5, "batch_size": 64, "lr": None, "optimizer": "adam",
                  "schedule": "none", "seed": 0, "augment": "none"}
FIXED_FOR_A_RUN = ("model", "optimizer", "schedule", "batch_size", "seed", "augment")  # a resumed run keeps these
RUN_FILES = ("checkpoint.safetensors", "model.safetensors", "metrics.jsonl", "curves.png")


def _train_config(args: argparse.Namespace, out: Path) -> tuple:
    """(settings, stored settings or None): the options given, the rest from the run folder
    on --resume, else the defaults. All checked here, before any data is read or folder made.

    On --resume, the model, optimizer, schedule, batch size and seed of the stored run
    are kept (a different one given is refused: the checkpoint holds that model's
    weights and that optimizer's moments); --epochs is the new total (refused for a
    cosine run, whose schedule spans the epochs it was started with); --lr is applied
    from the next step on, and said; --data defaults to the folder the run read.
    """
    from .checkpoint import load_checkpoint
    from .training import CHECKPOINT, TrainConfig

    given = {k: v for k in TRAIN_DEFAULTS if (v := getattr(args, k)) is not None}
    data = str(Path(args.data).resolve()) if args.data is not None else None
    if not args.resume:
        if (out / CHECKPOINT).exists() and not args.force:
            raise UsageError(f"--out {out} already holds a run; continue it with `tinygrad-cnn train --resume "
                             f"--out {shlex.quote(str(out))}`, or start afresh with --force or another --out")
        return TrainConfig(**{**TRAIN_DEFAULTS, **given}, data=data), None
    if not (out / CHECKPOINT).exists():  # a mistyped folder must not quietly start a new run
        raise UsageError(f"--resume: {out} holds no run (no {CHECKPOINT}); leave out --resume to start one there")
    try:
        state = load_checkpoint(out / CHECKPOINT)
        stored, done = TrainConfig(**state["config"]), int(state["epoch"])
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"--out {out}: {CHECKPOINT} cannot be read ({e}); start afresh with --force") from None
    for name in FIXED_FOR_A_RUN:
        if name in given and given[name] != getattr(stored, name):
            raise UsageError(f"--{name.replace('_', '-')} {given[name]}: the run in {out} was started with "
                             f"{getattr(stored, name)}, which a resumed run keeps (use another --out for a new run)")
    if "lr" in given and stored.schedule != "none" and given["lr"] != stored.learning_rate:
        raise UsageError(f"--lr {given['lr']}: the run in {out} follows a {stored.schedule} schedule built for lr "
                         f"{stored.learning_rate}; a resumed run keeps it")
    epochs = given.get("epochs", stored.epochs)
    if epochs != stored.epochs and stored.schedule != "none":
        raise UsageError(f"--epochs {epochs}: the run in {out} follows a {stored.schedule} schedule over "
                         f"{stored.epochs} epochs; a resumed run keeps it")
    if epochs <= done:
        raise UsageError(f"--epochs {epochs}: the run in {out} has done {done} epochs already; "
                         "pass a larger --epochs to train more")
    changes = {k: v for k, v in given.items() if k in ("epochs", "lr")}
    return TrainConfig(**{**vars(stored), **changes, "data": data or stored.data}), stored


def cmd_train(args: argparse.Namespace) -> int:
    from . import models
    from .training import Trainer, seed_everything

    out = Path(args.out if args.out is not None else f"runs/{args.model or TRAIN_DEFAULTS['model']}")
    config, stored = _train_config(args, out)
    if stored is not None and config.data != stored.data:
        print(f"--data {config.data}: the images are read from here (the run read {stored.data or 'the default'})")
    train_set, test_set = load_fashion_mnist(config.data)  # before the folder is made: a failed start leaves none
    writable_folder(out)
    seed_everything(config.seed)
    model = models.build(config.model)
    try:
        trainer = Trainer(config, model, train_set, test_set, out=out)
    except ValueError as e:  # an option the optimizer refuses
        raise UsageError(str(e)) from None
    if stored is not None:
        try:
            trainer.resume()
        except (KeyError, ValueError, RuntimeError) as e:  # written by another version of the model or the code
            first = str(e).strip().splitlines()[0].rstrip(":")  # load_state_dict lists every key on lines of its own
            raise UsageError(f"--out {out}: {out / 'checkpoint.safetensors'} does not fit this model ({first}); "
                             "start afresh with --force or another --out") from None
        if config.learning_rate != stored.learning_rate:
            for group in trainer.optimizer.param_groups:
                group["lr"] = config.learning_rate
            print(f"--lr {config.learning_rate}: applied from the next step on (the run used {stored.learning_rate})")
        batch = trainer.train_loader.state_dict()["batch"]
        where = f"in epoch {trainer.epoch + 1}, after batch {batch}" if batch else f"after epoch {trainer.epoch}"
        print(f"resuming {out} {where}")
    elif args.force:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    augmented = ", each shifted by up to ±2 px" if config.augment == "shift" else ""
    print(f"{config.model}: {model.num_parameters():,} parameters, {len(train_set):,} training images{augmented}, "
          f"writing to {out}/")
    trainer.fit()
    if trainer.interrupted:
        batch = trainer.train_loader.state_dict()["batch"]
        print(f"interrupted in epoch {trainer.epoch + 1}, after batch {batch} of {len(trainer.train_loader)}: "
              f"checkpoint saved; continue with: tinygrad-cnn train --resume --out {shlex.quote(str(out))}")
        return 130
    best = max(trainer.history, key=lambda r: r["test_acc"]) if trainer.history else None
    if best:
        print(f"best test accuracy {best['test_acc']:.4f} (epoch {best['epoch']}); curves in {out}/curves.png")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .study import run_compare

    out = Path(args.out)
    load_fashion_mnist(args.data)  # found before the folder is made or a model trained
    writable_folder(out)
    return run_compare(out=out, quick=args.quick, seed=args.seed, data_root=args.data, seeds=args.seeds,
                       augment=args.augment)


def cmd_graph(args: argparse.Namespace) -> int:
    from . import models, viz

    page = _backprop_page_target(args) if args.backprop_page is not None else None
    if page is None or args.out is not None:  # the picture: by default, and beside a page when --out asks for it
        _write_picture(args)
    if page is not None:
        with viz.training_step(models.build(args.model)) as loss:
            _write_backprop_page(loss, page, args.depth)
    return 0


def _write_picture(args: argparse.Namespace) -> None:
    from . import models, viz

    out = Path(args.out or f"{args.model}.svg")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in GRAPH_FORMATS:
        raise UsageError(f"--out {out}: the file name must end in .{', .'.join(GRAPH_FORMATS)}")
    if fmt != "dot" and shutil.which("dot") is None:
        raise UsageError("graph: Graphviz's `dot` is not on PATH; install Graphviz (apt-get install graphviz), "
                         f"or write the graph's source with --out {out.with_suffix('.dot')}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    dot = viz.draw_model(models.build(args.model), depth=args.depth, backward=args.backward, grads=args.grads)
    content = dot.source.encode() if fmt == "dot" else dot.pipe(format=fmt)  # pipe: no stray FILE.gv beside it
    try:
        out.write_bytes(content)
    except OSError as e:
        raise UsageError(f"--out {out}: cannot write it ({e.strerror or e})") from None
    print(f"wrote {out}")


def _backprop_page_target(args: argparse.Namespace) -> Path:
    """The checked --backprop-page path (before any model is built)."""
    page = Path(args.backprop_page)
    if page.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--backprop-page {page}: the file name must end in .html")
    if not page.parent.is_dir():
        raise UsageError(f"--backprop-page {page}: the folder {page.parent} does not exist")
    if args.out is None and (args.backward or args.grads):
        raise UsageError("--backward and --grads change the picture, which --backprop-page alone does not draw; "
                         "add --out FILE.svg for it")
    if shutil.which("dot") is None:
        raise UsageError("graph: the backprop page draws its graph with Graphviz's `dot`, which is not on PATH; "
                         "install Graphviz (apt-get install graphviz)")
    return page


def _write_backprop_page(loss: Tensor, page: Path, depth: int | None) -> None:
    from .viz import backprop_page
    from .viz.backprop import readable_depth

    if depth is None:
        depth = readable_depth(loss, PAGE_NODES)
    try:  # the depth fits PAGE_NODES, or the user chose it: no other limit
        written = backprop_page(loss, page, depth=depth, max_nodes=10_000)
    except OSError as e:
        raise UsageError(f"--backprop-page {page}: cannot write it ({e.strerror or e})") from None
    print(f"wrote {page} (steps 0 to {written.last_step}, {'every primitive' if depth is None else f'depth {depth}'})")


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(batch_size=args.batch_size, steps=args.steps, rounds=args.rounds)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "compare": cmd_compare, "graph": cmd_graph, "bench": cmd_bench}
    try:
        return commands[args.command](args)
    except UsageError as e:
        print(f"tinygrad-cnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a training step (loading, building, a second Ctrl-C): stop, no traceback
        print(f"tinygrad-cnn {args.command}: interrupted", file=sys.stderr)
        return 130
