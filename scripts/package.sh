#!/usr/bin/env bash
# Build the Debian package with the Tauri bundler: the `polykey-desktop` app
# with its desktop entry and icons, and the `polykey` CLI, in one `polykey`
# package. Prints the path of the .deb.
#
#   scripts/package.sh            release build (target/release/bundle/deb/)
#   scripts/package.sh --debug    the debug build, as CI and the install test use
#
# Install it with `sudo apt install ./Polykey_*.deb` (or `dpkg -i`), remove it
# with `sudo apt remove polykey`. AppImage is not built: its bundler fetches
# linuxdeploy from outside the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=(--release -p polykey-desktop -p polykey-cli)
tauri_flag=()
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  # As CI and the tests build it: a build of part of the workspace would
  # compile some crates with other features, and rebuild the app.
  build=(--workspace)
  tauri_flag=(--debug)
fi

[ -x ui/node_modules/.bin/tauri ] || npm ci --prefix ui >&2
# The app embeds ui/dist when it is compiled: build the UI first when it is
# missing or older than its sources (a fresh build would make cargo rebuild
# the app for nothing).
if [ ! -f ui/dist/index.html ] || [ -n "$(find ui/src ui/index.html -newer ui/dist/index.html -print -quit)" ]; then
  npm run --prefix ui build >&2
fi
cargo build "${build[@]}" >&2

# The bundler looks for tauri.conf.json beside the app's Cargo.toml; ours is
# at the repository root, where tauri-build reads it. A copy for the bundler,
# with its paths from src-tauri/, the package's other files and details.
conf=src-tauri/tauri.conf.json
trap 'rm -f "$conf"' EXIT
PROFILE="$profile" node -e '
  const fs = require("fs");
  const c = JSON.parse(fs.readFileSync("tauri.conf.json", "utf8"));
  c.build.frontendDist = "../" + c.build.frontendDist;
  c.bundle.icon = c.bundle.icon.map((i) => "../" + i);
  c.bundle.targets = ["deb"];
  c.bundle.publisher = "Polykey developers";
  c.bundle.longDescription =
    "Polykey keeps passwords and other secrets in vaults on your own devices, " +
    "encrypted at rest with signed history, and syncs them directly between " +
    "your devices and the people you trust. No cloud. Includes the desktop app " +
    "and the polykey command for servers and CI.";
  c.bundle.linux = {
    deb: {
      files: { "/usr/bin/polykey": `../target/${process.env.PROFILE}/polykey` },
      // The tray icon (it works without one, but then there is no tray).
      depends: ["libayatana-appindicator3-1"],
      section: "utils",
    },
  };
  fs.writeFileSync("src-tauri/tauri.conf.json", JSON.stringify(c, null, 2));
'
(cd src-tauri && ../ui/node_modules/.bin/tauri bundle "${tauri_flag[@]}" --bundles deb --ci >&2)
ls "$PWD"/target/"$profile"/bundle/deb/*.deb
