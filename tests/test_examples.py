"""The example scripts that port PyTorch code run to the end, and their models learn."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_1d_cnn_port_trains_and_its_loss_goes_down():
    result = subprocess.run([sys.executable, str(EXAMPLES / "port_1d_cnn.py"), "--steps", "80"],
                            capture_output=True, text=True, timeout=300, check=True)
    first, last = map(float, re.search(r"loss (\S+) → (\S+);", result.stdout).groups())
    assert last < 0.75 * first, result.stdout
    assert "Conv1d(1, 16, kernel_size=(5,), stride=(1,), padding=same)" in result.stdout
