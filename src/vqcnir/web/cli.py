"""`vqcnir serve`: start the local web page. Gradio is imported only when the command runs."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import tempfile
from pathlib import Path

from ..device import add_device_argument
from ..errors import VQCNIRError
from . import DEFAULT_MAX_MEGAPIXELS

# The repository's bundled samples (there in a clone or an editable install, not in a wheel).
SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "night"
INSTALL_HINT = 'vqcnir serve needs the web extra: pip install "vqcnir[web]"'


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="restore photos in a local web page (needs vqcnir[web])",
        description="Start a local web page to restore photos: drop or paste a photo, compare before and "
                    "after, download the full-resolution result. It runs offline, on this machine only.")
    p.add_argument("--weights", action="append", default=[], metavar="NAME|PATH",
                   help="a model to offer besides the bundled default (a name from `vqcnir models` or a "
                        "checkpoint); repeat for several; the first is preselected")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    add_device_argument(p)
    p.add_argument("--memory-budget", type=float, default=None, metavar="GIB",
                   help="memory one forward pass may use, in GiB (default as for `vqcnir restore`)")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS, metavar="MP",
                   help=f"refuse larger photos (default {DEFAULT_MAX_MEGAPIXELS:g})")
    p.set_defaults(func=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise VQCNIRError(INSTALL_HINT)
    if not 0 <= args.port <= 65535:
        raise VQCNIRError(f"--port {args.port}: use a port number from 0 to 65535")
    if args.memory_budget is not None and args.memory_budget <= 0:
        raise VQCNIRError("--memory-budget must be positive")
    temp_dir = Path(tempfile.mkdtemp(prefix="vqcnir-serve-"))
    # SIGTERM (a service manager, `kill`) ends the server like Ctrl-C, so the folder is removed
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _serve(args, temp_dir)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, temp_dir: Path) -> int:
    from ..allocator import keep_freed_memory
    from .service import PhotoRestorer

    service = PhotoRestorer.from_weights(
        args.weights, temp_dir / "results", device=args.device, max_megapixels=args.max_megapixels,
        memory_budget=None if args.memory_budget is None else args.memory_budget * 2**30)
    if service.device.type == "cpu":
        keep_freed_memory()  # as `vqcnir restore` does: about 1.5x faster (vqcnir/allocator.py)
    _private_environment(temp_dir)
    from .app import build_app, launch  # imports gradio: a few seconds

    examples = _copy_examples(temp_dir / "uploads" / "samples")
    print(f"models: {', '.join(service.model_names)} on {service.device}; uploads and results live in "
          f"{temp_dir} (removed at exit)")
    print(f"open http://{args.host}:{args.port}/ in a browser; Ctrl-C stops the server", flush=True)
    try:
        launch(build_app(service, examples), args.host, args.port, args.max_megapixels)
    except OSError as error:  # port taken, address not on this machine
        raise VQCNIRError(f"cannot listen on {args.host}:{args.port} ({error})") from None
    return 0


def _private_environment(temp_dir: Path) -> None:
    """What Gradio reads from the environment: no telemetry, no hub look-ups, and its uploads and
    caches inside ``temp_dir``. Set before gradio is imported."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_TEMP_DIR"] = str(temp_dir / "uploads")
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(temp_dir / "cache")


def _copy_examples(folder: Path) -> list[Path]:
    """The bundled samples, copied into the upload folder: Gradio then serves them without being
    allowed to read any folder of this machine."""
    if not SAMPLES.is_dir():
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, folder / p.name)) for p in sorted(SAMPLES.glob("*.png"))]
