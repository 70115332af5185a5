"""The dashboard on a big study: optuna-dashboard's study detail and the study page in a
real headless Chromium, before and after nas-skip's changes, side by side in one run.

``before``: ``optuna_dashboard.wsgi`` on nas-skip's storage on one thread, as
``nas-skip dashboard`` served it until issue 16; ``after``: :func:`nas_skip.dashboard.serving`.
The study: ``N`` trials of the ``deep_mlp`` space (about 72 categorical parameters each,
a note each) made as ``scripts/bench_big_study.py`` makes them.

Prints one JSON line; for each side (``_before`` / ``_after``), each part on a server just
started:

- ``api_first_s``: ``/api/studies/<id>`` (all trials, as the page asks on each load) without
  compression, the server's first request; ``api_s`` / ``api_bytes``: the same again;
  ``wire_s`` / ``wire_bytes``: as the browser asks for it (``Accept-Encoding: gzip,
  deflate, br``); ``poll_s``: the page's poll for new trials (``?after=N``).
- ``page_first_s``: the study page opened the moment the server listens, until it shows
  the trials ("Best Trial (number=" appears: the card is drawn from the study detail);
  ``page_s``: opened again in the same browser context (the dashboard's 6 MB script
  cached, as on a return visit), median of 3; ``list_s``: the trial list, until it says
  "N Trials"; ``page_new_s``: the study page in a new context (the script compiled too).
  Before each, the server has answered what the pages asked before (on one thread, a
  closed page's queued requests are still answered, which would count against the next).
- ``same_json``: both sides' study details decode to the same JSON but for the order of
  the choices in the search-space summary (optuna-dashboard builds them from a set) and
  the distribution of each trial's every parameter, which the after side leaves out
  (optuna-dashboard's page reads distributions from the summary only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))
import bench_big_study as b  # noqa: E402
from conftest import ARGS, CHROMIUM  # noqa: E402 - the browser tests' Chromium

from nas_skip.dashboard import _QuietHandler, in_thread, quiet_importances, serving  # noqa: E402
from nas_skip.searching._artifacts import ArtifactFolders  # noqa: E402
from nas_skip.searching._reading import open_existing  # noqa: E402
from nas_skip.spaces import load_space  # noqa: E402

BROWSER_ACCEPTS = "gzip, deflate, br"
STUDY_SHOWN = "Best Trial (number="
LONG_MS = 1_200_000  # the before side's first page takes 20-45 s here


@contextmanager
def before(url: str, host: str, port: int, artifacts: list[Path]) -> Iterator[str]:
    """The dashboard as ``nas-skip dashboard`` served it before: one thread, optuna-dashboard's
    own study detail (``serving``'s arguments)."""
    import optuna_dashboard

    store = ArtifactFolders(artifacts)
    app = quiet_importances(optuna_dashboard.wsgi(open_existing(url), artifact_store=store))
    with in_thread(make_server(host, port, app, handler_class=_QuietHandler), host) as base:
        yield base


def fetch(address: str, encoding: str | None) -> tuple[bytes, float, bytes]:
    """(the bytes on the wire, seconds, the JSON they decode to)."""
    headers = {"Accept-Encoding": encoding} if encoding else {}
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(address, headers=headers)) as r:
        wire = r.read()
        gzipped = r.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - start
    return wire, seconds, gzip.decompress(wire) if gzipped else wire


def idle(base: str) -> None:
    """Return once the server has answered what was asked before (on one thread, in turn)."""
    with urllib.request.urlopen(f"{base}api/meta", timeout=LONG_MS / 1000) as r:
        r.read()


def new_page(browser: Any) -> Any:
    """A page in a new context that may reach 127.0.0.1 only."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    allowed = ("http://127.0.0.1:", "data:", "blob:")
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(allowed) else r.abort())
    return page


def shown_after(page: Any, address: str, text: str) -> float:
    """Seconds from opening ``address`` until the page shows ``text``."""
    start = time.perf_counter()
    page.goto(address, wait_until="commit", timeout=LONG_MS)  # its load event waits on the API
    page.wait_for_function("t => document.body.innerText.includes(t)", arg=text,
                           polling=100, timeout=LONG_MS)  # fmt: skip
    return time.perf_counter() - start


def normal(detail: bytes) -> Any:
    """The detail's JSON, the search-space summary's choices sorted, the trials' parameters
    without their distributions (which nas-skip does not send)."""
    data = json.loads(detail)
    for key in ("intersection_search_space", "union_search_space"):
        for param in data[key]:
            param["distribution"].get("choices", []).sort(key=json.dumps)
    for trial in data["trials"] + data["best_trials"]:
        for param in trial["params"]:
            param.pop("distribution", None)
    return data


def api_figures(base: str, study_id: int, n: int) -> tuple[dict[str, Any], bytes]:
    """The study detail's figures; and the detail."""
    out: dict[str, Any] = {}
    api = f"{base}api/studies/{study_id}"
    _, out["api_first_s"], detail = fetch(f"{api}?after=0", None)
    raw, out["api_s"], _ = fetch(f"{api}?after=0", None)
    wire, out["wire_s"], decoded = fetch(f"{api}?after=0", BROWSER_ACCEPTS)
    assert decoded == detail or normal(decoded) == normal(detail)
    out["api_bytes"], out["wire_bytes"] = len(raw), len(wire)
    out["poll_s"] = fetch(f"{api}?after={n}", BROWSER_ACCEPTS)[1]
    return out, detail


def page_figures(browser: Any, base: str, study_id: int, n: int) -> dict[str, Any]:
    """The pages' figures."""
    out: dict[str, Any] = {}
    study = f"{base}dashboard/studies/{study_id}"
    page = new_page(browser)
    out["page_first_s"] = shown_after(page, study, STUDY_SHOWN)
    again = []
    for _ in range(3):
        idle(base)
        again.append(shown_after(page, study, STUDY_SHOWN))
    out["page_s"] = statistics.median(again)
    idle(base)
    out["list_s"] = shown_after(page, f"{study}/trials", f"{n} Trials")
    page.context.close()
    idle(base)
    page = new_page(browser)
    out["page_new_s"] = shown_after(page, study, STUDY_SHOWN)
    page.context.close()
    return out


def bench_dashboard(n: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {"trials": n}
    with tempfile.TemporaryDirectory() as name, sync_playwright() as pw:
        tmp = Path(name)
        db = tmp / "big.db"
        b.seed_study(db, tmp, load_space("deep_mlp"))
        b.grow(db, n)
        url = f"sqlite:///{db}"
        study_id = open_existing(url).get_study_id_from_name(b.STUDY)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        details = {}
        for side, serve in (("before", before), ("after", serving)):
            with serve(url, "127.0.0.1", 0, [tmp / "artifacts"]) as base:
                figures, details[side] = api_figures(base, study_id, n)
            with serve(url, "127.0.0.1", 0, [tmp / "artifacts"]) as base:
                figures |= page_figures(browser, base, study_id, n)
                idle(base)
            figures = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
            out |= {f"{k}_{side}": v for k, v in figures.items()}
            print(json.dumps({side: figures}), file=sys.stderr)
        browser.close()
        trials = json.loads(details["before"])["trials"]
        out["params_per_trial"] = round(sum(len(t["params"]) for t in trials) / len(trials), 1)
        out["same_json"] = normal(details["before"]) == normal(details["after"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials in the study")
    args = parser.parse_args()
    print(json.dumps(bench_dashboard(args.trials)))


if __name__ == "__main__":
    main()
