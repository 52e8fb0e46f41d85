"""Shared test settings: Hypothesis profiles, and threads that split even tiny arrays.

Gradient checks run many forward and backward passes per example, so no
per-example deadline. The "fast" profile (the default) keeps the whole core suite quick;
run ``HYPOTHESIS_PROFILE=thorough python -m pytest tests`` for a deeper search.

The primitives that split their batch over threads (backend/threads.py) only do so for
big arrays; the tests use small ones, so here every split is taken (two threads,
no minimum size) and each gradient check also checks the split. Batch norm's fused
passes (backend/normalize.py) walk blocks of a few rows of a few values each, so a
small activation has several blocks per thread and a last partial row too.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from tinygrad_cnn import backend
from tinygrad_cnn.backend import normalize, threads

backend.configure(threads=2)  # stays 1 where BLAS cannot be told to stay single-threaded (backend/blas.py)
threads.MIN_PIECE_COST = 1
normalize.ROW, normalize.BLOCK = 8, 32

settings.register_profile(
    "fast", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("thorough", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


@pytest.fixture(scope="session")
def torch():
    """PyTorch for the comparison tests, or a skip: the core suite never needs it."""
    return pytest.importorskip("torch")
