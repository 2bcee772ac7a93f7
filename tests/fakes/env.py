"""The environment a test gives a teachbot child process."""

from __future__ import annotations

import os

#: Kept from the test's own environment (tests/conftest.py sets it): a 90 MB prepared copy of the encoder in
#: every child's data folder would write gigabytes.
KEPT = ("TEACHBOT_ENCODER_PREPARED_COPY",)


def child_env() -> dict[str, str]:
    """This process's environment without its TEACHBOT_* settings, but for those in ``KEPT``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TEACHBOT_") or k in KEPT}
