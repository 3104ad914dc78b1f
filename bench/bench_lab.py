"""How responsive ``genlab lab`` is while it trains, measured in headless Chromium.

Four numbers, on the machine this runs on (load from other processes counts too, so each
training comparison alternates its two arms ``--repeats`` times and reports medians):

* **updates per second reaching the page**: Server-Sent Events the page applied per second
  of a 2-D run, and pictures (heatmap + samples) among them;
* **press to first picture**: from the Train click to the first heatmap drawn, with the spare
  worker the lab keeps started (the default) and with a cold worker (``warm=False``);
* **heatmap redraw**: milliseconds the page takes to draw a 200 x 200 heatmap (bytes to
  colours to canvas), mean of 50 draws; and the worker's time to compute one (a flow's density
  on 40,000 grid points);
* **slowdown while watched**: training steps per second of the same run with a page
  following it and with none (target: under 10% slower). Step rates come from the trainer's
  own clock (``time`` of the last ``metrics.jsonl`` line).

    OMP_NUM_THREADS=1 python bench/bench_lab.py [--quick]   # writes bench/results/lab.{md,json}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _report import Report, common_arguments  # noqa: E402
from genlab.lab.server import running_lab  # noqa: E402
from test_lab_browser import CHROMIUM_FLAGS, _find  # noqa: E402

#: The benchmark's run: the RealNVP recipe for 2-D points on moons, fewer steps.
MODEL = {"model": "realnvp", "params": {}, "data": {"name": "moons"},
         "bounds": [-3, 3, -3, 3]}


def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = _find("chromium", "chromium-browser", "google-chrome")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='genlab-bench-')}")
    service = webdriver.ChromeService(executable_path=_find("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def wait(driver, script: str, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(script)


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url) as response:
        return json.loads(response.read())


def training_time(root: Path, run: str) -> tuple[int, float]:
    """Steps and seconds of the run's training loop, by the trainer's own clock."""
    record = json.loads((root / run / "metrics.jsonl").read_text().splitlines()[-1])
    return record["step"], record["time"]


def steps_per_second(root: Path, run: str) -> float:
    steps, seconds = training_time(root, run)
    return steps / seconds


def press_train(driver, steps: int) -> None:
    """Set the playground to the benchmark's run and press Train."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "data-select")).select_by_value("moons")
    wait(driver, "return window.lab.points.length > 0")
    Select(driver.find_element("id", "model-select")).select_by_value("realnvp")
    field = driver.find_element("css selector", "#train-settings [name=steps]")
    field.clear()
    field.send_keys(str(steps))
    driver.find_element("id", "train").click()


def watched_run(driver, url: str, steps: int) -> dict:
    """A run followed by the page: its update rate, first picture and run name."""
    driver.get(url)
    wait(driver, "return document.body.dataset.ready === '1'")
    press_train(driver, steps)
    wait(driver, "return window.lab.firstPictureMs !== null")
    first_ms = driver.execute_script("return window.lab.firstPictureMs")
    wait(driver, "return window.lab.status === 'running'")
    start = time.perf_counter()
    updates0, pictures0 = driver.execute_script("return [window.lab.updates, window.lab.pictures]")
    wait(driver, "return ['evaluating', 'done'].includes(window.lab.status)")
    seconds = time.perf_counter() - start
    updates1, pictures1 = driver.execute_script("return [window.lab.updates, window.lab.pictures]")
    run = driver.execute_script("return window.lab.job.run")
    wait(driver, "return window.lab.status === 'done'")
    return {"run": run, "first_ms": first_ms, "updates_s": (updates1 - updates0) / seconds,
            "pictures_s": (pictures1 - pictures0) / seconds}


def unwatched_run(url: str, steps: int) -> str:
    """The same run with no page following it (its state polled once a second)."""
    job = post(f"{url}/api/jobs", {**MODEL, "train": {"steps": steps}})
    while get(f"{url}/api/jobs")[-1]["status"] not in ("done", "stopped", "error"):
        time.sleep(1.0)
    return job["run"]


def heatmap_draw_ms(driver) -> float:
    return driver.execute_script("""
        const res = 200, bytes = new Uint8Array(res * res);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 256;
        const ctx = document.getElementById('main-canvas').getContext('2d');
        let total = 0;
        for (let k = 0; k < 50; k++) total += window.labDraw.drawHeatmap(ctx, bytes, res);
        return total / 50;""")


def heatmap_compute_ms() -> float:
    import torch

    from genlab import create, load_data
    from genlab.lab.pictures import heatmap

    torch.set_num_threads(1)
    model = create("realnvp", data=load_data("moons")).eval()
    samples = model.sample(2000)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        heatmap(model, (-3, 3, -3, 3), 200, samples, None)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def explain(slowdown: float, own: float) -> str:
    """One sentence on where the slowdown (percent) comes from, given the worker's own share."""
    if slowdown <= own:
        return ("Here the runs a page watched were not slower by more than the worker's own "
                "share; that share is the part the lab controls (pictures at most 3% of the "
                "training time, reports at most five a second).")
    return ("The slowdown beyond the worker's own share is the browser and the server taking "
            "their share of the cores: on a machine whose cores are all busy every extra "
            "process slows the others.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--steps", type=int, default=None, help="default 400 (--quick: 50)")
    parser.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    args = parser.parse_args()
    steps = args.steps or (50 if args.quick else 400)
    repeats = args.repeats or (1 if args.quick else 3)
    report = Report("lab", "genlab lab: responsiveness while training", quick=args.quick,
                    versions={"selenium": _selenium_version()})

    load_before = os.getloadavg()[1]
    driver = browser()
    driver.set_script_timeout(120)
    watched, unwatched = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with running_lab(root) as url:
            unwatched_run(url, 20)  # untimed: by its end the next spare worker is ready
            for _ in range(repeats):
                result = watched_run(driver, url, steps)
                result["steps_s"] = steps_per_second(root, result["run"])
                job = next(j for j in get(f"{url}/api/jobs") if j["run"] == result["run"])
                result["overhead"] = job["overhead_s"] / training_time(root, result["run"])[1]
                watched.append(result)
                unwatched.append(steps_per_second(root, unwatched_run(url, steps)))
                print(f"watched {result}, unwatched {unwatched[-1]:.1f} steps/s", flush=True)
            draw_ms = heatmap_draw_ms(driver)
        with running_lab(root, warm=False) as url:
            cold = watched_run(driver, url, 50)["first_ms"]
    driver.quit()
    compute_ms = heatmap_compute_ms()
    load = (load_before + os.getloadavg()[1]) / 2

    med = statistics.median
    watched_rate = med(r["steps_s"] for r in watched)
    unwatched_rate = med(unwatched)
    slowdown = 100 * (1 - watched_rate / unwatched_rate)
    overhead = 100 * med(r["overhead"] for r in watched)
    report.table(
        "the RealNVP recipe for 2-D points on moons, trained by a lab worker", [
            "measure", "value", "unit"], [
            ["updates reaching the page", med(r["updates_s"] for r in watched), "per second"],
            ["of them with a new picture", med(r["pictures_s"] for r in watched), "per second"],
            ["press Train to first picture, spare worker",
             med(r["first_ms"] for r in watched) / 1000, "s"],
            ["press Train to first picture, cold worker (imports torch)", cold / 1000, "s"],
            ["heatmap redraw in the page, 200 x 200", draw_ms, "ms"],
            ["heatmap computed by the worker, 200 x 200 flow density", compute_ms, "ms"],
            ["training steps per second, page watching", watched_rate, "steps/s"],
            ["training steps per second, no page", unwatched_rate, "steps/s"],
            ["slowdown while watched", slowdown, "%"],
            ["of which the worker's own time on reports and pictures", overhead,
             "% of the training time"]],
        formats=[None, ".2f", None],
        note=f"{steps} steps per run, headless Chromium following the page; one thread per "
        f"process, on {os.cpu_count()} cores with a load average of {load:.1f} (5-minute, "
        f"mean of start and end). Medians over {repeats} repeat(s), watched and unwatched "
        "runs alternating.")
    report.table("each repeat", ["repeat", "steps/s watched", "steps/s not watched"],
                 [[i + 1, r["steps_s"], u] for i, (r, u) in
                  enumerate(zip(watched, unwatched, strict=True))], formats=["d", ".1f", ".1f"])
    report.target("training slowdown while a page watches < 10%", f"{slowdown:.1f}%",
                  slowdown < 10, details=f"worker's own share {overhead:.1f}%")
    report.text(explain(slowdown, overhead))
    report.write(args.out)
    return 0


def _selenium_version() -> str:
    import selenium

    return selenium.__version__


if __name__ == "__main__":
    sys.exit(main())
