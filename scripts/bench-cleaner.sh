#!/usr/bin/env bash
# Produce throughput with the log cleaner busy on another topic, next to the idle figure.
#
#   scripts/bench-cleaner.sh          # RUNS=3; needs `make build` and `make setup` first
#
# Per run, on a fresh broker (log.cleaner.backoff.ms=100): produce 1M x 100 B to topic
# `idle` (cleaner has nothing to do); fill the compacted topic `dirty` with 3M x 200 B
# under one key; then, while the cleaner compacts `dirty`, produce 1M x 100 B to `busy`.
# Prints the medians and the busy/idle ratio, and how long the cleaner worked.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PERF=scripts/.cache/librdkafka/examples/rdkafka_performance
WEIR=${WEIR_BIN:-${CARGO_TARGET_DIR:-target}/release/weir}
[ -x "$PERF" ] || { echo "bench-cleaner: run scripts/bench.sh once to build rdkafka_performance" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo "bench-cleaner: run make setup first" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rate() { sed -E 's/.*: ([0-9]+) msgs\/s and.*/\1/'; }

BROKER_PID=""
cleanup() { [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

IDLE=(); BUSY=(); CLEAN_MS=()
for _ in $(seq "$RUNS"); do
  DATA=$(mktemp -d); PORT=$(free_port)
  "$WEIR" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA" \
    --override log.cleaner.backoff.ms=100 2>"$DATA.log" &
  BROKER_PID=$!
  sleep 0.3
  .venv/bin/python - "$PORT" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"})
topics = [NewTopic("idle", 1, 1), NewTopic("busy", 1, 1),
          NewTopic("dirty", 1, 1, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                          "internal.segment.bytes": "16777216"})]
for f in admin.create_topics(topics).values():
    f.result(10)
EOF
  B="127.0.0.1:$PORT"
  IDLE+=("$("$PERF" -P -t idle -p 0 -b "$B" -s 100 -c 1000000 -a 1 -X linger.ms=5 -q 2>&1 | grep 'messages produced' | rate)")
  "$PERF" -P -t dirty -p 0 -b "$B" -s 200 -c 3000000 -k samekey -a 1 -X linger.ms=5 -q >/dev/null 2>&1
  BUSY+=("$("$PERF" -P -t busy -p 0 -b "$B" -s 100 -c 1000000 -a 1 -X linger.ms=5 -q 2>&1 | grep 'messages produced' | rate)")
  sleep 2
  kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
  CLEAN_MS+=("$(grep -c 'cleaned log' "$DATA.log")")
  rm -rf "$DATA" "$DATA.log"
done
idle=$(printf '%s\n' "${IDLE[@]}" | median)
busy=$(printf '%s\n' "${BUSY[@]}" | median)
echo "produce 1M x 100 B, acks=1, median of $RUNS: idle cleaner ${idle} msgs/s; cleaner busy on another topic ${busy} msgs/s"
awk -v a="$busy" -v b="$idle" 'BEGIN {printf "busy/idle = %.2f\n", a / b}'
echo "cleaner passes that compacted 'dirty' per run: ${CLEAN_MS[*]}"
