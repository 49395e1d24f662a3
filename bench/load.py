"""The load generators: wrk against an HTTP target, pgbench running the same SQL against the
database. Both report requests (transactions) per second and p50/p99 latency in microseconds."""
import glob
import json
import os
import re
import subprocess
import tempfile
import time

from service.db import embedded

from .paths import BENCH, OUT
from .scenarios import SCENARIOS

WRK_SCRIPT = BENCH / "wrk" / "scenario.lua"


def wrk(base_url, scenario, files, duration=10, connections=16, threads=2):
    """One bounded wrk run of `scenario` (a name of bench/scenarios.py) against `base_url`
    (loopback only)."""
    if not base_url.startswith("http://127.0.0.1:") or duration > 60:
        raise ValueError("the benchmark only ever loads loopback")
    threads = min(threads, connections)
    spec = SCENARIOS[scenario]
    env = {**os.environ, "BENCH_WHO": spec.who, "BENCH_METHOD": spec.method,
           "BENCH_PATH": spec.url("{task}", files.get("cursor", "")), "BENCH_BODY": spec.body or "",
           "BENCH_TOKENS": str(files["tokens"]), "BENCH_HEAVY": str(files["heavy"]),
           "BENCH_POOL": str(files.get("pool", "")), "BENCH_THREADS": str(threads),
           "BENCH_CONNECTIONS_PER_THREAD": str(max(1, connections // threads))}
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
         "-s", str(WRK_SCRIPT), base_url], env=env, capture_output=True, text=True,
        timeout=duration + 30, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_RESULT "))
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    result["non_2xx"] = result["errors"]["status"]
    return result


def warm(base_url, files, connections, timeout):
    """The warm-up scenario: one connection per wrk thread, each sending every user once; ends
    as soon as every thread is through (or after `timeout` seconds)."""
    with tempfile.TemporaryDirectory() as markers:
        env = {**os.environ, "BENCH_WHO": "warmup", "BENCH_TOKENS": str(files["tokens"]),
               "BENCH_HEAVY": str(files["heavy"]), "BENCH_CONNECTIONS_PER_THREAD": "1",
               "BENCH_WARM_DIR": markers}
        with subprocess.Popen(["wrk", f"-t{connections}", f"-c{connections}", f"-d{timeout}s",
                               "--timeout", "5s", "-s", str(WRK_SCRIPT), base_url], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as run:
            deadline = time.monotonic() + timeout + 10
            while run.poll() is None and time.monotonic() < deadline:
                if len(os.listdir(markers)) >= connections:
                    run.terminate()
                    break
                time.sleep(0.1)
            run.wait(timeout=10)
        return len(os.listdir(markers)) >= connections


def pgbench_script(template, user_prefix):
    """A pgbench script (bench/statements.py) with the benchmark's user naming filled in."""
    return template.replace("@USER_PREFIX@", user_prefix)


def pgbench(url, scenario, script_text, duration=10, clients=8, threads=2, defines=None):
    """One bounded pgbench run of a custom script; latency percentiles from its per-transaction
    log. Simple query protocol, as psycopg2 (the service's driver) sends statements."""
    work = OUT / "pgbench"
    work.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(work / "tx*")):
        os.unlink(stale)
    script = work / f"{scenario}.sql"
    script.write_text(script_text)
    command = [str(embedded.bin_dir() / "pgbench"), "-n", "-M", "simple", "-c", str(clients),
               "-j", str(threads), "-T", str(duration), "-f", str(script), "-l",
               "--log-prefix", str(work / "tx")]
    for name, value in (defines or {}).items():
        command += ["-D", f"{name}={value}"]
    out = subprocess.run(command + [url], capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {scenario} failed: {out.stderr.strip()[-500:]}")
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    latencies = []
    for path in glob.glob(str(work / "tx*")):
        with open(path) as log:
            latencies.extend(int(line.split()[2]) for line in log if line.strip())
        os.unlink(path)
    latencies.sort()
    return {"requests": len(latencies), "rps": tps, "p50_us": percentile(latencies, 50),
            "p90_us": percentile(latencies, 90), "p99_us": percentile(latencies, 99),
            "max_us": latencies[-1] if latencies else 0,
            "non_2xx": int(failed.group(1)) if failed else 0}


def percentile(ordered, pct):
    """The nearest-rank percentile of an ascending list."""
    if not ordered:
        return 0
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]
