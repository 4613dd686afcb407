"""A live web app (uvicorn in a thread, a real worker process beside it) and Debian's Chromium
driven by Playwright, for the browser tests. Skipped, saying why, when Chromium is absent."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI installs it")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    app: Any
    server: Any
    thread: threading.Thread


@contextmanager
def live_server(app: Any) -> Iterator[LiveServer]:
    """``app`` served by uvicorn on a free port of localhost until the block ends."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test web server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://localhost:{port}", app, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium(downloads: Path) -> Iterator[Any]:
    """A headless Chromium (Debian's) under Playwright; one context that accepts downloads."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True, downloads_path=str(downloads)
        )
        context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()
            browser.close()
