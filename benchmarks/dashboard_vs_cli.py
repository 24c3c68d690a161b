"""A run started from the dashboard, live view open, against the same run from the CLI.

Run: `.venv/bin/python benchmarks/dashboard_vs_cli.py` (`--quick` for a smoke run;
`--backends jax`; `--repeats 2`; `--epochs 1000`). About 4 minutes.

The issue's target: a run started from the dashboard, with its live view open, trains within
10 % of the same run started with `sgdplus train`. Both runs are met as a user meets them:

- **CLI**: `sgdplus train` (the console script next to this Python) in a subprocess, on a
  temporary runs folder (SGDPLUS_RUNS_DIR), with `--backend` given explicitly;
- **dashboard**: `streamlit run dashboard/app.py` on a free loopback port with its own
  temporary runs folder, the Train page opened in Debian's Chromium (headless, driven by
  Playwright as in tests/e2e), the settings picked through the widgets (dataset digits,
  batch size Online (1), Plain SGD at a rate of 0.01, the epochs, the backend; the rest at
  the defaults the page and the CLI share), Start clicked, and the page kept open, its live
  view polling, until the run's meta.json says it has ended and the page shows the outcome.

Both runs' configurations must then be equal (the name aside) and both must have completed.
From each run's `batches.csv` and `meta.json` (`RunStore`):

- **training steps/s**: the steps from the first step of epoch 1 to the last step over their
  wall-time span (epoch 0 holds the compilation; the validation passes between epochs are
  counted, as the user waits for them);
- **whole run steps/s**: all steps over `summary.elapsed_s` (data, model, compilation,
  validation included; not the process start-up);
- **start to done**: what the user waits: the CLI process's wall time, and from the click on
  Start until the page shows "Completed" (worker start-up and the live view's last poll
  included).

Every run is repeated (`--repeats`, the order of CLI and dashboard alternating between
repetitions) and the best of each figure is kept; the ratio of each back-to-back pair and
their median are printed too. While a dashboard run trains, the CPU time
of the server, of the browser (Chromium and Playwright's driver) and of the worker is read
from /proc: on a machine with few cores they compete with the worker, which is what limits
the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"  # as tests/e2e/conftest.py launches it, with its flags
VIEWPORT = {"width": 1400, "height": 1000}
BACKENDS = ("jax", "tensorflow")
# Plain SGD at 0.01, as tests/e2e trains online (the page's defaults, 0.05 with momentum 0.9,
# kill most ReLUs of a one-sample step within a few epochs); everything else at the defaults
# the page and the CLI share.
LEARNING_RATE = 0.01
CLI_FLAGS = ["--dataset", "digits", "--batch-size", "online"]
CLI_FLAGS += ["--learning-rate", str(LEARNING_RATE), "--momentum", "0"]
RUN_TIMEOUT = 240.0  # seconds for one run, start-up included
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class OutOfTimeError(Exception):
    """The benchmark's time limit was reached."""


@dataclass
class Measurement:
    backend: str
    mode: str  # "cli" or "dashboard"
    repeat: int
    steps: int
    train_steps_per_s: float
    whole_steps_per_s: float
    start_to_done_s: float
    config: dict
    engine: str
    cpu: dict[str, float] = field(default_factory=dict)  # CPU-seconds from start to end
    cpu_window_s: float = 0.0  # the seconds `cpu` was measured over
    train_span_s: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- measuring a stored run ---------------------------------------------------------------


def measure_run(runs_dir: Path, run_id: str, backend: str, mode: str, repeat: int, wall: float):
    from keras_sgdplus.lab.runs import RunStore

    store = RunStore(runs_dir)
    run = store.load(run_id)
    meta, batches = run.meta, run.batches
    summary = meta.get("summary") or {}
    if meta["status"] != "completed" or summary.get("steps") != summary.get("total_steps"):
        raise RuntimeError(
            f"the {mode} run on {backend} ended {meta['status']!r} after "
            f"{summary.get('steps')} of {summary.get('total_steps')} steps: {meta.get('error')}"
        )
    if meta["environment"].get("backend") != backend:
        raise RuntimeError(f"the {mode} run trained on {meta['environment'].get('backend')}")
    timed = batches[batches.epoch >= 1]
    if len(timed) < 2:
        raise RuntimeError("too few epochs to time: give at least 2")
    span = float(timed.wall_time.iloc[-1] - timed.wall_time.iloc[0])
    config = {key: value for key, value in meta["config"].items() if key != "name"}
    result = Measurement(
        backend=backend,
        mode=mode,
        repeat=repeat,
        steps=int(summary["steps"]),
        train_steps_per_s=(len(timed) - 1) / span,
        whole_steps_per_s=summary["steps"] / float(summary["elapsed_s"]),
        start_to_done_s=wall,
        config=config,
        engine=meta["environment"].get("engine", "?"),
        train_span_s=span,
    )
    store.delete(run_id)  # a run of a million online steps is ~150 MB of batches.csv
    return result


def only_run(runs_dir: Path) -> str:
    from keras_sgdplus.lab.runs import RunStore

    runs = RunStore(runs_dir).list_runs()
    if len(runs) != 1:
        raise RuntimeError(f"expected one run in {runs_dir}, found {len(runs)}")
    return runs[0].run_id


# --- CPU time from /proc --------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, float]]:
    """{pid: (parent pid, CPU seconds of the process itself)} for every process readable."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return table


def command_name(pid: int) -> str:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as f:
        return f.read().strip()
    return ""


def descendants(table: dict[int, tuple[int, float]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class CpuWatch:
    """CPU seconds of the server, its worker(s) and the browser side (this process's other
    descendants: Playwright's driver and Chromium), sampled while a dashboard run trains.
    A process's last sample counts (one that ends between samples loses its last moments)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = self._groups(process_table())
        self.started = time.perf_counter()
        self.window = 0.0
        self.last: dict[str, dict[int, float]] = {name: {} for name in self.start}

    def _groups(self, table) -> dict[str, dict[int, float]]:
        workers = descendants(table, self.server_pid)
        browser = descendants(table, os.getpid()) - workers - {self.server_pid}
        chromium = {pid for pid in browser if "chrom" in command_name(pid)}
        return {
            "server": {p: table[p][1] for p in [self.server_pid] if p in table},
            "worker": {p: table[p][1] for p in workers},
            "chromium": {p: table[p][1] for p in chromium},
            # Playwright's driver and this process: what a user's browser does not run
            "driver": {p: table[p][1] for p in (browser - chromium) | {os.getpid()}},
        }

    def sample(self) -> None:
        for name, values in self._groups(process_table()).items():
            self.last[name].update(values)
        self.window = time.perf_counter() - self.started

    def used(self) -> dict[str, float]:
        return {
            name: sum(seconds - self.start[name].get(pid, 0.0) for pid, seconds in last.items())
            for name, last in self.last.items()
        }


# --- the two ways to start a run ------------------------------------------------------------


def cli_run(runs_dir: Path, backend: str, epochs: int, repeat: int, deadline: float, log: Path):
    script = Path(sys.executable).parent / "sgdplus"
    if not script.exists():
        raise SystemExit(f"no `sgdplus` console script next to {sys.executable}: pip install -e .")
    runs_dir.mkdir(parents=True, exist_ok=True)
    command = [str(script), "train", *CLI_FLAGS, "--epochs", str(epochs), "--backend", backend]
    environment = {**os.environ, "SGDPLUS_RUNS_DIR": str(runs_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=runs_dir,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=max(1.0, min(RUN_TIMEOUT, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            raise OutOfTimeError(f"`sgdplus train` on {backend} did not end in time") from None
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` exited with {process.returncode}:\n" + log.read_text()[-3000:]
        )
    result = measure_run(runs_dir, only_run(runs_dir), backend, "cli", repeat, wall)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result.cpu = {"worker": cpu}  # the whole process, start-up included
    return result


@dataclass
class Dashboard:
    url: str
    runs_dir: Path
    server_pid: int
    browser: object  # playwright.sync_api.Browser


def dashboard_run(board: Dashboard, backend: str, epochs: int, repeat: int, deadline: float):
    from playwright.sync_api import expect

    from keras_sgdplus.lab.runs import LIVE_STATUSES, RunStore, RunStoreError
    from tests.e2e.streamlit_ui import (
        assert_no_exception,
        button,
        choose,
        click_radio,
        open_page,
        type_number,
    )

    store = RunStore(board.runs_dir)
    if store.list_runs():
        raise RuntimeError(f"{board.runs_dir} should be empty before a dashboard run")
    context = board.browser.new_context(viewport=VIEWPORT)  # a fresh session per run
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_page(page, board.url)
        choose(page, "Dataset", "digits")
        click_radio(page, "Batch size", "Online (1)")
        click_radio(page, "Update", "Plain SGD")
        type_number(page, "Learning rate", LEARNING_RATE)
        type_number(page, "Epochs", epochs)
        choose(page, "Backend", backend)
        assert_no_exception(page)

        progress = page.locator('[data-testid="stProgress"]')
        watch = CpuWatch(board.server_pid)
        seen: list[tuple[float, str]] = []  # what the progress bar said, when it changed
        started = time.perf_counter()
        button(page, "Start training").click()
        run_id = None
        polls = 0
        while True:  # the run's meta.json tells when it has ended; the page stays open
            now = time.monotonic()
            if now > deadline or time.perf_counter() - started > RUN_TIMEOUT:
                raise OutOfTimeError(f"the dashboard run on {backend} did not end in time")
            watch.sample()
            if run_id is None:
                runs = store.list_runs()
                run_id = runs[0].run_id if runs else None
            elif store.load_meta(run_id)["status"] not in LIVE_STATUSES or not store.is_active(
                run_id
            ):
                watch.sample()
                break
            polls += 1
            # the bar, read as often as it changes (live.PROGRESS_REFRESH_SECONDS): each read
            # makes Chromium work, which a user's eyes do not
            with contextlib.suppress(Exception):  # the bar comes and goes with the fragment
                if polls % 4 == 0 and progress.count():
                    text = progress.inner_text(timeout=1_000).strip()
                    if not seen or seen[-1][1] != text:
                        seen.append((time.perf_counter() - started, text))
            time.sleep(0.5)
        ended = time.time()
        try:
            expect(page.get_by_text(re.compile(r"^Completed"))).to_be_visible(timeout=60_000)
        except AssertionError:
            meta = store.load_meta(run_id)
            raise RuntimeError(
                f"the page did not show the outcome of the run ({meta['status']}: "
                f"{meta.get('error')})"
            ) from None
        wall = time.perf_counter() - started
        page_lag = time.time() - ended
        assert_no_exception(page)
    finally:
        context.close()
    try:
        result = measure_run(board.runs_dir, run_id, backend, "dashboard", repeat, wall)
    except RunStoreError as error:
        raise RuntimeError(f"the dashboard run cannot be read: {error}") from None
    result.cpu = watch.used()
    result.cpu_window_s = watch.window
    updates = [text for _, text in seen if "step" in text]
    result.notes.append(
        f"progress bar changed {len(updates)} times while training"
        + (f" (last: {updates[-1]!r})" if updates else "")
        + f"; outcome shown {page_lag:.1f} s after the run's end"
    )
    return result


@contextlib.contextmanager
def dashboard(root: Path, log: Path) -> Iterator[Dashboard]:
    """A server on a free loopback port with its own runs folder, and a headless Chromium;
    both ended on the way out, whatever happened (the server with its workers)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_FLAGS
    from tests.serving import free_port, served

    runs_dir = root / "dashboard_runs"
    runs_dir.mkdir()
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py"]
    command += ["--server.address", "127.0.0.1", "--server.port", str(port)]
    command += ["--server.headless", "true"]
    environment = {"SGDPLUS_RUNS_DIR": str(runs_dir)}
    with (
        served(command, port=port, cwd=REPO, log=log, env=environment) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Dashboard(f"http://127.0.0.1:{port}", runs_dir, server.pid, browser)
        finally:
            browser.close()


# --- the benchmark --------------------------------------------------------------------------


def check_config_equal(results: list[Measurement]) -> None:
    for backend in {r.backend for r in results}:
        mine = [r for r in results if r.backend == backend]
        for other in mine[1:]:
            if other.config != mine[0].config or other.engine != mine[0].engine:
                differ = sorted(
                    key
                    for key in set(other.config) | set(mine[0].config)
                    if other.config.get(key) != mine[0].config.get(key)
                )
                raise RuntimeError(
                    f"the {mine[0].mode} and {other.mode} runs on {backend} differ: "
                    f"{differ or 'engine'}: {mine[0].engine} vs {other.engine}"
                )


def benchmark(args: argparse.Namespace, root: Path) -> list[Measurement]:
    deadline = time.monotonic() + args.time_limit
    results: list[Measurement] = []
    with dashboard(root, root / "streamlit.log") as board:
        print(f"dashboard at {board.url}, runs in {root}", file=sys.stderr, flush=True)
        for repeat in range(args.repeats):
            for index, backend in enumerate(args.backends):
                order = ("cli", "dashboard") if (repeat + index) % 2 == 0 else ("dashboard", "cli")
                for mode in order:
                    if time.monotonic() > deadline:
                        raise OutOfTimeError(
                            f"the time limit of {args.time_limit:.0f} s was reached"
                        )
                    if mode == "cli":
                        log = root / f"cli-{backend}-{repeat}.log"
                        runs_dir = root / f"cli_runs_{backend}_{repeat}"
                        result = cli_run(runs_dir, backend, args.epochs, repeat, deadline, log)
                    else:
                        result = dashboard_run(board, backend, args.epochs, repeat, deadline)
                    results.append(result)
                    check_config_equal(results)
                    print(
                        f"{backend:10} {mode:9} #{repeat}: {result.steps:,} steps, "
                        f"training {result.train_steps_per_s:,.0f}/s over "
                        f"{result.train_span_s:.1f} s, whole run "
                        f"{result.whole_steps_per_s:,.0f}/s, start to done "
                        f"{result.start_to_done_s:.1f} s, CPU-s "
                        + ", ".join(f"{k} {v:.1f}" for k, v in result.cpu.items())
                        + "".join(f"; {note}" for note in result.notes),
                        file=sys.stderr,
                        flush=True,
                    )
    return results


def report(results: list[Measurement], args: argparse.Namespace, load: str) -> None:
    from importlib.metadata import version

    def best(backend: str, mode: str, key: str) -> float:
        values = [getattr(r, key) for r in results if (r.backend, r.mode) == (backend, mode)]
        return min(values) if key == "start_to_done_s" else max(values)

    print(
        f"# keras {version('keras')}, digits online (batch 1), {os.cpu_count()} CPU cores, "
        f"best of {args.repeats}, steps per second"
    )
    print(
        "| backend | epochs | steps | training: CLI | dashboard | ratio |"
        " whole run: CLI | dashboard | ratio | start to done: CLI | dashboard |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends:
        steps = next(r.steps for r in results if r.backend == backend)
        cells = [backend, str(args.epochs), f"{steps:,}"]
        for key in ("train_steps_per_s", "whole_steps_per_s"):
            cli, board = best(backend, "cli", key), best(backend, "dashboard", key)
            cells += [f"{cli:,.0f}", f"{board:,.0f}", f"{board / cli:.2f}x"]
        cells += [
            f"{best(backend, mode, 'start_to_done_s'):.1f} s" for mode in ("cli", "dashboard")
        ]
        print("| " + " | ".join(cells) + " |")
    print()
    for backend in args.backends:
        pairs = [
            pair_ratio(results, backend, repeat)
            for repeat in range(args.repeats)
            if pair_ratio(results, backend, repeat) is not None
        ]
        print(
            f"{backend}: training dashboard/CLI of each back-to-back pair "
            + ", ".join(f"{ratio:.2f}x" for ratio in pairs)
            + f"; median {statistics.median(pairs):.2f}x"
        )
    print()
    shares = []
    for backend in args.backends:
        runs = [r for r in results if (r.backend, r.mode) == (backend, "dashboard")]
        span = sum(r.cpu_window_s for r in runs)
        server, chromium, driver, worker = (
            sum(r.cpu.get(name, 0.0) for r in runs) / span
            for name in ("server", "chromium", "driver", "worker")
        )
        cli_cpu = min(r.cpu["worker"] for r in results if (r.backend, r.mode) == (backend, "cli"))
        board_cpu = min(r.cpu["worker"] for r in runs)
        shares.append(
            f"{backend}: server {server:.0%}, Chromium {chromium:.0%}, the benchmark's "
            f"driver and Playwright {driver:.0%}, worker {worker:.0%} of "
            f"a core from Start to the run's end; the worker's own CPU time {board_cpu:.1f} s "
            f"against the CLI's {cli_cpu:.1f} s"
        )
    print(
        f"What limits the figures: {os.cpu_count()} CPU cores shared with the worker by the "
        "Streamlit server (the live view's progress every 2 s, its charts every 2-8 s, "
        "reading only the new lines) and by Chromium drawing them, while a dashboard run trains ("
        + "; ".join(shares)
        + f"); the machine is shared with other work (load average {load}): the "
        f"repetitions' training steps/s differed by up to {spread(results):.0%}."
    )


def pair_ratio(results: list[Measurement], backend: str, repeat: int) -> float | None:
    """Training steps/s of the dashboard run over the CLI run of one repetition: the two ran
    back to back, so the machine's other load changed least between them."""
    found = {
        r.mode: r.train_steps_per_s for r in results if (r.backend, r.repeat) == (backend, repeat)
    }
    return found["dashboard"] / found["cli"] if len(found) == 2 else None


def spread(results: list[Measurement]) -> float:
    """The largest relative difference between repetitions of the same run."""
    widest = 0.0
    for key in {(r.backend, r.mode) for r in results}:
        values = [r.train_steps_per_s for r in results if (r.backend, r.mode) == key]
        widest = max(widest, max(values) / min(values) - 1)
    return widest


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=420.0, help="seconds, all included")
    parser.add_argument("--quick", action="store_true", help="a few epochs, one repetition")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    if unknown := set(args.backends) - set(BACKENDS):
        parser.error(f"unknown backend(s) {sorted(unknown)}: choose from {BACKENDS}")
    if args.quick:
        args.epochs, args.repeats = 20, 1
    if args.epochs < 2 or args.repeats < 1:
        parser.error("give at least 2 epochs (epoch 0 is not timed) and 1 repetition")
    if not os.access(CHROMIUM, os.X_OK):
        raise SystemExit(
            f"Chromium is missing: {CHROMIUM} is not an executable. Install Debian's package "
            "(scripts/install_chromium.sh); Playwright cannot download its own browsers here."
        )
    sys.path.insert(0, str(REPO))  # tests.serving, tests.e2e.streamlit_ui

    def ended_by_signal(number, frame):
        raise SystemExit(128 + number)  # the with-blocks end the server and the browser

    signal.signal(signal.SIGTERM, ended_by_signal)
    signal.signal(signal.SIGHUP, ended_by_signal)
    load = load_average()
    print(f"{dt.datetime.now():%H:%M:%S} load average {load}", file=sys.stderr, flush=True)
    root = Path(tempfile.mkdtemp(prefix="sgdplus-dashboard-vs-cli-"))
    started = time.monotonic()
    try:
        results = benchmark(args, root)
    except OutOfTimeError as error:
        raise SystemExit(f"stopped: {error} (raise --time-limit, or fewer epochs)") from None
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"measured in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    report(results, args, f"{load} before, {load_average()} after")


if __name__ == "__main__":
    main()
