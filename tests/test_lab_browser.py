"""The lab in a real headless Chromium: draw, train, watch, pause, resume, runs, report.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) are driven by
Selenium. Where either cannot be found the tests skip and say why. With
``GENLAB_SCREENSHOTS=1`` the tests also write the screenshots of docs/lab.md to
docs/figures/lab/.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from genlab.lab.server import running_lab

SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "figures" / "lab"
#: The flags a closed network needs: without them Chromium waits on services it cannot reach.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1500,1000")


def _find(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser = _find("chromium", "chromium-browser", "google-chrome")
    chromedriver = _find("chromedriver")
    if browser is None or chromedriver is None:
        pytest.skip("Chromium or chromedriver not found on PATH (Debian: apt-get install "
                    "chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="genlab-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=chromedriver)
    chrome = webdriver.Chrome(options=options, service=service)
    chrome.set_script_timeout(30)
    yield chrome
    chrome.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab over a runs folder that already holds a ``genlab compare`` output."""
    from genlab.report import run_report

    root = tmp_path_factory.mktemp("runs")
    run_report(datasets=["moons"], models=["histogram", "gaussian"], out=root / "compare",
               quick=True)
    with running_lab(root, warm=False) as url:  # no spare worker: one import of torch less
        yield url, root


def wait(driver, condition, timeout=90.0, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"Timed out waiting for {what}: {condition}")


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


def screenshot(driver, name: str) -> None:
    if os.environ.get("GENLAB_SCREENSHOTS") == "1":
        driver.execute_script("window.scrollTo(0, 0)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def canvas_pixels(driver) -> str:
    return driver.execute_script("return document.getElementById('main-canvas').toDataURL()")


def status(driver) -> tuple[str, int]:
    s = driver.find_element("id", "status")
    return s.get_attribute("data-status"), int(s.get_attribute("data-step"))


def test_draw_train_watch_pause_resume(driver, lab):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    url, root = lab
    driver.get(url)
    wait(driver, "return document.body.dataset.ready === '1'", what="the lab to load")
    Select(driver.find_element("id", "data-select")).select_by_value("draw")
    canvas = driver.find_element("id", "main-canvas")
    strokes = ActionChains(driver).move_to_element_with_offset(canvas, -120, -60).click_and_hold()
    for i in range(40):  # an arc, then a bar
        strokes.move_by_offset(6, 3 if i < 20 else -3)
    strokes.release().perform()
    drawn = driver.execute_script("return window.lab.points.length")
    assert drawn >= 100, "every mouse move lays down points"
    Select(driver.find_element("id", "model-select")).select_by_value("realnvp")
    for name, value in (("transforms", "4"), ("width", "16"), ("depth", "1")):
        field = driver.find_element("css selector", f"#model-settings [name={name}]")
        field.clear()
        field.send_keys(value)
    for name, value in (("steps", "100000"), ("batch_size", "64")):
        field = driver.find_element("css selector", f"#train-settings [name={name}]")
        field.clear()
        field.send_keys(value)
    driver.find_element("id", "train").click()
    wait(driver, "return window.lab.pictures >= 1", what="the first picture")
    first = canvas_pixels(driver)
    wait(driver, "return window.lab.picture && window.lab.picture.step >= 30",
         what="training to advance")
    wait(driver, "return window.lab.pictures >= 3", what="more pictures")
    assert canvas_pixels(driver) != first, "the heatmap changes as the model learns"
    assert driver.execute_script("return document.querySelectorAll('#stages canvas').length") \
        == 4 + 1, "the flow's stages: the data, after each of 4 inverse maps"
    assert driver.execute_script("return Object.keys(window.lab.curves)").count("loss_nll") == 1
    screenshot(driver, "playground")

    driver.find_element("id", "pause").click()
    wait(driver, "return window.lab.status === 'paused'", what="the pause")
    _, paused_at = status(driver)
    time.sleep(1.0)
    assert status(driver) == ("paused", paused_at), "a paused run does not move"
    driver.find_element("id", "step").click()
    wait(driver, f"return +document.getElementById('status').dataset.step > {paused_at}",
         what="one step")
    assert status(driver)[1] == paused_at + 1
    driver.find_element("id", "resume").click()
    wait(driver, f"return +document.getElementById('status').dataset.step > {paused_at + 20}",
         what="training to go on")
    driver.find_element("id", "stop").click()
    wait(driver, "return window.lab.status === 'stopped'", what="the stop")
    run = root / driver.execute_script("return window.lab.job.run")
    assert (run / "trainer_state.pt").is_file() and (run / "points.npy").is_file()
    assert console_errors(driver) == []


def test_runs_table_sorts_and_report_images_load(driver, lab):
    url, root = lab
    driver.get(url)
    wait(driver, "return document.body.dataset.ready === '1'", what="the lab to load")
    driver.find_element("id", "tab-runs").click()
    wait(driver, "return document.querySelectorAll('#runs-table tbody tr').length >= 3",
         what="the runs table")
    assert not driver.find_element("id", "playground").is_displayed()

    def column(key: str) -> list[str]:
        index = [h.get_attribute("data-key") for h in
                 driver.find_elements("css selector", "#runs-table th")].index(key)
        return [row.find_elements("css selector", "td")[index].text for row in
                driver.find_elements("css selector", "#runs-table tbody tr")]

    header = driver.find_element("css selector", "#runs-table th[data-key=model]")
    header.click()
    assert column("model") == sorted(column("model"))
    driver.find_element("css selector", "#runs-table th[data-key=model]").click()
    assert column("model") == sorted(column("model"), reverse=True)
    driver.find_element("css selector", "#runs-table th[data-key=bits_per_dim]").click()
    scored = [float(v) for v in column("bits_per_dim") if v != "—"]
    assert len(scored) == 2 and scored == sorted(scored)

    for box in driver.find_elements("css selector", "#runs-table tbody input")[:2]:
        box.click()
    wait(driver, "const imgs = [...document.querySelectorAll('#selected-samples img')];"
         "return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0)",
         what="the samples of the selected runs, side by side")
    screenshot(driver, "runs")

    link = driver.find_element("css selector", "#reports a")
    assert link.text == "compare/report.html"
    driver.get(link.get_attribute("href"))
    images = wait(driver, "const imgs = [...document.images];"
                  "return imgs.every(i => i.complete) && imgs.length ? imgs.length : 0",
                  what="the report's images")
    broken = driver.execute_script(
        "return [...document.images].filter(i => i.naturalWidth === 0).map(i => i.src)")
    expected = (root / "compare" / "report.html").read_text().count("<img ")
    assert images == expected >= 2 and broken == []
    assert console_errors(driver) == []
