#!/usr/bin/env bash
# Run Nexmark on Apache Flink and on Millstream over the same JSON-lines input and compare
# throughput and answers side by side. See bench/README.md.
#
#   bench/compare-flink.sh --generate 1000000 --workers 4            # generate, run both
#   bench/compare-flink.sh --input /tmp/nexmark.json --engine flink  # Flink only
#   bench/compare-flink.sh --input F --queries "q5 q7" --reference   # + Python reference answers
#
# Exit status: 0 when every query's answers agree (rows and checksum), 1 on a disagreement
# or a missing run, 2 on a usage or setup error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
ALL_QUERIES="q0 q1 q2 q3 q4 q5 q7 q8 q11"

INPUT=""
GENERATE=""
GENERATOR="millstream"
WORKERS="$(nproc 2>/dev/null || echo 1)"
QUERIES="$ALL_QUERIES"
ENGINE="both"
RESULTS=""
REFERENCE=0
MILLSTREAM="${MILLSTREAM:-$ROOT/target/release/millstream}"
VENV="${MILLSTREAM_FLINK_VENV:-$HOME/.cache/millstream/flink-venv}"
FLINK_VERSION="${FLINK_VERSION:-2.3.0}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
FLINK_ARGS=()

usage() {
    cat <<EOF
usage: bench/compare-flink.sh (--input FILE | --generate N [--out FILE]) [options]

  --input FILE         Nexmark JSON-lines events (docs/nexmark.md format)
  --generate N         first generate N events: millstream nexmark generate --events N --out FILE
  --out FILE           where --generate writes (default /tmp/millstream-bench/nexmark-N.json;
                       an existing file is reused, --force regenerates)
  --generator G        millstream (default) or python (bench/flink/gen_events.py, a test generator)
  --workers N          Millstream workers = Flink parallelism (default: nproc = $WORKERS)
  --queries "q0 q5"    subset of: $ALL_QUERIES (default all)
  --engine E           both (default), flink, millstream
  --results DIR        reports and logs (default /tmp/millstream-bench/results-<time>)
  --reference          also compute each answer with bench/flink/reference.py (pure Python,
                       small inputs only) and check both engines against it
  --watermark-delay S  Flink watermark bounded out-of-orderness in seconds (default 4)
  --shards N           Flink: split the input round-robin into N files (default --workers)
  --no-mini-batch      Flink: no mini-batch for non-window aggregations
  --flink-mode M       Flink runs: both (default; throughput + checksum), throughput, checksum
  --flink-repeat K     K throughput runs per query in one JVM, report the median (default 1)

environment: MILLSTREAM (binary, default target/release/millstream), MILLSTREAM_FLINK_VENV
(default ~/.cache/millstream/flink-venv), FLINK_VERSION (apache-flink on PyPI, default
$FLINK_VERSION), PYTHON (for the venv, default python3.11), JAVA_HOME (a Java 11/17/21;
found automatically when unset or unsuitable).
EOF
}

FORCE=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --input) INPUT="$2"; shift 2 ;;
        --generate) GENERATE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --generator) GENERATOR="$2"; shift 2 ;;
        --force) FORCE=1; shift ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --queries) QUERIES="$2"; shift 2 ;;
        --engine) ENGINE="$2"; shift 2 ;;
        --results) RESULTS="$2"; shift 2 ;;
        --reference) REFERENCE=1; shift ;;
        --watermark-delay) FLINK_ARGS+=(--watermark-delay "$2"); shift 2 ;;
        --shards) FLINK_ARGS+=(--shards "$2"); shift 2 ;;
        --no-mini-batch) FLINK_ARGS+=(--no-mini-batch); shift ;;
        --flink-mode) FLINK_ARGS+=(--mode "$2"); shift 2 ;;
        --flink-repeat) FLINK_ARGS+=(--repeat "$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

case "$ENGINE" in both|flink|millstream) ;; *) echo "--engine: both, flink or millstream" >&2; exit 2 ;; esac
for q in $QUERIES; do
    case " $ALL_QUERIES " in *" $q "*) ;; *) echo "unknown query $q (have: $ALL_QUERIES)" >&2; exit 2 ;; esac
done
if [ -z "$INPUT" ] && [ -z "$GENERATE" ]; then usage >&2; exit 2; fi

RESULTS="${RESULTS:-/tmp/millstream-bench/results-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RESULTS"
log() { echo "[compare-flink $(date -u +%H:%M:%S)] $*" >&2; }

# --- Flink's Python environment: set up in the background (apache-flink is large) ---------
flink_ready() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import pyflink, numpy" 2>/dev/null; }
VENV_PID=""
if [ "$ENGINE" != "millstream" ] && ! flink_ready; then
    log "installing apache-flink==$FLINK_VERSION into $VENV in the background (log: $RESULTS/pip.log)"
    (
        set -e
        mkdir -p "$(dirname "$VENV")"
        [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install "apache-flink==$FLINK_VERSION"
    ) >"$RESULTS/pip.log" 2>&1 &
    VENV_PID=$!
fi

# --- Java for Flink: JAVA_HOME must be a Java 11, 17 or 21 (Flink 2.x) -------------------
java_major() { "$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -1; }
pick_java() {
    local c m
    for c in "${JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* \
             /usr/lib/jvm/*17* /usr/lib/jvm/java-21-openjdk* /usr/lib/jvm/*21* /usr/lib/jvm/java-11-openjdk* \
             "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
        [ -n "$c" ] && [ -x "$c/bin/java" ] || continue
        m="$(java_major "$c")"
        case "$m" in 11|17|21) echo "$c"; return 0 ;; esac
    done
    return 1
}

# --- input -----------------------------------------------------------------------------
if [ -n "$GENERATE" ]; then
    OUT="${OUT:-${INPUT:-/tmp/millstream-bench/nexmark-$GENERATE.json}}"
    mkdir -p "$(dirname "$OUT")"
    if [ -s "$OUT" ] && [ "$FORCE" = 0 ]; then
        log "reusing $OUT (--force to regenerate)"
    elif [ "$GENERATOR" = python ]; then
        log "generating $GENERATE events with bench/flink/gen_events.py into $OUT"
        python3 "$BENCH/flink/gen_events.py" --events "$GENERATE" --out "$OUT"
    else
        [ -x "$MILLSTREAM" ] || { echo "no $MILLSTREAM (cargo build --release -p millstream-cli?) -- or --generator python" >&2; exit 2; }
        log "generating $GENERATE events: millstream nexmark generate --events $GENERATE --out $OUT"
        "$MILLSTREAM" nexmark generate --events "$GENERATE" --out "$OUT"
    fi
    INPUT="$OUT"
fi
[ -s "$INPUT" ] || { echo "input $INPUT missing or empty" >&2; exit 2; }
INPUT="$(readlink -f "$INPUT")"
log "input $INPUT ($(wc -l <"$INPUT") lines), workers $WORKERS, queries: $QUERIES, results in $RESULTS"

# --- Millstream (while pip may still be installing Flink) ------------------------------
if [ "$ENGINE" != "flink" ]; then
    if [ ! -x "$MILLSTREAM" ]; then
        log "no Millstream binary at $MILLSTREAM: build it (cargo build --release) or use --engine flink"
    else
        for q in $QUERIES; do
            log "millstream $q"
            rm -f "$RESULTS/millstream-$q.json"
            "$MILLSTREAM" bench nexmark --query "$q" --input "$INPUT" --workers "$WORKERS" \
                --json "$RESULTS/millstream-$q.json" >"$RESULTS/millstream-$q.log" 2>&1 \
                || log "millstream $q failed: see $RESULTS/millstream-$q.log"
        done
    fi
fi

# --- reference answers (pure Python, optional) -------------------------------------------
if [ "$REFERENCE" = 1 ]; then
    for q in $QUERIES; do
        log "reference $q"
        python3 "$BENCH/flink/reference.py" --input "$INPUT" --query "$q" >"$RESULTS/reference-$q.json"
    done
fi

# --- Flink --------------------------------------------------------------------------------
if [ "$ENGINE" != "millstream" ]; then
    if [ -n "$VENV_PID" ]; then
        log "waiting for the apache-flink install"
        wait "$VENV_PID" || { echo "pip install failed: $RESULTS/pip.log" >&2; exit 2; }
    fi
    flink_ready || { echo "pyflink not importable from $VENV (see $RESULTS/pip.log)" >&2; exit 2; }
    JH="$(pick_java)" || { echo "no Java 11/17/21 found for Flink (set JAVA_HOME)" >&2; exit 2; }
    export JAVA_HOME="$JH"
    export PATH="$JAVA_HOME/bin:$PATH"
    log "Flink: $("$VENV/bin/python" -c 'import importlib.metadata as m; print("apache-flink", m.version("apache-flink"))'), JAVA_HOME=$JAVA_HOME (Java $(java_major "$JAVA_HOME"))"
    for q in $QUERIES; do
        log "flink $q"
        rm -f "$RESULTS/flink-$q.json"
        "$VENV/bin/python" "$BENCH/flink/nexmark.py" --query "$q" --input "$INPUT" \
            --workers "$WORKERS" --json "$RESULTS/flink-$q.json" ${FLINK_ARGS[@]+"${FLINK_ARGS[@]}"} \
            >"$RESULTS/flink-$q.log" 2>&1 || log "flink $q failed: see $RESULTS/flink-$q.log"
        grep -h '^\[flink' "$RESULTS/flink-$q.log" >&2 || true
    done
fi

# --- the table ---------------------------------------------------------------------------
echo
echo "Nexmark, $(wc -l <"$INPUT") events from $INPUT, $WORKERS workers ($(nproc) CPUs on $(hostname))"
PY=python3
flink_ready && PY="$VENV/bin/python"
set +e
# shellcheck disable=SC2086
"$PY" "$BENCH/flink/report.py" "$RESULTS" --queries $QUERIES --engines "$ENGINE"
status=$?
echo "reports: $RESULTS"
exit $status
