#!/usr/bin/env python3
"""A small Nexmark-shaped JSON-lines generator, for developing and testing the Flink side of
bench/compare-flink.sh before (or independently of) `millstream nexmark generate`.

It writes the format of docs/nexmark.md (Flink's Nexmark row, epoch-millisecond times) in the
1:3:46 person:auction:bid proportion, with event times that increase (by default) and a few
deliberate edge cases: equal prices within a window (q7 ties), bids exactly on a 10 s window
boundary, bidders whose next bid comes exactly 10 s (and 9.999 s) after the previous one (q11
session boundary), sellers that register and open an auction in the same window (q8), and
auctions whose bids fall exactly on `dateTime`/`expires` (q4 inclusive bounds).

It is NOT Beam's generator (the real benchmark input comes from `millstream nexmark generate`);
it only has to exercise every query. Deterministic for a given --seed.

    python3 bench/flink/gen_events.py --events 20000 --out /tmp/nexmark-20k.json
"""
import argparse
import json
import random

BASE_TIME = 1436918400000  # 2015-07-15 00:00:00 UTC, as in Beam/Flink Nexmark
STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"]
CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend",
          "Redmond", "Seattle", "Kent", "Cheyenne"]
FIRST = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"]
LAST = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"]
CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--mean-gap-ms", type=float, default=20.0,
                    help="mean event-time step between consecutive events (default 20 ms)")
    ap.add_argument("--disorder-ms", type=int, default=0,
                    help="jitter event times by up to this many ms (out-of-order input; default 0)")
    args = ap.parse_args()
    rnd = random.Random(args.seed)

    next_person = 1000
    next_auction = 1000
    persons = []        # ids of recent persons
    auctions = []       # (id, dateTime, expires) of recent auctions
    t = BASE_TIME
    last_bid_of = {}    # bidder -> last bid time, for session-boundary cases

    with open(args.out, "w") as f:
        for i in range(args.events):
            # occasionally a quiet period longer than the session gap
            if rnd.random() < 0.001:
                t += rnd.choice([10000, 12000, 25000])
            else:
                t += int(rnd.expovariate(1.0 / args.mean_gap_ms)) if args.mean_gap_ms > 0 else 0
            # snap to window boundaries now and then (bids exactly at a window's end)
            if rnd.random() < 0.01:
                t = ((t // 2000) + 1) * 2000
            dt = t + (rnd.randint(-args.disorder_ms, args.disorder_ms) if args.disorder_ms else 0)
            k = i % 50
            if k == 0 or not persons:
                pid = next_person
                next_person += 1
                persons.append(pid)
                persons[:] = persons[-50:]
                ev = {"event_type": 0, "person": {
                    "id": pid,
                    "name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
                    "emailAddress": f"user{pid}@example.com",
                    "creditCard": " ".join(f"{rnd.randint(0, 9999):04d}" for _ in range(4)),
                    "city": rnd.choice(CITIES),
                    "state": rnd.choice(STATES),
                    "dateTime": dt,
                    "extra": "",
                }, "auction": None, "bid": None}
            elif k <= 3 or not auctions:
                aid = next_auction
                next_auction += 1
                # mostly a recent seller (often the one who just registered: q8)
                seller = persons[-1] if rnd.random() < 0.5 else rnd.choice(persons)
                expires = dt + rnd.choice([0, 500, 2000, 5000, 10000, 20000])
                auctions.append((aid, dt, expires))
                auctions[:] = auctions[-100:]
                ev = {"event_type": 1, "person": None, "auction": {
                    "id": aid,
                    "itemName": f"item-{aid}",
                    "description": "a thing, \"quoted\" and \u00fcmlauted",
                    "initialBid": rnd.randint(1, 1000),
                    "reserve": rnd.randint(1000, 2000),
                    "dateTime": dt,
                    "expires": expires,
                    "seller": seller,
                    "category": 10 + rnd.randint(0, 4),
                    "extra": "",
                }, "bid": None}
            else:
                # hot auctions: mostly the most recent few
                if rnd.random() < 0.8:
                    a = auctions[-1 - min(len(auctions) - 1, int(rnd.expovariate(0.5)))]
                else:
                    a = rnd.choice(auctions)
                # sometimes an auction id that was never opened (no join partner)
                auction_id = a[0] if rnd.random() < 0.98 else next_auction + 10000
                bidder = rnd.choice(persons) if rnd.random() < 0.9 else 500 + rnd.randint(0, 20)
                price = rnd.choice([100, 200, 300, 1000, 5000, 9999]) if rnd.random() < 0.3 \
                    else rnd.randint(1, 10000)
                bdt = dt
                # a bidder's next bid exactly at the previous one + 10 s or + 9.999 s
                prev = last_bid_of.get(bidder)
                if prev is not None and prev + 9999 >= t - 50 and prev + 10000 <= t + 50 \
                        and rnd.random() < 0.5:
                    bdt = prev + rnd.choice([9999, 10000])
                # a bid exactly at the auction's start or expiry
                # (only when that is within 2 s of now, so the input stays nearly in order)
                if rnd.random() < 0.05:
                    edge = a[1] if rnd.random() < 0.5 else a[2]
                    if abs(edge - t) <= 2000:
                        bdt = edge
                last_bid_of[bidder] = bdt
                ev = {"event_type": 2, "person": None, "auction": None, "bid": {
                    "auction": auction_id,
                    "bidder": bidder,
                    "price": price,
                    "channel": rnd.choice(CHANNELS),
                    "url": f"https://www.nexmark.com/{rnd.randint(0, 99)}/item.htm?query=1",
                    "dateTime": bdt,
                    "extra": "",
                }}
            f.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")


if __name__ == "__main__":
    main()
