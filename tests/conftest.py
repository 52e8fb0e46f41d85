"""Shared test settings: Hypothesis profiles.

Gradient checks run many forward and backward passes per example, so no
per-example deadline. The "fast" profile (the default) keeps the whole core suite quick;
run ``HYPOTHESIS_PROFILE=thorough python -m pytest tests`` for a deeper search.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("thorough", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
