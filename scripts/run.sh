#!/usr/bin/env bash
# Install what is missing, build the UI and launch the Polykey desktop app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
npm run --prefix ui build
exec cargo run -p polykey-desktop "$@"
