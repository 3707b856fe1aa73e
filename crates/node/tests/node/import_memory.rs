//! What a hostile name takes while an import reads it, measured in a child
//! process of its own (no other test shares its memory): a name is cut to
//! 200 bytes and built no further, and a path's folders are taken no
//! further than the depth kept.

use std::io::Write;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "POLYKEY_TEST_IMPORT_MEMORY_CHILD";
/// The hostile text: 32 MiB of one-letter words, or of one-letter folders.
const TEXT_BYTES: usize = 32 * 1024 * 1024;

/// The process's peak resident memory since the last reset (KiB).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Start measuring the peak from what is resident now.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

/// Not a test of its own: the child process of the test below.
#[test]
fn helper_import_memory_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut out = std::io::stdout().lock();
    // A title or folder name of one-letter words.
    let name = "a ".repeat(TEXT_BYTES / 2);
    reset_peak();
    let before = peak_kib();
    let safe = polykey_node::import::safe_name(&name);
    assert_eq!(safe.len(), 199);
    writeln!(out, "\nname {}", peak_kib() - before).unwrap();
    drop(name);
    // A KeePassXC CSV whose group is a path of one-letter folders.
    let mut csv =
        String::from("\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\"\n\"");
    csv.push_str(&"a/".repeat(TEXT_BYTES / 2));
    csv.push_str("\",\"t\",\"u\",\"p\",\"\",\"\"\n");
    reset_peak();
    let before = peak_kib();
    let parsed = polykey_node::import::csv::read(csv.as_bytes(), None).unwrap();
    assert_eq!(parsed.items[0].folder.len(), 16);
    writeln!(out, "\nfolders {}", peak_kib() - before).unwrap();
    out.flush().unwrap();
}

#[test]
fn a_hostile_name_takes_about_its_size_while_it_is_read() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "import_memory::helper_import_memory_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let figure = |what: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(what))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no figure for {what} in {stdout:?}"))
    };
    let (name, folders) = (figure("name "), figure("folders "));
    let text = (TEXT_BYTES / 1024) as u64;
    eprintln!(
        "a name of {text} KiB took {name} KiB more; a group path of {text} KiB, {folders} KiB"
    );
    // The name: nothing of its size (before: 331,064 KiB). The CSV: the
    // file decoded and its record, read into a growing buffer, about four
    // times (before: 428,464 KiB, its 16 million names listed).
    assert!(name < text / 4, "{name} KiB for a name of {text} KiB");
    assert!(folders < 5 * text, "{folders} KiB for a path of {text} KiB");
}
