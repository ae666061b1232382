#!/usr/bin/env bash
# Throughput and memory benchmark: librdkafka's rdkafka_performance against a fresh weir.
#
#   scripts/bench.sh            # RUNS=3 by default; figures are medians
#   RUNS=5 scripts/bench.sh
#
# rdkafka_performance is built from the librdkafka source vendored in the rdkafka-sys
# crate (the one the Rust tests link), into scripts/.cache. Each run starts a fresh broker
# with real segment files in a temporary directory. Reported per workload: msgs/s, MB/s
# and the broker's peak RSS (VmHWM); also the idle RSS of a fresh broker, and loopback TCP
# bandwidth measured in the same run as the baseline for the 1 KiB figures.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
CACHE=scripts/.cache
PERF=$CACHE/librdkafka/examples/rdkafka_performance
WEIR=${WEIR_BIN:-${CARGO_TARGET_DIR:-target}/release/weir}

build_perf() {
  [ -x "$PERF" ] && return
  cargo fetch -q
  local src
  src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name 'rdkafka-sys-*' | sort | tail -n 1)/librdkafka
  [ -f "$src/configure" ] || { echo "bench: librdkafka source not found under the cargo registry" >&2; exit 1; }
  mkdir -p "$CACHE"
  rm -rf "$CACHE/librdkafka"
  cp -r "$src" "$CACHE/librdkafka"
  basename "$(dirname "$src")" | sed 's/.*+//' >"$CACHE/librdkafka.version"
  (cd "$CACHE/librdkafka" && ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd >/dev/null \
    && make -j2 libs >/dev/null 2>&1 && make -C examples rdkafka_performance >/dev/null 2>&1)
  [ -x "$PERF" ] || { echo "bench: building rdkafka_performance failed" >&2; exit 1; }
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

BROKER_PID=""
start_broker() {
  DATA=$(mktemp -d)
  PORT=$(free_port)
  "$WEIR" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA" 2>"$DATA.log" &
  BROKER_PID=$!
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return
    sleep 0.02
  done
  echo "bench: broker did not start" >&2; cat "$DATA.log" >&2; exit 1
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  rm -rf "$DATA" "$DATA.log"
  BROKER_PID=""
}
trap stop_broker EXIT

rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# Loopback TCP bandwidth: one sender, one receiver, 1 MiB writes, 2 GiB.
loopback_mbps() {
  python3 - <<'EOF'
import socket, threading, time
total = 2 << 30
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
port = srv.getsockname()[1]
def sink():
    c, _ = srv.accept(); got = 0; buf = bytearray(1 << 20); view = memoryview(buf)
    while got < total:
        n = c.recv_into(view)
        if not n: break
        got += n
t = threading.Thread(target=sink); t.start()
s = socket.create_connection(("127.0.0.1", port)); chunk = b"\0" * (1 << 20)
start = time.time()
for _ in range(total >> 20): s.sendall(chunk)
s.close(); t.join()
print(f"{total / (time.time() - start) / 1e6:.1f}")
EOF
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run_case NAME SIZE COUNT ACKS -> appends "name produce_msgs produce_mb consume_msgs consume_mb peak_rss_kb"
run_case() {
  local name=$1 size=$2 count=$3 acks=$4
  start_broker
  local topic="bench-$name"
  local produced consumed
  produced=$("$PERF" -P -t "$topic" -p 0 -b "127.0.0.1:$PORT" -s "$size" -c "$count" -a "$acks" \
    -X linger.ms=5 -X queue.buffering.max.messages=2000000 -q 2>&1 | grep 'messages produced' || true)
  consumed=$("$PERF" -C -t "$topic" -p 0 -b "127.0.0.1:$PORT" -o beginning -c "$count" -q 2>&1 | grep 'consumed in' || true)
  local peak; peak=$(rss_kb "$BROKER_PID" VmHWM)
  stop_broker
  local pm pmb cm cmb
  pm=$(sed -E 's/.*: ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1/' <<<"$produced")
  pmb=$(sed -E 's/.*: ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\2/' <<<"$produced")
  cm=$(sed -E 's/.*: ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\1/' <<<"$consumed")
  cmb=$(sed -E 's/.*: ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\2/' <<<"$consumed")
  echo "$name $pm $pmb $cm $cmb $peak"
}

build_perf
[ -x "$WEIR" ] || { echo "bench: $WEIR not built (make build)" >&2; exit 1; }

start_broker
sleep 0.5
IDLE_KB=$(rss_kb "$BROKER_PID" VmRSS)
stop_broker

LOOPBACK=$(for _ in $(seq "$RUNS"); do loopback_mbps; done | median)

RESULTS=$(mktemp)
for _ in $(seq "$RUNS"); do
  run_case 100B-acks1 100 1000000 1 >>"$RESULTS"
  run_case 100B-acksall 100 1000000 all >>"$RESULTS"
  run_case 1KiB-acks1 1024 200000 1 >>"$RESULTS"
  run_case 1KiB-acksall 1024 200000 all >>"$RESULTS"
done

echo
echo "weir benchmark: rdkafka_performance (librdkafka $(cat "$CACHE/librdkafka.version" 2>/dev/null || echo '?'), vendored in rdkafka-sys), one partition, linger.ms=5, median of $RUNS"
echo "loopback TCP bandwidth (same run): ${LOOPBACK} MB/s; idle broker RSS: $((IDLE_KB / 1024)) MB"
printf '%-14s %14s %10s %14s %10s %12s %10s\n' workload produce_msg/s prod_MB/s consume_msg/s cons_MB/s peak_RSS_MB prod/loop
for name in 100B-acks1 100B-acksall 1KiB-acks1 1KiB-acksall; do
  col() { awk -v n="$name" -v c="$1" '$1 == n {print $c}' "$RESULTS" | median; }
  pm=$(col 2); pmb=$(col 3); cm=$(col 4); cmb=$(col 5); peak=$(col 6)
  ratio=$(awk -v a="$pmb" -v b="$LOOPBACK" 'BEGIN {printf "%.2f", a / b}')
  printf '%-14s %14s %10s %14s %10s %12s %10s\n' "$name" "$pm" "$pmb" "$cm" "$cmb" "$((${peak%.*} / 1024))" "$ratio"
done
rm -f "$RESULTS"
