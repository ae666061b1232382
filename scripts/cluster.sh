#!/usr/bin/env bash
# The three-node example cluster of config/cluster/, on this machine.
#   scripts/cluster.sh start    format ./data/node{1,2,3} with one cluster id (once), start
#                               the three nodes in the background (logs: ./data/nodeN.log)
#                               and wait until all three brokers are registered
#   scripts/cluster.sh stop     SIGTERM each node (a controlled shutdown) and wait
#   scripts/cluster.sh status   which nodes run
# WEIR_BIN overrides the binary (default: the release build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${WEIR_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/weir}
nodes=(1 2 3)

pid_of() { cat "data/node$1.pid" 2>/dev/null || true; }
running() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

case "${1:-}" in
  start)
    [ -x "$bin" ] || { echo "no weir binary at $bin: run make build" >&2; exit 2; }
    mkdir -p data
    [ -f data/cluster.id ] || "$bin" random-uuid >data/cluster.id
    id=$(cat data/cluster.id)
    for n in "${nodes[@]}"; do
      if running "$n"; then echo "node $n already runs (pid $(pid_of "$n"))"; continue; fi
      "$bin" format -t "$id" -c "config/cluster/node$n.properties" --ignore-formatted >/dev/null
      nohup "$bin" "config/cluster/node$n.properties" >"data/node$n.log" 2>&1 &
      echo $! >"data/node$n.pid"
    done
    # A node killed without a controlled shutdown registers again once its old session
    # has expired (broker.session.timeout.ms, 9 s), as in Kafka.
    for _ in $(seq 1 300); do
      # The active controller logs each broker it unfences.
      if [ "$(cat data/node*.log 2>/dev/null | grep -o "broker_id=[123] fenced=false" | sort -u | wc -l)" -ge 3 ]; then
        echo "cluster $id: brokers 1-3 on 127.0.0.1:9092-9094 (controllers on 19092-19094); logs in data/node*.log"
        exit 0
      fi
      sleep 0.1
    done
    echo "the cluster did not form within 30 s; see data/node*.log" >&2
    exit 1
    ;;
  stop)
    for n in "${nodes[@]}"; do
      if running "$n"; then kill -TERM "$(pid_of "$n")"; fi
    done
    for n in "${nodes[@]}"; do
      while running "$n"; do sleep 0.1; done
      rm -f "data/node$n.pid"
    done
    echo "stopped"
    ;;
  status)
    for n in "${nodes[@]}"; do
      if running "$n"; then echo "node $n: running (pid $(pid_of "$n"))"; else echo "node $n: stopped"; fi
    done
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
