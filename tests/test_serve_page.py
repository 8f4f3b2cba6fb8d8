"""The page at GET / in a real headless browser: Debian's chromium driven by Playwright.

Playwright's own browser download cannot run here, so the test points it at the system chromium
(scripts/test.sh installs it with apt-get). Files go in through the file chooser, a drop and a paste;
the page must show what the API answers for the same files.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import httpx
import pytest
from serve_util import Server, sample_paths

CHROMIUM = os.environ.get("CRNN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs chromium (apt-get install chromium; scripts/test.sh does it)"
)


@pytest.fixture(scope="module")
def server():
    with Server("--api-key-env", "CRNN_PAGE_KEY", env={"CRNN_PAGE_KEY": "page-key"}) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def api_results(server: Server, paths: list[Path]) -> list[tuple[str, str]]:
    files = [("image", (p.name, p.read_bytes(), "image/png")) for p in paths]
    r = httpx.post(server.url + "/v1/recognize", files=files, headers={"authorization": "Bearer page-key"})
    assert r.status_code == 200, r.text
    return [(d["text"], f"{d['confidence']:.4f}") for d in r.json()["results"]]


def rows(page) -> list[tuple[str, str]]:
    """(text, confidence) of each result row, oldest first (the page puts the newest on top)."""
    found = page.eval_on_selector_all(
        "tr.result", "trs => trs.map(t => [t.cells[1].textContent, t.cells[2].textContent])"
    )
    return [tuple(r) for r in reversed(found)]


DROP_JS = """([b64, name, kind]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, {type: "image/png"}));
  const target = kind === "drop" ? document.getElementById("drop") : document;
  const event = kind === "drop"
    ? new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true})
    : new ClipboardEvent("paste", {clipboardData: dt, bubbles: true, cancelable: true});
  target.dispatchEvent(event);
}"""


def test_page_reads_chosen_dropped_and_pasted_images(server, browser, tmp_path):
    paths = sample_paths()
    chosen, dropped, pasted = paths[:2], paths[2], paths[3]
    expected = api_results(server, [*chosen, dropped, pasted])
    page = browser.new_page()
    page.goto(server.url + "/")
    assert page.title().startswith("crnn")
    assert page.is_visible("#key")  # the server wants a key, so the page asks for one
    page.fill("#key", "page-key")

    page.set_input_files("#files", [str(p) for p in chosen])
    page.wait_for_function("document.querySelectorAll('tr.result').length === 2", timeout=60_000)
    for path, kind in ((dropped, "drop"), (pasted, "paste")):
        n = len(rows(page))
        page.evaluate(DROP_JS, [base64.b64encode(path.read_bytes()).decode(), path.name, kind])
        page.wait_for_function(f"document.querySelectorAll('tr.result').length === {n + 1}", timeout=60_000)
    # The file chooser's two arrive in one request, both rows at once, in the order chosen.
    got = rows(page)
    assert sorted(got[:2]) == sorted(expected[:2]) and got[2:] == expected[2:]
    assert "Read 1 in" in page.inner_text("#status")
    # Each character is shaded by its confidence, with the number on hover.
    titles = page.eval_on_selector_all("tr.result .char", "s => s.map(x => x.title)")
    assert titles and all(0 <= float(t) <= 1 for t in titles)
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    shot = os.environ.get("CRNN_PAGE_SCREENSHOT")
    if shot:  # for a person to look at: CRNN_PAGE_SCREENSHOT=/tmp/page.png pytest tests/test_serve_page.py
        page.screenshot(path=shot, full_page=True)
    page.close()


def test_page_shows_the_servers_error(server, browser, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    page = browser.new_page()
    page.goto(server.url + "/")
    page.set_input_files("#files", [str(sample_paths()[0])])  # no key typed: 401
    page.wait_for_selector("#status.error", timeout=60_000)
    assert page.inner_text("#status").startswith("401")
    page.fill("#key", "page-key")
    page.set_input_files("#files", [str(bad)])
    page.wait_for_function("document.getElementById('status').textContent.startsWith('422')", timeout=60_000)
    assert "image[0] (broken.png)" in page.inner_text("#status")
    assert page.query_selector_all("tr.result") == []
    page.close()
