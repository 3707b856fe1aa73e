#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks to build, run and test
# Polykey. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev
  libssl-dev libdbus-1-dev build-essential pkg-config file curl ca-certificates
  xvfb xauth xdotool webkit2gtk-driver dbus dbus-x11 gnome-keyring git openssh-client iproute2
  # Import tests make a real password store with them.
  pass gnupg
  # ...and a real KeePass database with keepassxc-cli.
  keepassxc
  # A CLI test's listener running as another user.
  python3
  # The Windows build (mingw links it) and its smoke test on a Windows API.
  gcc-mingw-w64-x86-64 wine wine64
)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v node >/dev/null 2>&1; then
  echo "==> installing Node.js and npm"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "==> installing Rust (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
export PATH="$HOME/.cargo/bin:$PATH"

# The other operating systems' targets, for the cross-platform checks.
for target in x86_64-pc-windows-gnu aarch64-apple-darwin; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "==> adding the Rust target $target"
    rustup target add "$target"
  fi
done

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "==> installing tauri-driver"
  cargo install tauri-driver --locked --version 2.1.0
fi

echo "==> installing UI packages (npm ci)"
npm ci --prefix ui --no-audit --no-fund --loglevel=error
