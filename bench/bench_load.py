"""Load test: the app under gunicorn, driven by wrk from a second process on 127.0.0.1.

Bounded in count and time (each step runs --duration seconds, then stops); it
reports requests/s, latency percentiles and errors per concurrency level, and the
private memory (USS) of each gunicorn worker afterwards. Needs an index: point
--data-dir at a folder indexed with `indexer` (tantivy) or set SEARCH_ENGINE etc.

    python bench/bench_load.py --data-dir data/demo --duration 15 --connections 2 4 8 16
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/bench_load.py` from anywhere
    sys.path.insert(0, str(ROOT))

from devtools.servers import free_port  # noqa: E402

QUERIES = ["经济", "天津", "人工智能", "职业教育", "长江", "5G", "新冠疫情", "碳中和", "教育", "产教融合", "国际", "科技创新"]


def paths(tags: list[str]) -> list[str]:
    out = []
    for i, q in enumerate(QUERIES):
        params = [("q", q)]
        if i % 3 == 1 and tags:
            params.append(("tag", tags[i % len(tags)]))
        if i % 4 == 2:
            params.append(("page", "2"))
        out.append("/?" + urllib.parse.urlencode(params))
        out.append("/api/search?" + urllib.parse.urlencode(params))
    out.append("/")
    return out


LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def run_wrk(port: int, lua: Path, connections: int, duration: int) -> dict:
    cmd = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res: dict = {"connections": connections, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            res[f"p{pct}_ms"] = round(value, 2)
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(map(int, m.groups())) if m else 0
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, type=Path, help="SEARCH_DATA_DIR of an indexed corpus")
    ap.add_argument("--index", default="news")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--duration", type=int, default=15, help="seconds per concurrency level")
    ap.add_argument("--connections", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--engine", default=os.environ.get("SEARCH_ENGINE", "tantivy"), help="SEARCH_ENGINE for the app")
    ap.add_argument(
        "--facet-cache", type=int, help="SEARCH_FACET_CACHE for the app (0: every request counts its facets; default: the app's)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    port = free_port()
    env = dict(os.environ, SEARCH_DATA_DIR=str(args.data_dir), SEARCH_INDEX=args.index, SEARCH_ENGINE=args.engine)
    if args.facet_cache is not None:
        env["SEARCH_FACET_CACHE"] = str(args.facet_cache)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            "searchapp:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            print("the app did not become healthy", file=sys.stderr)
            return 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search", timeout=10) as r:
            data = json.load(r)
        docs = data["total"]
        tags = [v["value"] for v in data["facets"]["tag"][:6]]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(LUA % ", ".join(json.dumps(p) for p in paths(tags)))
            lua = Path(fh.name)
        run_wrk(port, lua, 2, 3)  # warm up every worker
        results = [run_wrk(port, lua, c, args.duration) for c in args.connections]
        workers = psutil.Process(server.pid).children()
        uss = [round(w.memory_full_info().uss / 2**20, 1) for w in workers]
    finally:
        server.terminate()
        server.wait(10)
    cache = "default" if args.facet_cache is None else args.facet_cache
    print(
        f"\n{docs} articles on {args.engine}, facet cache {cache}, gunicorn {args.workers} sync workers, "
        f"wrk 1 thread, {args.duration} s per level"
    )
    print("| connections | requests/s | p50 ms | p90 ms | p99 ms | requests | errors |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['connections']} | {r['rps']:.0f} | {r.get('p50_ms', '?')} | {r.get('p90_ms', '?')} | {r.get('p99_ms', '?')} "
            f"| {r['requests']} | {r['non_2xx'] + r['socket_errors']} |"
        )
    print(f"worker USS (MB): {uss}")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    summary = {"docs": docs, "engine": args.engine, "facet_cache": cache, "results": results, "uss_mb": uss}
    (args.out / f"load-{stamp}.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
