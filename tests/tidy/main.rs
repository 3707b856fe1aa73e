//! Mechanical checks of the architecture invariants in ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polykey_tests::workspace_root;

/// Layers from the bottom up: a crate may depend only on lower layers.
const LAYERS: &[(&str, u8)] = &[
    ("polykey-os", 0),
    ("polykey-keys", 0),
    ("polykey-db", 1),
    ("polykey-vaults", 2),
    ("polykey-gestalts", 2),
    ("polykey-network", 3),
    ("polykey-identities", 3),
    ("polykey-node", 4),
    ("polykey-cli", 5),
    ("polykey-desktop", 5),
    ("polykey-tests", 6),
];

fn manifests() -> Vec<PathBuf> {
    let root = workspace_root();
    let workspace: toml::Table = read_toml(&root.join("Cargo.toml"));
    workspace["workspace"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            root.join(m.as_str().expect("member path"))
                .join("Cargo.toml")
        })
        .collect()
}

fn read_toml(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn layer(name: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(crate_name, _)| *crate_name == name)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("{name} has no layer in the tidy test; add it to LAYERS"))
}

#[test]
fn lower_crates_never_depend_on_higher_ones() {
    let mut checked = BTreeMap::new();
    for manifest in manifests() {
        let toml = read_toml(&manifest);
        let name = toml["package"]["name"].as_str().expect("name").to_owned();
        let own = layer(&name);
        // Plain dependencies and those of each target (`[target.'cfg(..)'.dependencies]`).
        let targets = toml.get("target").and_then(|t| t.as_table());
        let sections = ["dependencies", "build-dependencies"]
            .iter()
            .filter_map(|section| toml.get(*section).and_then(|d| d.as_table()))
            .chain(targets.into_iter().flat_map(|targets| {
                targets
                    .values()
                    .filter_map(|target| target.get("dependencies").and_then(|d| d.as_table()))
            }));
        for deps in sections {
            for dep in deps.keys().filter(|d| d.starts_with("polykey-")) {
                assert!(
                    layer(dep) < own,
                    "{name} (layer {own}) depends on {dep} (layer {}): lower crates never depend on higher ones",
                    layer(dep)
                );
            }
        }
        checked.insert(name, own);
    }
    assert!(checked.len() >= 4, "found only {checked:?}");
}

#[test]
fn typescript_bindings_are_up_to_date() {
    let path = workspace_root().join("ui/src/lib/bindings.ts");
    let expected = polykey_node::api::typescript_bindings();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &expected).expect("write bindings");
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "ui/src/lib/bindings.ts is stale; run `UPDATE_BINDINGS=1 cargo test -p polykey-tests --test tidy`"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The one crate allowed unsafe code (the Windows security calls); it
/// still denies it outside the blocks that say why they are sound.
const UNSAFE_CRATE: &str = "crates/os";

#[test]
fn libraries_open_with_a_purpose_and_forbid_unsafe() {
    for manifest in manifests() {
        let lib = manifest.with_file_name("src/lib.rs");
        if !lib.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&lib).expect("read lib.rs");
        assert!(
            text.starts_with("//!"),
            "{} must open with a //! paragraph",
            lib.display()
        );
        let rule = if manifest.parent() == Some(&workspace_root().join(UNSAFE_CRATE)) {
            "#![deny(unsafe_code)]"
        } else {
            "#![forbid(unsafe_code)]"
        };
        assert!(text.contains(rule), "{} must say {rule}", lib.display());
    }
}

#[test]
fn library_crates_never_print() {
    let mut files = Vec::new();
    rust_files(&workspace_root().join("crates"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        // Binaries (the CLI's main) may print; libraries report through
        // return values, so nothing, secret or not, reaches a terminal.
        if file
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
            || file.ends_with("main.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for banned in ["println!", "print!(", "eprintln!", "dbg!("] {
            assert!(!text.contains(banned), "{} uses {banned}", file.display());
        }
    }
}

#[test]
fn tauri_commands_are_single_expressions_calling_the_node() {
    let path = workspace_root().join("src-tauri/src/commands.rs");
    let text = std::fs::read_to_string(&path).expect("read commands.rs");
    let mut commands = 0;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "#[tauri::command]" {
            continue;
        }
        commands += 1;
        // Skip the signature (which may wrap) up to its opening brace.
        let signature = lines
            .find(|l| l.trim_end().ends_with('{'))
            .expect("fn signature");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "}").collect();
        // One expression (rustfmt may wrap it): no statements, no branching.
        let code = body.join(" ");
        for banned in [";", "let ", "if ", "match ", "for ", "while ", "loop "] {
            assert!(
                !code.contains(banned),
                "command `{}` has logic (`{}`); move it into polykey-node",
                signature.trim(),
                banned.trim()
            );
        }
    }
    assert!(commands >= 5, "found {commands} commands");
}

/// Every command the app registers is in build.rs's app manifest and
/// allowed to some window by a capability, and nothing else is: a command
/// missing from either is refused at run time ("not allowed"), which the
/// UI may show only as a blank (Settings' About was, when it was added).
#[test]
fn every_registered_command_is_in_the_manifest_and_a_capability() {
    let root = workspace_root().join("src-tauri");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).expect(p);
    let lib = read("src/lib.rs");
    let handler = lib
        .split("generate_handler![")
        .nth(1)
        .and_then(|rest| rest.split("])").next())
        .expect("generate_handler! in lib.rs");
    let registered: BTreeSet<String> = handler
        .split(',')
        .map(|c| c.trim().trim_start_matches("commands::").to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let build = read("build.rs");
    let manifest: BTreeSet<String> = build
        .split("const COMMANDS")
        .nth(1)
        .expect("COMMANDS in build.rs")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert_eq!(registered, manifest, "lib.rs registers, build.rs lists");
    let mut allowed = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("capabilities")).expect("capabilities") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("capability");
        let json: serde_json::Value = serde_json::from_str(&text).expect("capability JSON");
        for permission in json["permissions"].as_array().expect("permissions") {
            if let Some(command) = permission.as_str().and_then(|p| p.strip_prefix("allow-")) {
                allowed.insert(command.replace('-', "_"));
            }
        }
    }
    let refused: Vec<_> = registered.difference(&allowed).collect();
    assert!(refused.is_empty(), "no window may call {refused:?}");
}

/// Inside polykey-node, transport types never import the logic that fills
/// them, and the node itself never imports the client API built on it.
#[test]
fn node_modules_import_downward() {
    let src = workspace_root().join("crates/node/src");
    let read = |file: &str| std::fs::read_to_string(src.join(file)).expect("read");
    let api = read("api.rs");
    for forbidden in ["crate::peers", "crate::client_api", "crate::node::"] {
        assert!(!api.contains(forbidden), "api.rs imports {forbidden}");
    }
    assert!(
        !read("node.rs").contains("crate::client_api"),
        "node.rs imports crate::client_api"
    );
}

#[test]
fn every_os_has_its_bundles() {
    // Tauri merges tauri.<os>.conf.json over tauri.conf.json when it builds
    // for that OS; only the Linux bundles can be built on these machines.
    for (os, wanted) in [
        ("linux", &["deb", "appimage"][..]),
        ("windows", &["nsis", "msi"][..]),
        ("macos", &["app", "dmg"][..]),
    ] {
        let path = workspace_root().join(format!("tauri.{os}.conf.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let config: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let targets: Vec<&str> = config["bundle"]["targets"]
            .as_array()
            .expect("bundle.targets")
            .iter()
            .filter_map(|t| t.as_str())
            .collect();
        assert_eq!(targets, wanted, "{os}");
    }
}

/// The crates each manifest's `[profile.dev.package]` sets to `opt-level`
/// 3 (a profile cannot be shared between workspaces, so the fuzz
/// workspace keeps a list of its own).
fn optimised(manifest: &toml::Table) -> BTreeSet<String> {
    manifest["profile"]["dev"]["package"]
        .as_table()
        .expect("[profile.dev.package]")
        .iter()
        .filter(|(_, settings)| settings.get("opt-level").and_then(|l| l.as_integer()) == Some(3))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn fuzz_builds_optimise_what_the_workspace_optimises() {
    // The fuzz targets are built unoptimised (`cargo fuzz build --dev`);
    // a crate the workspace needs optimised and the fuzz list forgot made
    // a seed run past libFuzzer's timeout (one KDBX seed took over 10 s).
    let root = workspace_root();
    let workspace = optimised(&read_toml(&root.join("Cargo.toml")));
    let fuzz = optimised(&read_toml(&root.join("fuzz/Cargo.toml")));
    let missing: Vec<&String> = workspace.difference(&fuzz).collect();
    assert!(
        missing.is_empty(),
        "fuzz/Cargo.toml's [profile.dev.package] lacks opt-level 3 for {missing:?}, which the workspace's Cargo.toml optimises"
    );
}
