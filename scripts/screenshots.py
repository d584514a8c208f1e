"""Save every page of a running dashboard at 1440 and 390 px, light and dark, so a
reviewer can look without clicking (``make screenshots``).

It logs in through the login form, then visits the navigation's pages and, from them,
the first few pages of each kind they link to (a queue, an alarm, a bus, an archive,
an operation, DLQ messages, a correlation lookup...): read-only GETs only, never a form.

Settings (environment variables, with ``make demo``'s defaults):
  EVENTOPS_URL       http://127.0.0.1:8000/
  EVENTOPS_USER      oncall
  EVENTOPS_PASSWORD  the demo password (DEMO_PASSWORD, or what make demo printed)
  SCREENSHOTS_DIR    var/screenshots
  SCREENSHOTS_PER_KIND  2 pages of each kind
  EVENTOPS_CHROMIUM  /usr/bin/chromium
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import Page, sync_playwright

WIDTHS = (1440, 390)
SCHEMES = ("light", "dark")
logger = logging.getLogger("screenshots")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Links that change something, download, or leave the dashboard's pages.
SKIP = re.compile(
    r"/(logout|admin|login)/|export|\.json|/(start|cancel|delete|edit|republish)/|/progress/|"
    r"/search/panel/|/state/|[?&]page="
)
MAX_PAGES = 60


def kind_of(path: str) -> str:
    """The page's kind: its path with names and numbers replaced ("/env/*/queues/*/")."""
    parts = urlsplit(path).path.strip("/").split("/")
    shape = []
    for index, part in enumerate(parts):
        known = part in KNOWN_SEGMENTS
        shape.append(part if known or index == 0 else "*")
    query = "?q" if "q=" in urlsplit(path).query else ""
    return "/" + "/".join(shape) + "/" + query


KNOWN_SEGMENTS = {
    "env",
    "queues",
    "messages",
    "redrive",
    "alarms",
    "buses",
    "search",
    "archives",
    "events",
    "replay",
    "operations",
    "schemas",
    "check",
}


def slug(path: str) -> str:
    text = re.sub(r"[^A-Za-z0-9]+", "-", path.strip("/")).strip("-")
    return (text or "home")[:120]


def log_in(page: Page, base: str, user: str, password: str) -> str:
    """Log in; returns the URL the dashboard lands on (the first environment's overview)."""
    page.goto(urljoin(base, "/login/"))
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/login/" in page.url:
        sys.exit(f"Could not log in as {user!r} at {base}: check EVENTOPS_USER/EVENTOPS_PASSWORD.")
    return page.url


def links(page: Page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = []
    for href in hrefs:
        url = urljoin(page.url, href)
        if urlsplit(url).netloc == urlsplit(base).netloc and not SKIP.search(url):
            found.append(url.split("#")[0])
    return found


def discover(page: Page, base: str, start: str, per_kind: int) -> list[str]:
    """Pages to capture: breadth first from ``start``, at most ``per_kind`` of each kind."""
    queue, seen = [start], {start}
    counts: dict[str, int] = {}
    pages: list[str] = []
    while queue and len(pages) < MAX_PAGES:
        url = queue.pop(0)
        kind = kind_of(url)
        if counts.get(kind, 0) >= per_kind:
            continue
        response = page.goto(url)
        page.wait_for_load_state("networkidle")
        if response is None or response.status >= 400:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        pages.append(url)
        for link in links(page, base):
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return pages


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    base = os.environ.get("EVENTOPS_URL", "http://127.0.0.1:8000/")
    user = os.environ.get("EVENTOPS_USER", "oncall")
    password = os.environ.get("EVENTOPS_PASSWORD") or os.environ.get("DEMO_PASSWORD", "")
    if not password:
        sys.exit("Set EVENTOPS_PASSWORD (the password make demo printed, or DEMO_PASSWORD).")
    out = Path(os.environ.get("SCREENSHOTS_DIR", "var/screenshots"))
    per_kind = int(os.environ.get("SCREENSHOTS_PER_KIND", "2"))
    chromium = os.environ.get("EVENTOPS_CHROMIUM", "/usr/bin/chromium")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=LAUNCH_ARGS
        )
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        start = log_in(page, base, user, password)
        pages = discover(page, base, start, per_kind)
        state = context.storage_state()
        context.close()
        saved = 0
        for scheme in SCHEMES:
            for width in WIDTHS:
                shot = browser.new_context(
                    viewport={"width": width, "height": 900},
                    color_scheme=scheme,  # type: ignore[arg-type]
                    storage_state=state,
                )
                page = shot.new_page()
                for url in pages:
                    page.goto(url)
                    page.wait_for_load_state("networkidle")
                    parts = urlsplit(url)
                    name = f"{slug(parts.path + '-' + parts.query)}-{width}-{scheme}.png"
                    page.screenshot(path=str(out / name), full_page=True)
                    saved += 1
                shot.close()
        browser.close()
    logger.info("%d screenshots of %d pages in %s/", saved, len(pages), out)


if __name__ == "__main__":
    main()
