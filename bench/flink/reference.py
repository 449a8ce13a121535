#!/usr/bin/env python3
"""An independent, deliberately naive Python computation of each query's final answer as
docs/nexmark.md defines it (no engine, no watermarks: the whole file in memory). For
checking Flink's (and Millstream's) answers on small files:

    python3 bench/flink/reference.py --input /tmp/nexmark.json --query q7 [--rows OUT.txt]

Prints JSON {query, events, rows, checksum, checksum_hex}.
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checksum as cks  # noqa: E402

TUMBLE = 10_000
HOP_SIZE, HOP_SLIDE = 10_000, 2_000
GAP = 10_000


def tdiv(a, b):
    """Integer division truncating toward zero (Rust/Java/Flink), not Python's floor."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def window_start(t, size):
    return t - (t % size)  # epoch-aligned; Python % is non-negative for size > 0


def load(path):
    persons, auctions, bids = [], [], []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            k = e["event_type"]
            if k == 0:
                persons.append(e["person"])
            elif k == 1:
                auctions.append(e["auction"])
            else:
                bids.append(e["bid"])
    return persons, auctions, bids


def row(*fields):
    return "|".join(str(x) for x in fields)


def answer(q, persons, auctions, bids):
    if q == "q0":
        return [row(b["auction"], b["bidder"], b["price"], b["channel"], b["url"], b["dateTime"], b["extra"])
                for b in bids]
    if q == "q1":
        return [row(b["auction"], b["bidder"], tdiv(b["price"] * 908, 1000), b["dateTime"], b["extra"])
                for b in bids]
    if q == "q2":
        return [row(b["auction"], b["price"]) for b in bids if b["auction"] % 123 == 0]
    if q == "q3":
        sellers = collections.defaultdict(list)
        for p in persons:
            if p["state"] in ("OR", "ID", "CA"):
                sellers[p["id"]].append(p)
        return [row(p["name"], p["city"], p["state"], a["id"])
                for a in auctions if a["category"] == 10 for p in sellers.get(a["seller"], [])]
    if q == "q4":
        by_auction = collections.defaultdict(list)
        for b in bids:
            by_auction[b["auction"]].append(b)
        per_cat = collections.defaultdict(list)
        for a in auctions:
            prices = [b["price"] for b in by_auction.get(a["id"], [])
                      if a["dateTime"] <= b["dateTime"] <= a["expires"]]
            if prices:
                per_cat[a["category"]].append(max(prices))
        return [row(c, tdiv(sum(ps), len(ps))) for c, ps in per_cat.items()]
    if q == "q5":
        counts = collections.Counter()
        for b in bids:
            t = b["dateTime"]
            s = window_start(t, HOP_SLIDE)
            while s > t - HOP_SIZE:  # every hop window [s, s + size) containing t
                counts[(s, b["auction"])] += 1
                s -= HOP_SLIDE
        best = collections.defaultdict(int)
        for (s, _a), n in counts.items():
            best[s] = max(best[s], n)
        return [row(s, a, n) for (s, a), n in counts.items() if n == best[s]]
    if q == "q7":
        best = {}
        for b in bids:
            w = window_start(b["dateTime"], TUMBLE)
            best[w] = max(best.get(w, b["price"]), b["price"])
        return [row(window_start(b["dateTime"], TUMBLE), b["auction"], b["price"], b["bidder"], b["dateTime"])
                for b in bids if b["price"] == best[window_start(b["dateTime"], TUMBLE)]]
    if q == "q8":
        sellers = {(a["seller"], window_start(a["dateTime"], TUMBLE)) for a in auctions}
        out = set()
        for p in persons:
            w = window_start(p["dateTime"], TUMBLE)
            if (p["id"], w) in sellers:
                out.add(row(p["id"], p["name"], w))
        return list(out)
    if q == "q11":
        times = collections.defaultdict(list)
        for b in bids:
            times[b["bidder"]].append(b["dateTime"])
        out = []
        for bidder, ts in times.items():
            ts.sort()
            first = last = ts[0]
            n = 1
            for t in ts[1:]:
                if t < last + GAP:  # inside [first, last + gap): same session
                    last, n = t, n + 1
                else:
                    out.append(row(bidder, n, first, last + GAP))
                    first = last = t
                    n = 1
            out.append(row(bidder, n, first, last + GAP))
        return out
    raise SystemExit(f"unknown query {q}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True)
    ap.add_argument("--query", required=True, nargs="+")
    ap.add_argument("--rows", help="write the sorted rendered rows here (one query only)")
    args = ap.parse_args()
    persons, auctions, bids = load(args.input)
    events = len(persons) + len(auctions) + len(bids)
    for q in args.query:
        rows = answer(q, persons, auctions, bids)
        n, c = cks.checksum_rows(rows)
        if args.rows:
            with open(args.rows, "w") as f:
                for r in sorted(rows):
                    f.write(r + "\n")
        print(json.dumps({"query": q, "events": events, "rows": n, "checksum": c,
                          "checksum_hex": cks.hex64(c)}))


if __name__ == "__main__":
    main()
