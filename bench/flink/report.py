#!/usr/bin/env python3
"""Side-by-side table of the Flink and Millstream runs in a results directory written by
bench/compare-flink.sh (flink-qN.json, millstream-qN.json, optionally reference-qN.json).
Exit status 1 when any query's answers disagree (row count or checksum) or a run is missing.
"""
import argparse
import json
import os
import sys


def load_run(path, query, engine):
    """A run report: one JSON object, a list of them, or JSON lines; the entry for `query`
    (and, when reports name their engine, `engine`)."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
        docs = doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        docs = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    docs = [d for d in docs if isinstance(d, dict)]
    for d in docs:
        if d.get("query") == query and d.get("engine", engine) == engine:
            return d
    return docs[-1] if len(docs) == 1 else None


def checksum_of(run):
    """The checksum as an int: from checksum_hex when present (exact), else `checksum`."""
    if run is None:
        return None
    h = run.get("checksum_hex")
    if isinstance(h, str) and h:
        return int(h, 16)
    c = run.get("checksum")
    if isinstance(c, str):
        return int(c, 16) if c.lower().startswith("0x") or any(ch in "abcdef" for ch in c.lower()) else int(c)
    return int(c) if c is not None else None


def fmt_rate(x):
    return f"{x:,.0f}" if isinstance(x, (int, float)) and x else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results")
    ap.add_argument("--queries", nargs="+", required=True)
    ap.add_argument("--engines", default="both", choices=["both", "flink", "millstream"])
    args = ap.parse_args()

    hdr = (f"{'query':<6} {'flink ev/s':>13} {'(steady)':>10} {'millstream ev/s':>16} {'ms/flink':>9} "
           f"{'flink rows':>11} {'flink checksum':>17} {'ms rows':>11} {'ms checksum':>17} {'agree':>8}")
    print(hdr)
    print("-" * len(hdr))
    bad = []
    summary = []
    for q in args.queries:
        fl = load_run(os.path.join(args.results, f"flink-{q}.json"), q, "flink")
        ms = load_run(os.path.join(args.results, f"millstream-{q}.json"), q, "millstream")
        ref = load_run(os.path.join(args.results, f"reference-{q}.json"), q, "reference")
        fr, mr = (fl or {}).get("events_per_second"), (ms or {}).get("events_per_second")
        ratio = f"{mr / fr:.2f}x" if fr and mr else "-"
        fc, mc = checksum_of(fl), checksum_of(ms)
        frows, mrows = (fl or {}).get("rows"), (ms or {}).get("rows")
        if args.engines == "both":
            if fl is None or ms is None or frows is None or mrows is None:
                agree = "MISSING"
            else:
                agree = "yes" if (frows == mrows and fc == mc) else "NO"
        elif args.engines == "flink":
            agree = "n/a" if fl is not None and frows is not None else "MISSING"
        else:
            agree = "n/a" if ms is not None and mrows is not None else "MISSING"
        if ref is not None:  # an independent check of whichever engines ran
            rc = checksum_of(ref)
            for name, rows, c in (("flink", frows, fc), ("millstream", mrows, mc)):
                if rows is not None and (rows != ref.get("rows") or c != rc):
                    agree = f"NO({name}!=ref)"
            if agree == "n/a":
                agree = "=ref"
            elif agree == "yes":
                agree = "yes,=ref"
        if agree not in ("yes", "n/a", "=ref", "yes,=ref"):
            bad.append(q)
        ev_f, ev_m = (fl or {}).get("events"), (ms or {}).get("events")
        if ev_f is not None and ev_m is not None and ev_f != ev_m:
            agree += f" (events {ev_f} vs {ev_m})"
            bad.append(q)
        steady = (fl or {}).get("events_per_second_steady")
        print(f"{q:<6} {fmt_rate(fr):>13} {fmt_rate(steady):>10} {fmt_rate(mr):>16} {ratio:>9} "
              f"{'-' if frows is None else frows:>11} {'-' if fc is None else f'{fc:016x}':>17} "
              f"{'-' if mrows is None else mrows:>11} {'-' if mc is None else f'{mc:016x}':>17} {agree:>8}")
        summary.append({"query": q, "flink": fl, "millstream": ms, "reference": ref, "agree": agree})
    with open(os.path.join(args.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if fl_any := [s["flink"] for s in summary if s["flink"]]:
        f0 = fl_any[0]
        print(f"\nflink: {f0.get('workers')} workers, {f0.get('events')} events, streaming mode; "
              f"events/s = events / job net runtime (JVM start, planning, mini-cluster start and "
              f"submission excluded, e.g. {f0.get('startup_excluded_seconds')} s + "
              f"{f0.get('jvm_start_seconds')} s JVM for {f0.get('query')}); (steady) also excludes "
              f"the per-job fixed cost measured on an empty input; ms/flink = millstream / flink ev/s")
    if bad:
        print(f"\nDISAGREE or MISSING: {' '.join(dict.fromkeys(bad))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
