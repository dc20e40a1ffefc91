"""`vqcnir serve` end to end: the real command on a free loopback port, driven by Debian's Chromium
(Selenium) and by gradio_client, with a tiny checkpoint and a bundled sample.

The server runs under an audit hook that records every connection or name look-up it makes to
a host other than this machine; the browser's own requests come from its performance log.
CI installs chromium and chromium-driver from Debian (.ci/run).
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

import vqcnir
from vqcnir.cli import main
from vqcnir.imagefiles import read_image, to_uint, write_image
from vqcnir.nn import VQCNIR, preset
from vqcnir.weights import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "night" / "chelsea.png"
STARTUP_SECONDS = 240  # importing gradio and torch on two busy cores

# Runs `vqcnir serve` with an audit hook: a connection or DNS look-up to a non-loopback host is
# written to the log named by the first argument.
LAUNCHER = '''
import ipaddress, sys

def _loopback(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False

_log = open(sys.argv[1], "a")

def _hook(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple) and not _loopback(args[1][0]):
        _log.write(f"connect {args[1]!r}\\n"); _log.flush()
    elif event == "socket.getaddrinfo" and args[0] is not None and not _loopback(args[0]):
        _log.write(f"getaddrinfo {args[0]!r}\\n"); _log.flush()

sys.addaudithook(_hook)
from vqcnir.cli import main
sys.exit(main(sys.argv[2:]))
'''


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, folder: Path):
        torch.manual_seed(0)
        self.weights = folder / "tiny.safetensors"
        save_checkpoint(self.weights, VQCNIR(preset("tiny")).state_dict(), preset("tiny"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.audit_log = folder / "outbound.log"
        self.audit_log.write_text("")
        launcher = folder / "launch_serve.py"
        launcher.write_text(LAUNCHER)
        env = dict(os.environ, OMP_NUM_THREADS="1",  # tiny tensors: one thread is fastest
                   PYTHONPATH=os.pathsep.join([str(Path(vqcnir.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, str(launcher), str(self.audit_log), "serve", "--weights", str(self.weights),
             "--port", str(self.port), "--device", "cpu"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        threading.Thread(target=lambda: self.output.extend(self.process.stdout), daemon=True).start()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail("vqcnir serve exited:\n" + "".join(self.output))
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(1)
        pytest.fail("vqcnir serve did not answer in time:\n" + "".join(self.output))

    @property
    def temp_dir(self) -> Path:
        found = re.search(r"live in (\S+) \(removed at exit\)", "".join(self.output))
        assert found, "".join(self.output)
        return Path(found.group(1))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("serve"))
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    folder = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={folder / 'profile'}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.downloads = folder / "downloads"
    chrome.downloads.mkdir()
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(chrome.downloads)})
    try:
        yield chrome
    finally:
        chrome.quit()


def _restored_by_cli(path: Path, weights: Path, folder: Path) -> np.ndarray:
    assert main(["restore", str(path), "-o", str(folder), "--weights", str(weights), "--device", "cpu"]) == 0
    image = read_image(folder / path.name)
    return to_uint(image.rgb, image.bit_depth).astype(int)


def _assert_within_one_level(served: Path, reference: np.ndarray) -> None:
    image = read_image(served)
    pixels = to_uint(image.rgb, image.bit_depth).astype(int)
    assert pixels.shape == reference.shape
    assert np.abs(pixels - reference).max() <= (257 if image.bit_depth == 16 else 1)


def _wait(browser, condition, seconds=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds, poll_frequency=0.2).until(condition)


def _upload(browser, url: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(url)
    _wait(browser, lambda b: b.find_element(By.CSS_SELECTOR, "#photo input[type=file]")).send_keys(str(path))
    _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#photo img"))
    browser.find_element(By.ID, "restore").click()


def test_page_restores_a_sample_downloads_it_and_shows_errors(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _upload(browser, server.url, SAMPLE)
    link = _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#download a[download]"))[0]
    summary = browser.find_element(By.ID, "summary").text
    assert "chelsea.png: 320x213, restored in" in summary and "tiny.safetensors" in summary
    assert len(browser.find_elements(By.CSS_SELECTOR, "#comparison img")) == 2  # before and after
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    link.click()
    downloaded = browser.downloads / "chelsea-restored.png"
    _wait(browser, lambda b: downloaded.is_file() and not list(b.downloads.glob("*.crdownload")), 60)
    _assert_within_one_level(downloaded, _restored_by_cli(SAMPLE, server.weights, tmp_path / "cli"))

    bad = tmp_path / "bad.png"
    bad.write_text("this is a note, not a photo")
    _upload(browser, server.url, bad)
    message = "bad.png: not a JPEG, PNG, TIFF, WebP or BMP image"
    _wait(browser, lambda b: message in b.find_element(By.TAG_NAME, "body").text, 60)
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in page and str(server.temp_dir) not in page
    browser.save_screenshot(str(tmp_path / "error.png"))

    requested = set()
    for entry in browser.get_log("performance"):
        if '"Network.requestWillBeSent"' in entry["message"] or '"Network.webSocketCreated"' in entry["message"]:
            requested.update(re.findall(r'"url":\s*"((?:https?|wss?)://[^"]+)"', entry["message"]))
    assert any(url.startswith(server.url) for url in requested)
    assert {urlparse(url).hostname for url in requested} == {"127.0.0.1"}


def test_gradio_client_five_at_once_all_get_their_result(server, tmp_path):
    from gradio_client import Client, handle_file

    photos = []
    for i in range(5):
        rgb = np.random.default_rng(i).uniform(0, 0.3, (40, 48, 3)).astype(np.float32)
        photos.append(tmp_path / f"night{i}.png")
        write_image(photos[-1], rgb, bit_depth=16 if i == 0 else 8)
    results: dict[int, object] = {}

    def client(i):
        api = Client(server.url, verbose=False, download_files=str(tmp_path / f"client{i}"))
        results[i] = api.predict(handle_file(str(photos[i])), "tiny.safetensors", False, "fp32", api_name="/restore")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == list(range(5))
    for i, (_slider, output, summary) in results.items():
        assert Path(output).name == f"night{i}-restored.png" and f"night{i}.png: 48x40" in summary
    assert read_image(results[0][1]).bit_depth == 16
    _assert_within_one_level(Path(results[0][1]), _restored_by_cli(photos[0], server.weights, tmp_path / "cli"))


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (Linux /proc/net)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_serves_only_its_own_files_and_only_on_loopback(server):
    for path in (server.weights, Path("/etc/passwd"), server.temp_dir / "uploads" / ".." / ".." / "etc" / "passwd"):
        assert _http_status(f"{server.url}gradio_api/file={path}") == 403
    assert _listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1


def test_api_refuses_a_path_that_was_not_uploaded(server):
    """The handler takes Gradio's file record as it comes (preprocess=False); Gradio must still
    refuse a record that points at a photo elsewhere on this machine instead of an upload."""
    import json

    results_before = len(list((server.temp_dir / "results").glob("*/*")))
    record = {"path": str(SAMPLE), "meta": {"_type": "gradio.FileData"}}  # a photo it would restore
    body = json.dumps({"data": [record, "tiny.safetensors", False, "fp32"]}).encode()
    request = urllib.request.Request(f"{server.url}gradio_api/call/restore", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{server.url}gradio_api/call/restore/{event_id}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: error" in stream and "event: complete" not in stream
    assert len(list((server.temp_dir / "results").glob("*/*"))) == results_before  # nothing was restored


def test_stopping_removes_its_folder_and_nothing_left_the_machine(server):
    folder = server.temp_dir
    assert (folder / "uploads").is_dir()
    assert server.stop() == 0
    assert not folder.exists()
    assert server.audit_log.read_text() == ""
