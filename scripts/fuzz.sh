#!/usr/bin/env bash
# Runs every cargo-fuzz target of broker/fuzz for FUZZ_SECONDS each (default 600), one
# after the other (this machine has two cores; libFuzzer uses one). Installs cargo-fuzz
# and the nightly toolchain it needs if they are missing. Crashes land in
# broker/fuzz/artifacts/<target>/; each one found becomes a regression test.
#   FUZZ_SECONDS=60 scripts/fuzz.sh            all targets, a minute each
#   scripts/fuzz.sh record_batch               one target
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh build >/dev/null
cd broker/fuzz
seconds=${FUZZ_SECONDS:-600}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== $target: ${seconds}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    tee "/tmp/weir-fuzz-$target.log" | grep -E '^#[0-9]+ +(DONE|pulse)|stat::|SUMMARY|panicked|ERROR' || true
  if grep -q -E 'SUMMARY|panicked|deadly signal' "/tmp/weir-fuzz-$target.log"; then
    echo "== $target: CRASH, see broker/fuzz/artifacts/$target and /tmp/weir-fuzz-$target.log"
    exit 1
  fi
done
