#!/usr/bin/env python3
"""Run one Nexmark query on Apache Flink (PyFlink Table API, local mini-cluster) over the
JSON-lines input of docs/nexmark.md, and report throughput, row count and checksum.

    python bench/flink/nexmark.py --query q5 --input /tmp/nexmark.json --workers 4 --json out.json

Two jobs per query, in one JVM (see bench/README.md for the reasoning):

1. throughput run: `INSERT INTO` a 'blackhole' sink. Throughput = input events / the job's
   net runtime (JobExecutionResult.getNetRuntime: from the job's INITIALIZING status to
   FINISHED). Excluded: JVM (py4j gateway) start, SQL parsing/planning/code generation of
   the job graph, mini-cluster start and job submission -- all reported separately.
2. checksum run: the same query with every result row rendered in SQL as
   `CONCAT_WS('|', CAST(col AS STRING), ...)`, written with the filesystem sink in 'raw'
   format (one row per line) and hashed afterwards (FNV-1a-64, wrapping sum). Updating
   queries (q4) cannot go to a file sink: their rendered rows are collected with their
   change kinds and the changelog is applied, giving the final table.

Both runs are streaming mode (the benchmark's nature): event-time watermarks, windows fire
on the watermark; at the end of the bounded input the watermark reaches +inf and every
window fires, so the final answer is the one docs/nexmark.md defines.
"""
import argparse
import collections
import glob
import json
import os
import shutil
import string
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checksum as cks  # noqa: E402

QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q11"]
UPDATING = {"q4"}  # results with updates/retractions (the rest are append-only)


def count_lines(path):
    """Input events: non-empty lines of the file (or of every file of a directory)."""
    files = [path] if os.path.isfile(path) else sorted(
        p for p in glob.glob(os.path.join(path, "*")) if os.path.isfile(p))
    n = 0
    for p in files:
        with open(p, "rb") as f:
            for line in f:
                if line.strip():
                    n += 1
    return n


def shard_input(path, shards, log):
    """Round-robin the lines of `path` into `shards` files (a directory next to it, reused while
    newer than the input), so that Flink's file source -- one split per local file -- reads
    with `shards` parallel readers. Round-robin keeps every shard in the file's time order
    and spanning the whole time range (like a partitioned topic), so per-reader watermarks
    advance together."""
    out_dir = f"{path}.flink-shards-{shards}"
    stamp = os.path.join(out_dir, "_COMPLETE")
    if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(path):
        return out_dir
    log(f"sharding {path} round-robin into {shards} files in {out_dir} (not timed)")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    outs = [open(os.path.join(out_dir, f"part-{i:03d}.json"), "wb", buffering=1 << 20)
            for i in range(shards)]
    i = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            if not line.endswith(b"\n"):
                line += b"\n"
            outs[i % shards].write(line)
            i += 1
    for o in outs:
        o.close()
    # '_'-prefixed files are hidden from Flink's file enumeration
    with open(stamp, "w") as s:
        s.write(f"{i}\n")
    return out_dir


def read_sql(name, params):
    with open(os.path.join(HERE, "sql", name)) as f:
        return string.Template(f.read()).substitute(params)


def split_statements(text):
    """Split a SQL script on ';' at the end of a line (the DDL file has no ';' in strings)."""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    stmts, cur = [], []
    for ln in lines:
        cur.append(ln)
        if ln.rstrip().endswith(";"):
            stmts.append("\n".join(cur).rstrip().rstrip(";"))
            cur = []
    if "\n".join(cur).strip():
        stmts.append("\n".join(cur))
    return stmts


def descendants_peak_rss(pid):
    """Max VmHWM (bytes) over the descendants of `pid` (the gateway JVM is one of them)."""
    children = collections.defaultdict(list)
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children[int(fields[1])].append(int(st.split("/")[2]))
        except (OSError, IndexError, ValueError):
            pass
    best, stack = None, list(children[pid])
    while stack:
        p = stack.pop()
        stack.extend(children[p])
        try:
            with open(f"/proc/{p}/status") as f:
                for ln in f:
                    if ln.startswith("VmHWM:"):
                        v = int(ln.split()[1]) * 1024
                        best = v if best is None else max(best, v)
        except OSError:
            pass
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--query", required=True, choices=QUERIES)
    ap.add_argument("--input", required=True, help="the JSON-lines events file")
    ap.add_argument("--workers", type=int, default=1, help="Flink parallelism (= Millstream's --workers)")
    ap.add_argument("--json", help="write the report here (JSON)")
    ap.add_argument("--mode", choices=["both", "throughput", "checksum"], default="both",
                    help="which run(s): the blackhole throughput run, the checksum run, or both (default)")
    ap.add_argument("--shards", type=int, default=None,
                    help="split the input round-robin into this many files first "
                         "(default: --workers; 1 = read the file as it is, one reader)")
    ap.add_argument("--watermark-delay", default="4",
                    help="bounded out-of-orderness of the watermark, seconds (default 4, as Flink's "
                         "Nexmark); events later than this behind the watermark are dropped by "
                         "windowed queries and would show up as a checksum mismatch")
    ap.add_argument("--no-mini-batch", action="store_true",
                    help="disable mini-batch for the non-window aggregations (on by default, as in "
                         "Flink's Nexmark configuration; it does not change final answers)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="throughput runs in the same JVM (later ones run warm); the median is "
                         "reported (default 1)")
    ap.add_argument("--no-fixed-cost", action="store_true",
                    help="skip the extra empty-input run that measures the per-job fixed cost")
    ap.add_argument("--keep-output", help="copy the checksum run's rendered rows to this file")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()

    def log(msg):
        if not args.quiet:
            print(f"[flink {args.query}] {msg}", file=sys.stderr, flush=True)

    inp = os.path.abspath(args.input)
    shards = args.shards if args.shards is not None else args.workers
    events = count_lines(inp)
    src = shard_input(inp, shards, log) if shards > 1 and os.path.isfile(inp) else inp
    params = {"INPUT": src, "WATERMARK_DELAY": args.watermark_delay}

    t_jvm0 = time.perf_counter()
    from pyflink.table import EnvironmentSettings, TableDescriptor, TableEnvironment
    from pyflink.common import RowKind

    def make_env(source_path):
        """A streaming TableEnvironment with the Nexmark source over `source_path` and its
        person/auction/bid views; returns (t_env, the query's SQL)."""
        env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
        conf = env.get_config()
        conf.set("parallelism.default", str(args.workers))
        conf.set("table.exec.resource.default-parallelism", str(args.workers))
        conf.set("table.local-time-zone", "UTC")
        conf.set("pipeline.object-reuse", "true")
        if not args.no_mini_batch:
            # the mini-batch settings usually used for Flink's Nexmark runs; they only batch
            # updates of the non-window aggregations (q4 here), final answers are unchanged
            conf.set("table.exec.mini-batch.enabled", "true")
            conf.set("table.exec.mini-batch.allow-latency", "2 s")
            conf.set("table.exec.mini-batch.size", "50000")
        p = dict(params, INPUT=source_path)
        for stmt in split_statements(read_sql("ddl.sql", p)):
            env.execute_sql(stmt)
        sql = read_sql(f"{args.query}.sql", p)
        sql = "\n".join(ln for ln in sql.splitlines() if not ln.strip().startswith("--"))
        return env, sql

    def blackhole_run(env, sql):
        """Run the query into a blackhole sink; (net runtime s, wall s, plan+submit s, job id)."""
        t0 = time.perf_counter()
        tr = env.sql_query(sql).execute_insert(TableDescriptor.for_connector("blackhole").build())
        t_submitted = time.perf_counter()
        jr = tr.get_job_client().get_job_execution_result().result()
        t1 = time.perf_counter()
        return jr.get_net_runtime() / 1000.0, t1 - t0, t_submitted - t0, str(jr.get_job_id())

    t_env, query_sql = make_env(src)
    jvm_start_s = time.perf_counter() - t_jvm0

    report = {
        "query": args.query, "engine": "flink", "input": inp, "events": events,
        "workers": args.workers, "source_files": shards if shards > 1 else 1,
        "mode": "streaming", "watermark_delay_s": float(args.watermark_delay),
        "mini_batch": not args.no_mini_batch, "jvm_start_seconds": round(jvm_start_s, 3),
    }

    if args.mode in ("both", "throughput"):
        runs = [blackhole_run(t_env, query_sql) for _ in range(max(1, args.repeat))]
        nets = [r[0] for r in runs]
        # the run with the median net runtime (the only one unless --repeat)
        net_s, wall, plan_s, job_id = sorted(runs)[(len(runs) - 1) // 2]
        if len(runs) > 1:
            report["net_runtimes_seconds"] = nets
            log(f"{len(runs)} throughput runs, net runtimes {', '.join(f'{x:.3f}' for x in nets)} s; "
                f"using the median")
        report.update({
            "seconds": net_s,
            "events_per_second": events / net_s if net_s > 0 else None,
            "wall_seconds_submit_to_result": round(wall, 3),
            "plan_and_submit_seconds": round(plan_s, 3),
            "startup_excluded_seconds": round(wall - net_s, 3),
            "job_id": job_id,
        })
        if not args.no_fixed_cost:
            # The same query over an empty input (same JVM, same parallelism): what the net
            # runtime costs without data -- task deployment, operator set-up and code
            # compilation, teardown. Reported, and subtracted in events_per_second_steady.
            empty_dir = tempfile.mkdtemp(prefix="flink-empty-")
            open(os.path.join(empty_dir, "empty.json"), "w").close()
            e_env, e_sql = make_env(empty_dir)
            fixed_s, _w, _p, _j = blackhole_run(e_env, e_sql)
            shutil.rmtree(empty_dir, ignore_errors=True)
            steady = net_s - fixed_s
            report.update({
                "fixed_cost_seconds": fixed_s,
                "events_per_second_steady": events / steady if steady > 0 else None,
            })
            log(f"fixed per-job cost (same query, empty input): {fixed_s:.3f} s net runtime; "
                f"excluding it: {events / steady if steady > 0 else float('nan'):,.0f} events/s")
        log(f"throughput run: {events} events in {net_s:.3f} s net job runtime = "
            f"{report['events_per_second']:,.0f} events/s (workers {args.workers}; excluded: "
            f"JVM start {jvm_start_s:.2f} s, planning+mini-cluster start+submission+result "
            f"{wall - net_s:.2f} s)")

    if args.mode in ("both", "checksum"):
        table = t_env.sql_query(query_sql)
        names = table.get_schema().get_field_names()
        # A NULL field would vanish from CONCAT_WS; none of these queries produces one, but
        # should one appear it is rendered as a marker that fails the run below.
        render = "CONCAT_WS('|', " + ", ".join(
            f"COALESCE(CAST(`{n}` AS STRING), CONCAT(CHR(1), 'NULL'))" for n in names) + ")"
        rendered_sql = f"SELECT {render} AS line FROM ({query_sql})"
        t0 = time.perf_counter()
        if args.query in UPDATING:
            counts = collections.Counter()
            with t_env.execute_sql(rendered_sql).collect() as results:
                for row in results:
                    kind = row.get_row_kind()
                    if kind in (RowKind.INSERT, RowKind.UPDATE_AFTER):
                        counts[row[0]] += 1
                    else:
                        counts[row[0]] -= 1
            bad = {k: v for k, v in counts.items() if v < 0}
            if bad:
                raise SystemExit(f"changelog retracts rows never inserted: {list(bad)[:5]}")
            lines = [k.encode("utf-8") for k, v in counts.items() for _ in range(v)]
            how = "collected changelog, applied"
        else:
            out_dir = tempfile.mkdtemp(prefix=f"flink-{args.query}-")
            t_env.execute_sql(
                f"CREATE TEMPORARY TABLE rows_sink (line STRING) WITH ("
                f"'connector'='filesystem', 'path'='{out_dir}', 'format'='raw')")
            t_env.execute_sql(
                f"CREATE TEMPORARY VIEW rendered AS {rendered_sql}")
            t_env.execute_sql("INSERT INTO rows_sink SELECT line FROM rendered").wait()
            parts = []
            for root, _dirs, files in os.walk(out_dir):
                for fn in files:
                    if fn.endswith(".crc"):
                        continue
                    with open(os.path.join(root, fn), "rb") as f:
                        parts.append(f.read())
            data = b"".join(parts)
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            shutil.rmtree(out_dir, ignore_errors=True)
            how = "filesystem sink, raw format"
        nulls = sum(1 for ln in lines if b"\x01NULL" in ln)
        if nulls:
            raise SystemExit(f"{nulls} result rows with NULL fields: their rendering is undefined")
        n, c = len(lines), cks.checksum_lines(lines)
        if args.keep_output:
            with open(args.keep_output, "wb") as f:
                for ln in sorted(lines):
                    f.write(ln + b"\n")
        report.update({"rows": n, "checksum": c, "checksum_hex": cks.hex64(c),
                       "checksum_run_seconds": round(time.perf_counter() - t0, 3),
                       "checksum_via": how})
        log(f"checksum run ({how}): {n} rows, checksum {cks.hex64(c)}")

    report["peak_rss_bytes"] = descendants_peak_rss(os.getpid())
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
