"""Benchmark of the web app under load (issue 20): many users upload a night and run it while others browse.

Usage::

    .venv/bin/python benchmarks/bench_web.py [--quick] [--users 20] [--workers 2]

A real ``nightpipe serve`` process (uvicorn, SQLite, ``--workers`` local job workers) on a free
port. Each simulated user logs in through the JSON API, uploads the same small simulated night
(a ZIP of 16 lights of 256 px with its calibration frames), starts a "night" job and polls it to
the end, while browsing threads fetch the pages that do not compute (dashboard, jobs, files,
account, a job's page) and time each answer. Printed: jobs completed and failed (want 0
failures), page latency p50/p95 while jobs run (goal: p95 under 300 ms), the floor (``/healthz``,
the framework's own round trip, measured in the same run), and the web process's peak memory.
No peer publishes such figures (STDWeb and RAPAS give none): the goal stands in for one.
Results go to ``bench-results/web.json``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import requests

from harness import bench_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
GOAL_P95_MS = 300.0
PASSWORD = "benchmark password"
PAGES = ("/", "/jobs", "/files", "/account")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def small_night(folder: Path) -> tuple[Path, str]:
    """The ZIP of a small simulated night, and its profile's TOML (target, site, catalogue)."""
    from nightpipe.pipeline.demo import prepare_demo
    from nightpipe.web.demo_profile import profile_from_file

    _, raw = prepare_demo(folder / "demo", size=256, n_lights=16)
    archive = folder / "night.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(raw.rglob("*.fits")):
            handle.write(path, path.relative_to(raw))
    import tomli_w

    return archive, tomli_w.dumps(profile_from_file(folder / "demo" / "nightpipe.toml"))


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    """``nightpipe serve`` in its own process group, on ``data_dir``."""

    def __init__(self, data_dir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        sets = [
            f"web.data_dir={data_dir}",
            f"web.port={self.port}",
            f"web.local_workers={workers}",
            "web.cookie_secure=false",
            "web.login_attempts=1000",
            "catalog.offline=true",
            f"paths.cache={data_dir / 'cache'}",
        ]
        self.base = [sys.executable, "-m", "nightpipe.cli.app", "-q"]
        for s in sets:
            self.base += ["--set", s]
        self.proc: subprocess.Popen[bytes] | None = None

    def add_users(self, names: list[str]) -> None:
        env = {**os.environ, "NIGHTPIPE_PASSWORD": PASSWORD}
        for name in names:
            subprocess.run([*self.base, "user", "add", name], check=True, env=env, capture_output=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([*self.base, "serve"], start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise RuntimeError("nightpipe serve did not answer within 60 s")

    def stop(self) -> float:
        assert self.proc is not None
        peak = rss_peak_mb(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(60)
        return peak


def logged_in(url: str, name: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    answer = session.post(url + "/api/login", json={"name": name, "password": PASSWORD}, timeout=30)
    answer.raise_for_status()
    return session, str(answer.json()["csrf_token"])


def one_user(url: str, name: str, archive: Path, profile_toml: str, out: dict[str, Any]) -> None:
    """Log in, save the profile, upload the night, run it, wait for the end."""
    try:
        session, csrf = logged_in(url, name)
        headers = {"X-CSRF-Token": csrf}
        session.post(
            url + "/account/profiles",
            data={"name": "night", "extra": profile_toml, "csrf_token": csrf},
            timeout=30,
        ).raise_for_status()
        profile_id = session.get(url + "/api/profiles", timeout=30).json()[0]["id"]
        with archive.open("rb") as handle:
            answer = session.post(
                url + "/api/files",
                files={"files": (archive.name, handle, "application/zip")},
                headers=headers,
                timeout=300,
            )
        answer.raise_for_status()
        ids = [f["id"] for f in answer.json()["accepted"]]
        job = session.post(
            url + "/api/jobs",
            json={"kind": "night", "upload_ids": ids, "profile_id": profile_id},
            headers=headers,
            timeout=30,
        ).json()
        started = time.monotonic()
        while True:
            state = session.get(f"{url}/api/jobs/{job['id']}", timeout=30).json()
            if state["status"] in ("done", "partial", "failed", "cancelled"):
                break
            time.sleep(1.0)
        out[name] = {
            "status": state["status"],
            "error": state["error"],
            "job_id": job["id"],
            "wall_s": time.monotonic() - started,
        }
    except Exception as exc:
        out[name] = {"status": "error", "error": f"{exc.__class__.__name__}: {exc}"}


def browse(url: str, name: str, stop: threading.Event, times: list[float], floor: list[float]) -> None:
    session, _ = logged_in(url, name)
    while not stop.is_set():
        for page in PAGES:
            t0 = time.perf_counter()
            session.get(url + page, timeout=30).raise_for_status()
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        session.get(url + "/healthz", timeout=30)
        floor.append(time.perf_counter() - t0)
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> int:
    parser = bench_parser(__doc__, "6 users")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--browsers", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    users = 6 if args.quick else args.users
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        folder = Path(tmp)
        archive, profile_toml = small_night(folder)
        server = Server(folder / "web", args.workers)
        runners = [f"user{i:02d}" for i in range(users)]
        lookers = [f"browser{i:02d}" for i in range(args.browsers)]
        server.add_users(runners + lookers)
        server.start()
        load0 = os.getloadavg()[0]
        outcomes: dict[str, Any] = {}
        times: list[float] = []
        floor: list[float] = []
        stop = threading.Event()
        t0 = time.monotonic()
        threads = [
            threading.Thread(target=one_user, args=(server.url, n, archive, profile_toml, outcomes))
            for n in runners
        ]
        lookers_threads = [
            threading.Thread(target=browse, args=(server.url, n, stop, times, floor)) for n in lookers
        ]
        for thread in threads + lookers_threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - t0
        stop.set()
        for thread in lookers_threads:
            thread.join()
        peak = server.stop()
    done = sum(1 for o in outcomes.values() if o["status"] in ("done", "partial"))
    failed = [
        f"{n}: {o['status']} {o.get('error')}"
        for n, o in outcomes.items()
        if o["status"] not in ("done", "partial")
    ]
    p50, p95 = percentile(times, 50), percentile(times, 95)
    result = {
        "users": users,
        "browsers": args.browsers,
        "workers": args.workers,
        "jobs_completed": done,
        "failures": len(failed),
        "wall_s": round(wall, 1),
        "pages": len(times),
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "floor_p50_ms": round(percentile(floor, 50), 1),
        "goal_p95_ms": GOAL_P95_MS,
        "web_rss_peak_mb": round(peak, 1),
        "load_at_start": load0,
    }
    print(
        f"web app: {users} users each upload and run a night, {args.browsers} browse meanwhile "
        f"({args.workers} workers, load {load0:.1f} at start)"
    )
    print(f"  jobs completed      {done} of {users} in {wall:.0f} s, failures {len(failed)} (want 0)")
    for line in failed:
        print(f"    {line}")
    print(
        f"  page latency        p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(times)} pages "
        f"(goal p95 < {GOAL_P95_MS:.0f} ms: ratio {p95 / GOAL_P95_MS:.2f})"
    )
    print(f"  floor (/healthz)    p50 {result['floor_p50_ms']:.0f} ms")
    print(f"  web process memory  peak {peak:.0f} MB")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0 if not failed and p95 < GOAL_P95_MS else 1


if __name__ == "__main__":
    sys.exit(main())
