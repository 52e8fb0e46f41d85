#!/usr/bin/env bash
# The main job: train and compare an MLP and a CNN on Fashion-MNIST, write a report.
# Extra arguments go to `python3 -m tinygrad_cnn compare`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh

if python3 -m tinygrad_cnn compare --help >/dev/null 2>&1; then
    exec python3 -m tinygrad_cnn compare "$@"
fi
echo "run_main: the 'compare' command is not there yet; running examples/autodiff_basics.py instead"
exec python3 examples/autodiff_basics.py
