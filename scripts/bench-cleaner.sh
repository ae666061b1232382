#!/usr/bin/env bash
# Produce throughput with the log cleaner busy on another topic, next to the idle figure.
#
#   scripts/bench-cleaner.sh          # RUNS=3; needs `make build`, `make setup`, and
#                                     # scripts/bench.sh run once (builds rdkafka_performance)
#
# Each run starts two fresh brokers in turn, identical but for log.cleaner.enable. On each:
# fill the compacted topic `dirty` with 3M x 200 B under one key (600 MB), then at once
# produce 1M x 100 B to topic `t`. With the cleaner on it compacts `dirty` meanwhile; with
# it off nothing runs. Both see the same page-cache and disk state after the fill, so their
# ratio is the cleaner's cost alone. A fresh-broker figure (no fill) is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PERF=scripts/.cache/librdkafka/examples/rdkafka_performance
WEIR=${WEIR_BIN:-${CARGO_TARGET_DIR:-target}/release/weir}
[ -x "$PERF" ] || { echo "bench-cleaner: run scripts/bench.sh once to build rdkafka_performance" >&2; exit 1; }
[ -x .venv/bin/python ] || { echo "bench-cleaner: run make setup first" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%d\n", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rate() { grep 'messages produced' | sed -E 's/.*: ([0-9]+) msgs\/s and.*/\1/'; }

BROKER_PID=""
cleanup() { [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# one_run CLEANER(true|false) -> prints "fresh busy passes"
one_run() {
  local data port fresh t passes
  data=$(mktemp -d); port=$(free_port)
  "$WEIR" --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$data" \
    --override log.cleaner.backoff.ms=100 --override "log.cleaner.enable=$1" 2>"$data.log" &
  BROKER_PID=$!
  sleep 0.3
  .venv/bin/python - "$port" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"})
topics = [NewTopic("fresh", 1, 1), NewTopic("t", 1, 1),
          NewTopic("dirty", 1, 1, config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                          "internal.segment.bytes": "16777216"})]
for f in admin.create_topics(topics).values():
    f.result(10)
EOF
  local b="127.0.0.1:$port"
  fresh=$("$PERF" -P -t fresh -p 0 -b "$b" -s 100 -c 1000000 -a 1 -X linger.ms=5 -q 2>&1 | rate)
  "$PERF" -P -t dirty -p 0 -b "$b" -s 200 -c 3000000 -k samekey -a 1 -X linger.ms=5 -q >/dev/null 2>&1
  t=$("$PERF" -P -t t -p 0 -b "$b" -s 100 -c 1000000 -a 1 -X linger.ms=5 -q 2>&1 | rate)
  sleep 1
  kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
  passes=$(grep -c 'cleaned log' "$data.log" || true)
  rm -rf "$data" "$data.log"
  echo "$fresh $t $passes"
}

ON=(); OFF=(); FRESH=(); PASSES=()
for _ in $(seq "$RUNS"); do
  read -r fresh busy passes < <(one_run true)
  ON+=("$busy"); FRESH+=("$fresh"); PASSES+=("$passes")
  read -r fresh idle _ < <(one_run false)
  OFF+=("$idle"); FRESH+=("$fresh")
done
on=$(printf '%s\n' "${ON[@]}" | median)
off=$(printf '%s\n' "${OFF[@]}" | median)
fresh=$(printf '%s\n' "${FRESH[@]}" | median)
echo "produce 1M x 100 B to one partition, acks=1, linger.ms=5, median of $RUNS runs"
echo "right after a 600 MB fill of a compacted topic: cleaner busy on it ${on} msgs/s; cleaner idle (off) ${off} msgs/s"
awk -v a="$on" -v b="$off" 'BEGIN {printf "busy/idle = %.2f\n", a / b}'
echo "fresh broker, before any fill: ${fresh} msgs/s (the fill itself costs the difference on this machine)"
echo "cleaner passes on 'dirty' per run: ${PASSES[*]}"
