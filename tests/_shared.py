"""Where the real public GSM8K/MATH rows live: ../shared/data beside the checkout (never copied in)."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]


def shared_file(relative: str) -> Path:
    """The path of a file in ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"real data not available: {path} is absent (../shared/data beside the checkout)")
    return path
