#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently:
#  - Debian packages: libclang-dev and clang (RocksDB's bindings), zlib, patch; for tests, kcat;
#  - the patched kafka-protocol crate the workspace builds with (third_party/kafka-protocol);
#  - for tests, a Python venv in .venv with confluent-kafka, kafka-python and pytest;
#  - for tests and the benchmark, Apache Kafka's jars (client, tools, broker) from Maven
#    Central into scripts/.cache/kafka-<version>/libs (scripts/kafka/versions/pom.xml pins them:
#    4.1, and 3.9 as the reference for the request versions 4.0 removed);
#  - for tests, the Go clients (franz-go, sarama) from the Go module proxy and kafkajs from
#    npm, at the versions protocol-tests/go/go.sum and protocol-tests/node/package-lock.json pin;
#    and Debian's own sarama (1.22, a client older than Kafka 4 accepts).
# `scripts/setup.sh build` installs only what building the broker needs.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

packages=(libclang-dev clang pkg-config zlib1g-dev patch)
[ "$mode" = build ] || packages+=(kcat)
# Java and Maven for Kafka's own client and tools; the machine's own JDK counts.
[ "$mode" = build ] || command -v mvn >/dev/null || packages+=(maven)
# Go and Node.js for the franz-go, sarama and kafkajs suites; the machine's own count.
[ "$mode" = build ] || command -v go >/dev/null || packages+=(golang-go)
[ "$mode" = build ] || command -v npm >/dev/null || packages+=(nodejs npm)
# Debian's sarama (1.22.1): request versions Kafka 4 removed (protocol-tests/old-sarama).
[ "$mode" = build ] || packages+=(golang-github-shopify-sarama-dev)
# Kafka 4.1's tools and broker need Java 17 or newer.
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "$mode" = build ] || [ "${java_major:-0}" -ge 17 ] || packages+=(openjdk-17-jdk-headless)
need_apt=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# kafka-protocol with bounded array lengths (third_party/kafka-protocol/README.md): the
# crates.io release, checksum-checked by cargo's download, with our patch applied. Redone
# when the patch changes.
kp_version=0.18.0
kp_dir=third_party/kafka-protocol
kp_dest="$kp_dir/kafka-protocol-$kp_version"
kp_stamp="$(cat "$kp_dir"/*.patch | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$kp_dest/.weir-patched" 2>/dev/null)" != "$kp_stamp" ]; then
  cargo_home="${CARGO_HOME:-$HOME/.cargo}"
  kp_crate() { ls "$cargo_home"/registry/cache/*/"kafka-protocol-$kp_version.crate" 2>/dev/null | head -1; }
  if [ -z "$(kp_crate)" ]; then
    # Let cargo fetch it, from a throwaway project outside this workspace (whose
    # [patch] would point at the folder being made).
    fetch_dir=$(mktemp -d)
    mkdir -p "$fetch_dir/src" && touch "$fetch_dir/src/lib.rs"
    printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nkafka-protocol = { version = "=%s", default-features = false }\n' \
      "$kp_version" >"$fetch_dir/Cargo.toml"
    cargo fetch -q --manifest-path "$fetch_dir/Cargo.toml"
    rm -rf "$fetch_dir"
  fi
  kp_tmp=$(mktemp -d)
  tar -xzf "$(kp_crate)" -C "$kp_tmp"
  for p in "$kp_dir"/*.patch; do
    patch -s -p1 -d "$kp_tmp/kafka-protocol-$kp_version" <"$p"
  done
  echo "$kp_stamp" >"$kp_tmp/kafka-protocol-$kp_version/.weir-patched"
  rm -rf "$kp_dest"
  mv "$kp_tmp/kafka-protocol-$kp_version" "$kp_dest"
  rm -rf "$kp_tmp"
fi

if [ "$mode" = build ]; then
  echo "setup (build): ok"
  exit 0
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import confluent_kafka, kafka, lz4, pytest, snappy, xxhash' >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi
# Kafka 4.1 (the reference) and the last 3.x (the reference for the versions 4.0 removed).
kafka_stamp=$(cat scripts/kafka/pom.xml scripts/kafka/versions/pom.xml | sha256sum | cut -d' ' -f1)
for property in kafka.version kafka.legacy.version; do
  version=$(sed -n "s:.*<$property>\(.*\)</$property>.*:\1:p" scripts/kafka/versions/pom.xml)
  kafka_libs="scripts/.cache/kafka-$version/libs"
  if [ "$(cat "$kafka_libs/.complete" 2>/dev/null)" != "$kafka_stamp" ]; then
    rm -rf "$kafka_libs" "$kafka_libs.tmp"
    mvn -q -B -Dstyle.color=never -f scripts/kafka/pom.xml dependency:copy-dependencies \
      -Dkafka.version="$version" -DincludeScope=runtime -DoutputDirectory="$PWD/$kafka_libs.tmp"
    mv "$kafka_libs.tmp" "$kafka_libs"
    echo "$kafka_stamp" >"$kafka_libs/.complete"
  fi
done
# The Go suite needs Go 1.26+ (franz-go and sarama require it), the Node.js one Node.js 20+
# (node --test flags): say so plainly rather than fail later.
go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
[ "${go_minor:-0}" -ge 26 ] || { echo "setup: Go 1.26 or newer is needed (found: $(go env GOVERSION 2>/dev/null || echo none))" >&2; exit 1; }
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p')
[ "${node_major:-0}" -ge 20 ] || { echo "setup: Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))" >&2; exit 1; }
(cd protocol-tests/go && go mod download)
node_stamp=$(sha256sum protocol-tests/node/package-lock.json | cut -d' ' -f1)
if [ "$(cat protocol-tests/node/node_modules/.weir-installed 2>/dev/null)" != "$node_stamp" ]; then
  (cd protocol-tests/node && npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_stamp" >protocol-tests/node/node_modules/.weir-installed
fi
echo "setup: ok"
