"""The one rule for ``--device``: every command (restore, evaluate, train, serve) accepts the same
spellings and refuses others with the same message. Which device exists is checked later, by
``engine.choose_device``; this module imports no torch so that building the CLI stays quick.
"""

from __future__ import annotations

import argparse
import re

from .errors import VQCNIRError

DEVICE_NAMES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _not_a_device(name: object) -> str:
    return f"{name!r} is not a device; use {DEVICE_NAMES}"


def check_device_name(name: str) -> str:
    """``name`` if it is one of the accepted spellings, else a VQCNIRError."""
    if not isinstance(name, str) or not _DEVICE_NAME.fullmatch(name):
        raise VQCNIRError(f"--device {_not_a_device(name)}")
    return name


def _device_argument(text: str) -> str:
    if not _DEVICE_NAME.fullmatch(text):  # argparse words its error line itself
        raise argparse.ArgumentTypeError(_not_a_device(text))
    return text


def add_device_argument(parser: argparse.ArgumentParser, default: str = "auto", note: str = "") -> None:
    """``--device`` with the shared spellings; ``auto`` picks cuda, then mps, then cpu."""
    parser.add_argument("--device", default=default, type=_device_argument,
                        help=f"auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps (default {default}){note}")
