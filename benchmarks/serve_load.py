"""`vqcnir serve` under load: N clients at once against a local server with the bundled model.

    python benchmarks/serve_load.py [--clients 1 5] [--photo samples/night/chelsea.png] [--weights NAME|PATH]

Starts the real command on a free loopback port, then for each N sends N gradio_client requests
at the same moment (each restores the photo) and prints a table: whether all completed, the
per-request latency (queueing included) and the server's peak resident memory since it started
(VmHWM). The server restores one photo at a time, so latency grows with the queue, not memory.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("error: vqcnir serve exited before answering")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    sys.exit("error: vqcnir serve did not answer in time")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def burst(url: str, photo: Path, model: str, clients: int, folder: Path) -> list[float | None]:
    """Latency of each of ``clients`` simultaneous requests (None: it failed)."""
    from gradio_client import Client, handle_file

    apis = [Client(url, verbose=False, download_files=str(folder / f"c{i}")) for i in range(clients)]
    latencies: list[float | None] = [None] * clients
    start = threading.Barrier(clients)

    def run(i: int) -> None:
        start.wait()
        t = time.perf_counter()
        try:
            apis[i].predict(handle_file(str(photo)), model, False, "fp32", api_name="/restore")
            latencies[i] = time.perf_counter() - t
        except Exception as error:  # reported in the table as a failure
            print(f"client {i}: {error}", file=sys.stderr)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--photo", type=Path, default=REPO / "samples" / "night" / "chelsea.png")
    parser.add_argument("--weights", default=None, help="serve this model (default: the bundled one)")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "vqcnir", "serve", "--port", str(port)]
    if args.weights:
        command += ["--weights", args.weights]
    model = Path(args.weights).name if args.weights and os.path.exists(args.weights) else (args.weights or "default")
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(url, server)
        burst(url, args.photo, model, 1, Path(tempfile.mkdtemp()))  # warm-up: first-call costs
        print(f"photo {args.photo.name}, model {model}, {os.cpu_count()} CPU(s); latency includes queueing")
        print(f"{'clients':>7} | {'completed':>9} | {'min s':>6} | {'median s':>8} | {'max s':>6} | {'server peak RSS MiB':>19}")
        print(f"{'-' * 7}-+-{'-' * 9}-+-{'-' * 6}-+-{'-' * 8}-+-{'-' * 6}-+-{'-' * 19}")
        for clients in args.clients:
            with tempfile.TemporaryDirectory() as folder:
                latencies = burst(url, args.photo, model, clients, Path(folder))
            done = [t for t in latencies if t is not None]
            times = f"{min(done):6.2f} | {statistics.median(done):8.2f} | {max(done):6.2f}" if done else f"{'-':>6} | {'-':>8} | {'-':>6}"
            print(f"{clients:>7} | {len(done):>4} of {clients:<2} | {times} | {peak_rss_mib(server.pid):19.0f}")
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
