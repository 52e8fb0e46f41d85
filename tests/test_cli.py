"""The `tinygrad-cnn` command as a user meets it: each mistake ends in one to three lines and exit status 2.

Every case checks the exit status, that the message names the option and the
value, that no traceback is printed, and that nothing on disk changed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_training import InterruptAfter, write_fashion_like

from tinygrad_cnn import __version__, models
from tinygrad_cnn.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the command, as a shell would see them."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exits (errors, --help, --version)
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, err: str, *words: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3, err
    for word in words:
        assert word in err, (word, err)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) below `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def fashion(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_fashion_like(folder)
    return folder


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("--lr", "-1", "a number above 0"),
    ("--lr", "0", "a number above 0"),
    ("--lr", "nan", "a number above 0"),
    ("--batch-size", "0", "at least 1"),
    ("--epochs", "0", "at least 1"),
    ("--epochs", "-3", "at least 1"),
    ("--epochs", "two", "'two'"),
    ("--seed", "-1", "at least 0"),
    ("--model", "resnet", "invalid choice"),
])
def test_bad_train_options_are_one_line_errors_and_write_nothing(tmp_path, capsys, option, value, expected):
    code, _, err = run(["train", option, value, "--out", str(tmp_path / "run")], capsys)
    assert_usage_error(code, err, option, value, expected)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("argv", "words"), [
    (["bench", "--steps", "0"], ["--steps", "0"]),
    (["bench", "--batch-size", "-5"], ["--batch-size", "-5"]),
    (["graph", "--depth", "-1"], ["--depth", "-1"]),
])
def test_bad_options_of_other_commands(capsys, argv, words):
    code, _, err = run(argv, capsys)
    assert_usage_error(code, err, *words)


def test_corrupt_data_names_the_file_and_the_option(tmp_path, fashion, capsys):
    (fashion / "train-images-idx3-ubyte.gz").write_bytes(b"not an IDX file at all")
    before = snapshot(tmp_path)
    code, _, err = run(["train", "--data", str(fashion), "--out", str(tmp_path / "run")], capsys)
    assert_usage_error(code, err, "--data", "train-images-idx3-ubyte.gz")
    assert snapshot(tmp_path) == before  # no run folder either: the data is read before it is made


def test_missing_data_says_how_to_get_it_in_the_commands_words(tmp_path, capsys):
    code, _, err = run(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")], capsys)
    assert_usage_error(code, err, "--data", "nowhere", "dataset-fashion-mnist")
    assert not (tmp_path / "run").exists()
    (tmp_path / "afile").write_text("x")
    code, _, err = run(["train", "--data", str(tmp_path / "afile"), "--out", str(tmp_path / "run")], capsys)
    assert_usage_error(code, err, "--data", "afile", "is a file, not a folder")


@pytest.mark.parametrize("argv", [["train", "--out", ""], ["compare", "--out", " "], ["graph", "--out", ""],
                                  ["train", "--data", ""]])
def test_an_empty_path_is_refused_not_taken_for_the_default(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert_usage_error(code, err, argv[1], "empty")
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused_before_training(tmp_path, fashion, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    code, _, err = run(["train", "--data", str(fashion), "--out", str(target)], capsys)
    assert_usage_error(code, err, "--out", "notes.txt", "a file, not a folder")
    assert target.read_text() == "keep me"


def test_out_that_cannot_be_written_is_refused_before_training(fashion, capsys):
    code, _, err = run(["train", "--data", str(fashion), "--out", "/dev/null/run"], capsys)
    assert_usage_error(code, err, "--out", "/dev/null/run", "cannot write there")


def test_an_existing_run_is_never_overwritten_without_resume_or_force(tmp_path, fashion, capsys):
    out = tmp_path / "run"
    common = ["--model", "mlp", "--batch-size", "32", "--data", str(fashion), "--out", str(out)]
    assert run(["train", "--epochs", "1", *common], capsys)[0] == 0
    before = snapshot(out)
    code, _, err = run(["train", "--epochs", "2", *common], capsys)
    assert_usage_error(code, err, "--out", str(out), "--resume", "--force")
    assert snapshot(out) == before
    code, out_text, _ = run(["train", "--epochs", "1", "--force", *common], capsys)
    assert code == 0 and "writing to" in out_text  # afresh: a new run of one epoch


def test_resume_needs_only_the_folder_and_applies_a_new_lr(tmp_path, fashion, capsys):
    out = tmp_path / "run"
    first = ["train", "--model", "mlp", "--epochs", "1", "--batch-size", "32", "--optimizer", "sgd",
             "--data", str(fashion), "--out", str(out)]
    assert run(first, capsys)[0] == 0
    code, text, err = run(["train", "--resume", "--out", str(out), "--epochs", "2", "--lr", "0.01",
                           "--data", str(fashion)], capsys)
    assert code == 0, err
    assert "--lr 0.01: applied from the next step on (the run used 0.05)" in text
    assert "resuming" in text and "mlp:" in text  # the stored model, optimizer and batch size
    code, _, err = run(["train", "--resume", "--out", str(out)], capsys)  # the stored --data is used
    assert_usage_error(code, err, "--epochs 2", "has done 2 epochs already")


def test_resume_with_a_different_batch_size_is_refused_with_the_reason(tmp_path, fashion, capsys):
    out = tmp_path / "run"
    assert run(["train", "--model", "mlp", "--epochs", "1", "--batch-size", "32", "--data", str(fashion),
                "--out", str(out)], capsys)[0] == 0
    before = snapshot(out)
    code, _, err = run(["train", "--resume", "--out", str(out), "--batch-size", "16"], capsys)
    assert_usage_error(code, err, "--batch-size 16", "started with 32")
    assert snapshot(out) == before


def test_ctrl_c_names_the_epoch_the_batch_and_the_exact_command(tmp_path, fashion, capsys, monkeypatch):
    out = tmp_path / "run"
    build = models.build
    # 4 batches an epoch and one test batch: the 7th forward is epoch 2's second batch
    monkeypatch.setattr(models, "build", lambda name: InterruptAfter(build(name), n=7))
    argv = ["train", "--model", "mlp", "--epochs", "3", "--batch-size", "32", "--data", str(fashion),
            "--out", str(out)]
    code, text, _ = run(argv, capsys)
    assert code == 130
    hint = "interrupted in epoch 2, after batch 2 of 4: checkpoint saved; continue with: "
    assert hint in text
    command = shlex.split(text.split(hint)[1].splitlines()[0])
    assert command == ["tinygrad-cnn", "train", "--resume", "--out", str(out)]
    monkeypatch.setattr(models, "build", lambda name: InterruptAfter(build(name), n=-1))  # the same model, no Ctrl-C
    code, text, _ = run(command[1:], capsys)  # exactly the printed command: no --data, yet the run's own data
    assert code == 0 and f"resuming {out} in epoch 2, after batch 2" in text and "128 training images" in text


@pytest.mark.parametrize("name", ["m.jpgx", "m", "m.svgz"])
def test_graph_with_an_unknown_format_is_refused(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["graph", "--model", "mlp", "--out", name], capsys)
    assert_usage_error(code, err, "--out", name, ".svg, .png, .pdf, .dot")
    assert list(tmp_path.iterdir()) == []


def test_graph_without_graphviz_says_what_to_do_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(["graph", "--model", "mlp", "--out", "m.svg"], capsys)
    assert_usage_error(code, err, "dot", "install Graphviz", "m.dot")
    assert list(tmp_path.iterdir()) == []  # no stray m.gv
    code, _, _ = run(["graph", "--model", "mlp", "--out", "m.dot"], capsys)
    assert code == 0 and (tmp_path / "m.dot").read_text().startswith("digraph")


def test_graph_renders_without_a_stray_source_file(tmp_path, capsys, monkeypatch):
    if not any((Path(d) / "dot").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("Graphviz's dot is not installed")
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(["graph", "--model", "mlp", "--out", "m.svg"], capsys)
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["m.svg"]


def test_compare_without_data_leaves_no_report_folder(tmp_path, capsys):
    code, _, err = run(["compare", "--quick", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")],
                       capsys)
    assert_usage_error(code, err, "--data", "nowhere")
    assert not (tmp_path / "r").exists()


def test_help_shows_commands_examples_and_defaults(capsys):
    code, text, _ = run(["--help"], capsys)
    assert code == 0 and "tinygrad-cnn train --model cnn --epochs 5" in text and "compare --quick" in text
    code, text, _ = run(["train", "--help"], capsys)
    assert code == 0 and "(default: 64)" in text and "(default: adam)" in text and "--force" in text
    code, text, _ = run(["bench", "--help"], capsys)
    assert code == 0 and "(default: 20)" in " ".join(text.split())
    code, text, _ = run(["--version"], capsys)
    assert code == 0 and __version__ in text


def test_the_real_command_prints_no_traceback(tmp_path):
    """Through `python -m tinygrad_cnn`, as a shell runs it: the edge catches the error, not a test harness."""
    result = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "train", "--lr", "-0.1"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=120)
    assert_usage_error(result.returncode, result.stderr, "--lr", "-0.1")
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_checkpoint_is_named_and_left_alone(tmp_path, fashion, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.safetensors").write_bytes(b"\x00garbage")
    before = snapshot(out)
    code, _, err = run(["train", "--data", str(fashion), "--out", str(out)], capsys)
    assert_usage_error(code, err, "--out", "already holds a run", "--force")
    code, _, err = run(["train", "--data", str(fashion), "--out", str(out), "--resume"], capsys)
    assert_usage_error(code, err, "--out", "checkpoint.safetensors", "cannot be read", "--force")
    assert snapshot(out) == before
    code, _, _ = run(["train", "--model", "mlp", "--epochs", "1", "--data", str(fashion), "--out", str(out),
                      "--force"], capsys)
    assert code == 0 and (out / "checkpoint.safetensors").stat().st_size > 1000  # --force rescued the folder


def test_a_checkpoint_that_does_not_fit_the_model_is_a_one_line_error(tmp_path, fashion, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run(["train", "--model", "mlp", "--epochs", "1", "--data", str(fashion), "--out", str(out)], capsys)[0] == 0
    before = snapshot(out)
    monkeypatch.setattr(models, "build", lambda name: models.mlp(hidden=(32,)))  # the model changed since
    code, _, err = run(["train", "--resume", "--epochs", "2", "--out", str(out)], capsys)
    assert_usage_error(code, err, "--out", "does not fit this model", "--force")
    assert snapshot(out) == before


def test_a_cosine_run_keeps_its_epochs_on_resume(tmp_path, fashion, capsys):
    out = tmp_path / "run"
    assert run(["train", "--model", "mlp", "--epochs", "1", "--schedule", "cosine", "--data", str(fashion),
                "--out", str(out)], capsys)[0] == 0
    code, _, err = run(["train", "--resume", "--epochs", "3", "--out", str(out)], capsys)
    assert_usage_error(code, err, "--epochs 3", "cosine schedule over 1 epochs")


def test_resume_of_a_folder_without_a_run_is_refused_and_creates_nothing(tmp_path, fashion, capsys):
    code, _, err = run(["train", "--resume", "--out", str(tmp_path / "typo"), "--data", str(fashion)], capsys)
    assert_usage_error(code, err, "--resume", "typo", "holds no run")
    assert not (tmp_path / "typo").exists()
