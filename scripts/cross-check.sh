#!/usr/bin/env bash
# The other operating systems, checked from Linux: clippy on Windows for
# both binaries (and every crate below them), the Windows CLI built for the
# Wine smoke test (tests/windows), polykey-os's own tests run under Wine,
# and clippy on macOS for the crates with macOS code. See ARCHITECTURE.md,
# "Per-OS code".
set -euo pipefail
cd "$(dirname "$0")/.."
export WINEDEBUG=-all

# Each step says how long it took (CI's budget is shared by every stage).
step_start=$SECONDS
step() {
  if [ -n "${step_name:-}" ]; then echo "    ($step_name: $((SECONDS - step_start))s)"; fi
  step_name="$1"
  step_start=$SECONDS
  [ -n "$1" ] && echo "--> $1"
  return 0
}

windows=x86_64-pc-windows-gnu
macos=aarch64-apple-darwin

step "clippy, $windows: polykey-cli, polykey-desktop"
cargo clippy --locked --target "$windows" -p polykey-cli -p polykey-desktop -- -D warnings

step "build, $windows: polykey.exe for the Wine smoke test"
cargo build --locked --target "$windows" -p polykey-cli

# The crates with macOS code or macOS build settings (db's BLAKE3): vaults
# and gestalts above them are plain Rust with no per-OS code, and checking
# them (gix) cost CI's budget more than it could find.
step "clippy, $macos: polykey-os, -keys, -db"
cargo clippy --locked --target "$macos" -p polykey-os -p polykey-keys -p polykey-db -- -D warnings

if command -v wine >/dev/null 2>&1; then
  step "polykey-os tests under Wine"
  prefix=$(mktemp -d)
  trap 'WINEPREFIX="$prefix" wineserver -k 2>/dev/null || true; rm -rf "$prefix"' EXIT
  export WINEPREFIX="$prefix"
  wineboot --init >/dev/null 2>&1
  # Wine 8 lacks bcryptprimitives!ProcessPrng, which Rust's std calls.
  x86_64-w64-mingw32-gcc -shared -O2 -o "$prefix/drive_c/windows/system32/bcryptprimitives.dll" \
    crates/os/tests/wine/bcryptprimitives.c -ladvapi32
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    cargo test --locked --target "$windows" -p polykey-os
else
  step "skipped: polykey-os tests under Wine (no wine; apt-get install wine wine64)"
fi
step ""
