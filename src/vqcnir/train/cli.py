"""``vqcnir train -c CONFIG [--opt key=value ...] [--resume]``."""

from __future__ import annotations

import argparse

from ..device import add_device_argument
from ..errors import VQCNIRError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train stage 1 (codebook) or stage 2 (restorer)",
        description="Train VQCNIR from a YAML config (a shipped preset name or a path). One process "
                    "here; several GPUs or machines through torchrun, with the same arguments.",
        epilog="presets: paper-stage1, paper-stage2, small-stage1, small-stage2, tiny-stage1, "
               "tiny-stage2. Example: vqcnir train -c small-stage1 --opt data.root=photos/ "
               "train.total_iter=20000")
    p.add_argument("-c", "--config", required=True, metavar="CONFIG", help="preset name or YAML file")
    p.add_argument("--opt", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. train.total_iter=1000 model.use_aiem=false")
    p.add_argument("--resume", action="store_true",
                   help="continue experiments/<name> from its last complete training state")
    add_device_argument(p, note="; under torchrun each process takes the GPU of its LOCAL_RANK")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop at the first iteration after MINUTES (counted from the start), save a "
                        "state there and exit 0; continue later with --resume. Leave a minute or two "
                        "of a job's wall-clock limit for that last save. Ctrl+C or SIGTERM also stops "
                        "at the next iteration with a state saved (exit 130/143); twice quits at once")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import yaml

    from .config import load_config

    if args.time_limit is not None and not args.time_limit >= 0:
        raise VQCNIRError(f"--time-limit {args.time_limit:g}: give the minutes as a number of 0 or more")
    cfg = load_config(args.config, args.opt)
    if args.print_config:
        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    from .loop import run_training

    time_limit = None if args.time_limit is None else args.time_limit * 60
    result = run_training(cfg, resume=args.resume, device=args.device, time_limit=time_limit)
    # stopped by Ctrl+C / SIGTERM with its state saved: not finished, so exit as a shell reports a
    # signal (130, 143) for scripts that chain commands; the log said how to go on
    return 128 + result["stop_signal"] if result["stop_signal"] else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vqcnir.train ...``: the train command alone, with the main program's error handling."""
    import sys

    from ..cli import main as vqcnir_main

    argv = list(sys.argv[1:] if argv is None else argv)
    return vqcnir_main(["train", *argv])
