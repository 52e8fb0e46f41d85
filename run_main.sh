#!/usr/bin/env bash
# The main job: train and compare an MLP, a CNN and a locally connected network on
# Fashion-MNIST (progress bars), then write report/report.md and report/report.html.
# Extra arguments go to `python3 -m tinygrad_cnn compare` (e.g. --quick, --out DIR, --seed N).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh

exec python3 -m tinygrad_cnn compare "$@"
