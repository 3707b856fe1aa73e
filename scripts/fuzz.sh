#!/usr/bin/env bash
# Run one libFuzzer target for a while: scripts/fuzz.sh TARGET [SECONDS [RUNS]]
# (stops after SECONDS, default 60, or after RUNS executions if given)
# (targets: fuzz/fuzz_targets/*.rs). Needs the nightly toolchain and
# cargo-fuzz (installed from the crate registry when missing); without a
# nightly toolchain it says so and skips. It starts from the committed
# seeds (fuzz/corpus/TARGET), keeps what it finds in
# target/fuzz-corpus/TARGET, and a crash in fuzz/artifacts/TARGET: turn
# each into a seed and a regression test (tests/fuzz_smoke.rs replays the
# seeds in every test run).
# The targets are safe Rust, so by default they run without a sanitizer,
# several times faster; POLYKEY_FUZZ_SANITIZER=address runs them under ASan.
# POLYKEY_FUZZ_DEV=1 builds them unoptimised (cargo fuzz --dev): a cold
# build in about half the time, for CI's short smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]; targets: $(ls fuzz/fuzz_targets | sed 's/\.rs$//' | tr '\n' ' ')}
seconds=${2:-60}
runs=${3:--1}
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipped $target"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
work="target/fuzz-corpus/$target"
mkdir -p "$work" "fuzz/corpus/$target"
started=$SECONDS
profile=()
[ "${POLYKEY_FUZZ_DEV:-}" = 1 ] && profile=(--dev)
# A unit may take a minute: in the unoptimised fuzz build a KDBX file's
# key derivation at its allowed bound took 14 s, which a 10 s timeout
# reported as a hang (the release import takes a fraction of that).
cargo +nightly fuzz run "${profile[@]}" --sanitizer "${POLYKEY_FUZZ_SANITIZER:-none}" "$target" "$work" "fuzz/corpus/$target" -- \
  -max_total_time="$seconds" -runs="$runs" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1
echo "fuzz: $target ran $((SECONDS - started)) s"
