#!/usr/bin/env bash
# Throughput, memory and start-up: weir and Apache Kafka side by side, on the same machine,
# in the same run, with the same clients.
#
#   scripts/bench.sh                 # RUNS=3 by default; figures are medians
#   RUNS=5 scripts/bench.sh
#   BROKERS=weir scripts/bench.sh    # weir only (BROKERS="weir kafka" by default)
#
# Workloads: librdkafka's rdkafka_performance (built from the source vendored in the
# rdkafka-sys crate, into scripts/.cache) producing then consuming one partition, and Kafka's
# own kafka-producer-perf-test.sh (acks=all, idempotent, 1 KiB records). Kafka is the jars of
# scripts/kafka/pom.xml run by scripts/kafka-reference: a single KRaft node with
# kafka-server-start.sh's JVM options. Every run starts a fresh broker on a fresh data
# directory; the brokers take turns workload by workload. Reported per workload and broker:
# msgs/s, MB/s, the broker's peak RSS (VmHWM) and the ratio weir/Kafka; also start-up time
# (process start to the first ApiVersions answer) and RSS once started.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
BROKERS=${BROKERS:-weir kafka}
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

# Starts a command and waits for its first ApiVersions answer on PORT; prints "PID MS".
START_PROBE='
import socket, struct, subprocess, sys, time
port, log, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
request = struct.pack(">hhih", 18, 0, 1, 5) + b"bench"  # ApiVersions v0, client id "bench"
frame = struct.pack(">i", len(request)) + request
start = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), start_new_session=True)
try:
    while time.monotonic() - start < 60:
        if proc.poll() is not None:
            sys.exit("bench: broker exited: " + open(log).read()[-2000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(frame)
                head = s.recv(4, socket.MSG_WAITALL)
                if len(head) == 4:
                    size = struct.unpack(">i", head)[0]
                    if len(s.recv(size, socket.MSG_WAITALL)) == size:
                        print(proc.pid, round((time.monotonic() - start) * 1000, 1))
                        proc = None
                        sys.exit(0)
        except OSError:
            pass
        time.sleep(0.002)
    sys.exit("bench: broker did not answer ApiVersions within 60 s")
finally:
    if proc is not None and proc.poll() is None:
        proc.kill()
'

BROKER_PID=""
STARTUP_MS=""
# start_broker weir|kafka: a fresh broker on a free port; sets BROKER_PID, PORT, DATA and
# STARTUP_MS. Kafka's storage is formatted before the clock starts.
start_broker() {
  local kind=$1 cmd out
  DATA=$(mktemp -d)
  PORT=$(free_port)
  if [ "$kind" = weir ]; then
    cmd=("$WEIR" --override "listeners=PLAINTEXT://127.0.0.1:$PORT" --override "log.dirs=$DATA/data")
  else
    local cport; cport=$(free_port)
    cmd=(scripts/kafka-reference "$DATA/kafka" "$PORT" "$cport" "log.dirs=$DATA/data")
    KAFKA_REFERENCE_FORMAT_ONLY=1 "${cmd[@]}"
  fi
  out=$(python3 -c "$START_PROBE" "$PORT" "$DATA.log" "${cmd[@]}")
  BROKER_PID=${out% *}
  STARTUP_MS=${out#* }
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 600); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  kill -9 "$BROKER_PID" 2>/dev/null || true
  rm -rf "$DATA" "$DATA.log"
  BROKER_PID=""
}
trap stop_broker EXIT

rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run_case BROKER NAME SIZE COUNT ACKS
#   -> "broker name produce_msgs produce_mb consume_msgs consume_mb peak_rss_kb"
run_case() {
  local broker=$1 name=$2 size=$3 count=$4 acks=$5
  start_broker "$broker"
  local topic="bench-$name" produced consumed
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
  echo "$broker $name ${pm:-0} ${pmb:-0} ${cm:-0} ${cmb:-0} $peak"
}

# Kafka's own producer benchmark: 200k x 1 KiB, acks=all, idempotent, as fast as it goes.
run_tool_case() {
  local broker=$1 out peak pm pmb
  start_broker "$broker"
  scripts/kafka-tool kafka-topics.sh --bootstrap-server "127.0.0.1:$PORT" --create --topic perf-tool >/dev/null
  out=$(scripts/kafka-tool kafka-producer-perf-test.sh --topic perf-tool --num-records 200000 --record-size 1024 \
    --throughput -1 --producer-props "bootstrap.servers=127.0.0.1:$PORT" acks=all enable.idempotence=true \
    2>/dev/null | tail -n 1)
  peak=$(rss_kb "$BROKER_PID" VmHWM)
  stop_broker
  pm=$(sed -E 's/^[0-9]+ records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\).*/\1/' <<<"$out")
  pmb=$(sed -E 's/^[0-9]+ records sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\).*/\2/' <<<"$out")
  echo "$broker perf-test-1KiB-acksall ${pm%.*} $pmb - - $peak"
}

build_perf
[ -x "$WEIR" ] || { echo "bench: $WEIR not built (make build)" >&2; exit 1; }

RESULTS=$(mktemp)
for _ in $(seq "$RUNS"); do
  for broker in $BROKERS; do
    start_broker "$broker"
    sleep 2
    echo "$broker startup $STARTUP_MS - - - $(rss_kb "$BROKER_PID" VmRSS)" >>"$RESULTS"
    stop_broker
  done
  for workload in "100B-acks1 100 1000000 1" "100B-acksall 100 1000000 all" \
    "1KiB-acks1 1024 200000 1" "1KiB-acksall 1024 200000 all"; do
    for broker in $BROKERS; do
      # shellcheck disable=SC2086 # the workload is a word list
      run_case "$broker" $workload >>"$RESULTS"
    done
  done
  for broker in $BROKERS; do
    run_tool_case "$broker" >>"$RESULTS"
  done
done

col() { awk -v b="$1" -v n="$2" -v c="$3" '$1 == b && $2 == n && $c != "-" {print $c}' "$RESULTS" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a != "" && b > 0) printf "%.2f", a / b; else printf "-"}'; }
mb() { awk -v k="$1" 'BEGIN {printf "%d", k / 1024}'; }

echo
echo "benchmark, median of $RUNS: rdkafka_performance (librdkafka $(cat "$CACHE/librdkafka.version" 2>/dev/null || echo '?')), one partition, linger.ms=5; kafka-producer-perf-test.sh; Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/versions/pom.xml)"
printf '%-24s %-6s %12s %9s %12s %9s %8s %7s %7s\n' workload broker prod_msg/s prod_MB/s cons_msg/s cons_MB/s peak_MB prod_x cons_x
for name in 100B-acks1 100B-acksall 1KiB-acks1 1KiB-acksall perf-test-1KiB-acksall; do
  for broker in $BROKERS; do
    pm=$(col "$broker" "$name" 3); pmb=$(col "$broker" "$name" 4)
    cm=$(col "$broker" "$name" 5); cmb=$(col "$broker" "$name" 6); peak=$(col "$broker" "$name" 7)
    px="" cx=""
    if [ "$broker" = weir ] && [[ " $BROKERS " == *" kafka "* ]]; then
      px=$(ratio "$pm" "$(col kafka "$name" 3)")
      cx=$(ratio "$cm" "$(col kafka "$name" 5)")
    fi
    printf '%-24s %-6s %12s %9s %12s %9s %8s %7s %7s\n' "$name" "$broker" "$pm" "$pmb" "${cm:--}" "${cmb:--}" \
      "$(mb "${peak%.*}")" "$px" "$cx"
  done
done
for broker in $BROKERS; do
  printf 'start-up %-6s %8s ms to the first ApiVersions answer; RSS 2 s after start: %s MB\n' "$broker" \
    "$(col "$broker" startup 3)" "$(mb "$(col "$broker" startup 7)")"
done
echo "prod_x, cons_x: weir / Kafka, same run"
rm -f "$RESULTS"
