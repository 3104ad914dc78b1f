"""Run every benchmark script, then rebuild RESULTS.md (the body of ``bench/run``).

    bench/run [--quick] [--only gmm,flows] [--jobs 2]

Each script runs in its own process with one thread (``OMP_NUM_THREADS=1``) and the same
``--quick`` / ``--out``; up to ``--jobs`` scripts run at once (one per core). A script's output
goes to ``bench/logs/NAME.log``. A failed script is reported at the end, the others still run,
and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _report import RESULTS, ROOT

#: (report name, script, the report that must be written first). Order: longest first.
SCRIPTS = (
    ("autoregressive", "bench_autoregressive.py", None),
    ("compress", "bench_compress.py", "autoregressive"),
    ("flows", "bench_flows.py", None),
    ("diffusion", "bench_diffusion.py", None),
    ("gan", "bench_gan.py", None),
    ("conditional", "bench_conditional.py", None),
    ("probe", "bench_probe.py", None),
    ("vae", "bench_vae.py", None),
    ("rbm", "bench_rbm.py", None),
    ("gmm", "bench_gmm.py", None),
    ("histogram", "bench_histogram.py", None),
    ("histogram_dims", "bench_histogram_dims.py", None),
    ("regularisation", "tune_regularisation.py", None),
    ("defaults", "bench_defaults.py", "autoregressive"),
    ("lab", "bench_lab.py", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (minutes in all)")
    parser.add_argument("--only", default="", help="comma-separated report names")
    parser.add_argument("--jobs", type=int, default=2, help="scripts at once (default 2)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    names = [n for n, _, _ in SCRIPTS]
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(names))
    if unknown:
        sys.exit(f"Expected --only names among {names}, but found {unknown}.")
    todo = [s for s in SCRIPTS if not only or s[0] in only]
    logs = ROOT / "bench" / "logs"
    logs.mkdir(exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    done: dict[str, int] = {}
    start = time.perf_counter()
    while todo or running:
        for name, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                done[name] = proc.returncode
                del running[name]
                status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                print(f"[{time.perf_counter() - start:6.0f} s] {name}: {status}, "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
        pending = {t[0] for t in todo} | set(running)
        ready = [s for s in todo if s[2] not in pending]  # its prerequisite has finished
        while ready and len(running) < args.jobs:
            name, script, _ = ready.pop(0)
            todo.remove((name, script, _))
            cmd = [sys.executable, str(ROOT / "bench" / script), "--out", args.out]
            cmd += ["--quick"] if args.quick else []
            log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
            running[name] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT), time.perf_counter())
            print(f"[{time.perf_counter() - start:6.0f} s] {name}: started", flush=True)
        time.sleep(0.5)
    # RESULTS.md beside bench/results; for another --out, inside that folder
    page = (RESULTS.parent if Path(args.out).resolve() == RESULTS.resolve()
            else Path(args.out)) / "RESULTS.md"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_results.py"),
                    "--results", args.out, "--out", str(page)], check=True)
    failed = sorted(n for n, rc in done.items() if rc)
    print(f"bench/run: {len(done)} scripts in {time.perf_counter() - start:.0f} s"
          + (f"; failed: {', '.join(failed)} (see bench/logs/)" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
