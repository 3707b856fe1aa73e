#!/usr/bin/env bash
# The whole test suite: install what is missing, build once, then run every
# test (UI unit tests, Rust unit and integration tests, the GUI end-to-end
# test under a virtual display). Ends with the test runner's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
stage_start=$SECONDS
timings=()
stage() {
  local now=$SECONDS
  if [ -n "${current:-}" ]; then timings+=("$(printf '%-24s %4ds' "$current" $((now - stage_start)))"); fi
  current="$1"
  stage_start=$now
  [ -n "$1" ] && echo "==> $1"
  return 0
}

stage "setup"
# The build and the test stages need room: a cold build of this workspace
# (debug, Windows and macOS checks) takes about 20 GB.
df -h . | awk 'NR==2 {print "disk: " $4 " free of " $2}'
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

stage "format check"
cargo fmt --all --check

stage "ui build + unit tests"
npm run --prefix ui build
npm run --prefix ui check
npm test --prefix ui

stage "cargo build"
# One build: the desktop binary the GUI test launches, and every test target.
cargo build --locked --workspace
cargo nextest run --locked --workspace --no-run

stage "windows + macos checks"
scripts/cross-check.sh

stage "fuzz: each libFuzzer target briefly"
# Every fuzz target under libFuzzer for POLYKEY_FUZZ_CI_SECONDS (15 by
# default), from the committed seeds, on the nightly toolchain (skipped,
# saying so, where there is none). A crash fails the run; its input is
# kept in fuzz/artifacts/TARGET. One build for all targets, unoptimised
# (no sanitizer: safe Rust; --dev: about 4 minutes cold on 2 cores, the
# crypto crates still optimised by fuzz/Cargo.toml, where the
# optimised build took 7-10 minutes of CI's budget; in 15 s most targets
# still execute tens of thousands of inputs, the KDBX and merge targets a
# few hundred). Each target's log is in
# target/fuzz-logs/; its last line is printed.
if rustup toolchain list | grep -q '^nightly'; then
  mkdir -p target/fuzz-logs
  export POLYKEY_FUZZ_DEV=1
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  (cd fuzz && cargo +nightly fuzz build --dev --sanitizer none >../target/fuzz-logs/build.log 2>&1) || {
    tail -40 target/fuzz-logs/build.log
    exit 1
  }
  for target in $(ls fuzz/fuzz_targets | sed 's/\.rs$//'); do
    log="target/fuzz-logs/$target.log"
    if ! scripts/fuzz.sh "$target" "${POLYKEY_FUZZ_CI_SECONDS:-15}" >"$log" 2>&1; then
      tail -60 "$log"
      echo "fuzz: $target FAILED (input in fuzz/artifacts/$target)"
      exit 1
    fi
    runs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz: $target: ${runs:-?} executions, no finding"
  done
else
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipped"
fi

stage ""
echo
echo "Stage timings so far ($((SECONDS - started))s in all); nextest reports its own below:"
printf '  %s\n' "${timings[@]}"

# Last, so the run ends with the test runner's summary.
echo "==> cargo nextest"
exec cargo nextest run --locked --workspace --profile "${NEXTEST_PROFILE:-default}"
