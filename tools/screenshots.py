"""Screenshots of the dashboard for the README: serves the demo (`stageline serve --demo`) in a
temporary data directory, logs in with headless Chromium and writes docs/images/wall.png and
docs/images/run.png.

    python tools/screenshots.py [--chromium /usr/bin/chromium] [--out docs/images]

Run by hand after a change to the pages; Playwright drives the system's Chromium and never
downloads a browser.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "release-approval"
"""The demo pipeline whose run waits for a manual review: a run page with something to show."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(path: Path, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 1).close()
                return
            except OSError:
                pass
        time.sleep(0.2)
    raise SystemExit(f"the demo server did not start ({url})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "STAGELINE_DATA_DIR": data_dir, "PYTHONPATH": str(ROOT / "src")}
        command = [sys.executable, "-m", "stageline", "serve", "--demo", "--port", str(port)]
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            demo_file = Path(data_dir) / "demo.json"
            wait_for(demo_file, base)
            time.sleep(4)  # let the demo runs get going: some pass, one fails, one waits
            demo = json.loads(demo_file.read_text())
            shoot(args.chromium, base, demo, args.out)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"wrote {args.out / 'wall.png'} and {args.out / 'run.png'}")


def shoot(chromium: str, base: str, demo: dict[str, object], out: Path) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{base}/login")
        page.fill("input[name=username]", str(demo["user"]))
        page.fill("input[name=password]", str(demo["password"]))
        page.click("button[type=submit]")
        page.wait_for_selector("#wall .tile")
        page.wait_for_selector("#live[data-state=open]")
        page.screenshot(path=str(out / "wall.png"), full_page=True)
        pipelines = demo["pipelines"]
        assert isinstance(pipelines, dict)
        tile = page.locator(f".tile[data-pipeline='{pipelines[RELEASE]}'] .run-link")
        tile.click()
        page.wait_for_selector("#run .stage")
        page.wait_for_selector("#live[data-state=open]")
        opened = page.locator(".job details.step[data-status=COMPLETED]").first
        opened.locator("summary").click()
        page.wait_for_selector("pre.log[data-complete=true]")
        page.screenshot(path=str(out / "run.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
