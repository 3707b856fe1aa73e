#!/usr/bin/env bash
# The other operating systems, checked from Linux: clippy on Windows for
# both binaries (and every crate below them), the Windows CLI built for the
# Wine smoke test (tests/windows), polykey-os's own tests run under Wine,
# and clippy on macOS for the crates whose dependencies build without
# Apple's SDK. See ARCHITECTURE.md, "Per-OS code".
set -euo pipefail
cd "$(dirname "$0")/.."
export WINEDEBUG=-all

windows=x86_64-pc-windows-gnu
macos=aarch64-apple-darwin

echo "--> clippy, $windows: polykey-cli, polykey-desktop"
cargo clippy --locked --target "$windows" -p polykey-cli -p polykey-desktop -- -D warnings

echo "--> build, $windows: polykey.exe for the Wine smoke test"
cargo build --locked --target "$windows" -p polykey-cli

echo "--> clippy, $macos: polykey-os, -keys, -db, -vaults, -gestalts"
cargo clippy --locked --target "$macos" -p polykey-os -p polykey-keys -p polykey-db \
  -p polykey-vaults -p polykey-gestalts -- -D warnings

if command -v wine >/dev/null 2>&1; then
  echo "--> polykey-os tests under Wine"
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
  echo "--> skipped: polykey-os tests under Wine (no wine; apt-get install wine wine64)"
fi
