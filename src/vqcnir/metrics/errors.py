"""Errors of the metrics package."""

from __future__ import annotations

from ..errors import VQCNIRError


class MetricUnavailable(VQCNIRError):
    """A metric cannot run here (a package or weights file is missing); the message says why."""
