"""A real headless Chromium (Debian's, never a downloaded one) driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# no background traffic: this machine reaches nothing but loopback
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: a tiny space: real searches of a few trials in seconds
SPACE = """name: tiny
domain: vector
dataset: digits
family: chain
skeleton: {depth: {low: 1, high: 3}, width: [8, 16], ops: [linear_relu], hop_window: 2,
           kinds: [none, add, concat, gated]}
train: {lr: [0.02, 0.05, 0.1], batch_size: 256}
"""
#: screenshots land here (CI keeps them as test outputs)
OUTPUTS = Path(__file__).resolve().parents[2] / "test-outputs"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that may only reach 127.0.0.1 and file:// URLs, with its JS errors kept."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.js_errors.append(m.text))
    allowed = ("http://127.0.0.1:", "file://", "data:", "blob:")
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else r.abort())
    yield page
    context.close()


def screenshot(page: Any, name: str) -> Path:
    OUTPUTS.mkdir(exist_ok=True)
    path = OUTPUTS / name
    page.screenshot(path=str(path), full_page=False)
    return path
