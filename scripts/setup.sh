#!/usr/bin/env bash
# Installs what the build and the tests need, idempotently:
#  - Debian packages: libclang-dev and clang (RocksDB's bindings), zlib; for tests, kcat;
#  - for tests, a Python venv in .venv with confluent-kafka, kafka-python and pytest.
# `scripts/setup.sh build` installs only what building the broker needs.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

packages=(libclang-dev clang pkg-config zlib1g-dev)
[ "$mode" = build ] || packages+=(kcat)
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

if [ "$mode" = build ]; then
  echo "setup (build): ok"
  exit 0
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import confluent_kafka, kafka, pytest' >/dev/null 2>&1; then
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
fi
echo "setup: ok"
