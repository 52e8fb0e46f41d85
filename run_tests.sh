#!/usr/bin/env bash
# Run the test suite, without the slow tests (real data, full training).
# Extra arguments go to pytest, e.g. `./run_tests.sh tests/test_docs.py -x`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/setup.sh

exec python3 -m pytest -m "not slow" -rs "$@"  # -rs: each skip says why (torch missing, ...)
