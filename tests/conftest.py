"""Shared test fixtures.

Tests that need the real recordings in ../shared skip with a reason when it is absent (a user's
clone has no ../shared). Under CI (CI=true, set by .ci/run's caller) every skip is turned into a
failure: CI must never silently skip them. One exemption: tests marked ``cuda`` skip when no CUDA
GPU is present (``cuda_device`` fixture), and stay skipped under CI, whose machines may have no
GPU; the skip reason says so, so the report still shows them.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FSDD_RECORDINGS = SHARED / "data" / "fsdd" / "recordings"


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """The real FSDD recordings folder, or a skip naming what is missing."""
    if not FSDD_RECORDINGS.is_dir():
        pytest.skip(f"real FSDD recordings not found at {FSDD_RECORDINGS} "
                    "(they sit in ../shared beside a CI checkout; a plain clone has none)")
    return FSDD_RECORDINGS


@pytest.fixture
def cuda_device(request):
    """torch.device("cuda") for tests marked ``cuda``, or a skip (exempt under CI) without one."""
    import torch
    if request.node.get_closest_marker("cuda") is None:
        raise RuntimeError("the cuda_device fixture is for tests marked @pytest.mark.cuda")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine (cuda tests are exempt from CI's no-skip rule)")
    return torch.device("cuda")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    cuda_exempt = item.get_closest_marker("cuda") is not None and not _cuda_available()
    if _in_ci() and report.skipped and not cuda_exempt:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must run every test: {reason}"
