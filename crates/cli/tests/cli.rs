//! The `polykey` binary against a real node directory: bootstrap, vaults,
//! secrets with `vault:path`, `secrets env` injection, JSON output, exit
//! codes, and a password that never comes from an argument.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

#[path = "../../identities/tests/fake_github/mod.rs"]
mod fake_github;

const PASSWORD: &str = "correct horse battery";

struct Node {
    dir: tempfile::TempDir,
    /// A memory-backed runtime directory of the test's own, so `secrets
    /// edit` leaves nothing in the machine's shared one.
    runtime: tempfile::TempDir,
}

impl Node {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(dir.path().join("wrong"), "not the password\n").unwrap();
        let runtime = tempfile::tempdir_in("/dev/shm").unwrap();
        Self { dir, runtime }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_polykey"));
        command
            .args(args)
            .env("PK_NODE_PATH", self.path("node"))
            .env("POLYKEY_PASSWORD_FILE", self.path("password"))
            .env("POLYKEY_FAST_KDF_FOR_TESTS", "1")
            // An agent's network stays on loopback, without mDNS.
            .env("POLYKEY_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .env("POLYKEY_MDNS", "0")
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "polykey {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn write(&self, target: &str, value: &[u8]) {
        let out = piped(&mut self.command(&["secrets", "write", target]), value);
        assert!(out.status.success());
    }
}

/// Run `command` with `input` on its standard input.
fn piped(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn bootstrapped() -> Node {
    let node = Node::new();
    let code_file = node.path("recovery-code");
    let out = node.ok(&[
        "bootstrap",
        "--recovery-code-out",
        code_file.to_str().unwrap(),
    ]);
    assert!(out.starts_with("Created node v"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&code_file)
            .unwrap()
            .split(' ')
            .count(),
        24
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&code_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    node
}

#[test]
fn vaults_and_secrets_round_trip_exactly() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "Personal"]);
    let list: serde_json::Value =
        serde_json::from_str(&node.ok(&["vaults", "list", "--format", "json"])).unwrap();
    assert_eq!(list[0]["name"], "Personal");

    // Bytes in, the same bytes out: no newline added or removed.
    node.write("Personal:db/PASSWORD", b"s3cret with spaces\n\n");
    node.write("Personal:binary", &[0, 159, 255, 10]);
    let out = node.run(&["secrets", "cat", "Personal:db/PASSWORD"]);
    assert_eq!(out.stdout, b"s3cret with spaces\n\n");
    let out = node.run(&["secrets", "cat", "Personal:binary"]);
    assert_eq!(out.stdout, [0, 159, 255, 10]);

    assert_eq!(
        node.ok(&["secrets", "ls", "Personal"])
            .lines()
            .collect::<Vec<_>>(),
        ["binary", "db/PASSWORD"]
    );
    let stat: serde_json::Value =
        serde_json::from_str(&node.ok(&["secrets", "stat", "Personal:db", "--format", "json"]))
            .unwrap();
    assert_eq!(stat["kind"], "directory");
    node.ok(&["secrets", "rename", "Personal:binary", "blob"]);
    node.ok(&["secrets", "rm", "Personal:blob"]);
    let log = node.ok(&["vaults", "log", "Personal"]);
    assert_eq!(log.lines().count(), 5, "{log}");

    // A local directory of files, added under a vault directory.
    std::fs::create_dir_all(node.path("conf/nested")).unwrap();
    std::fs::write(node.path("conf/a.env"), b"A=1").unwrap();
    std::fs::write(node.path("conf/nested/b.key"), b"B").unwrap();
    let out = node.ok(&[
        "secrets",
        "dir",
        node.path("conf").to_str().unwrap(),
        "Personal:imported",
    ]);
    assert!(out.contains("Added 2"), "{out}");
    assert_eq!(node.ok(&["vaults", "log", "Personal"]).lines().count(), 6);
    assert_eq!(
        node.run(&["secrets", "cat", "Personal:imported/nested/b.key"])
            .stdout,
        b"B"
    );
    node.ok(&["secrets", "rm", "-r", "Personal:imported"]);

    // Back to the first version (the empty vault), as a new version.
    let log: serde_json::Value =
        serde_json::from_str(&node.ok(&["vaults", "log", "Personal", "--format", "json"])).unwrap();
    let first = log.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap();
    node.ok(&["vaults", "version", "Personal", first]);
    assert_eq!(node.ok(&["secrets", "ls", "Personal"]), "");
    assert_eq!(node.ok(&["vaults", "log", "Personal"]).lines().count(), 8);
}

#[test]
fn secrets_env_runs_a_command_with_the_secret_exactly() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "ci"]);
    node.write("ci:X", b"it's \"quoted\" $HOME");
    node.write("ci:deploy/TOKEN", b"t0ken");
    let out = node.ok(&[
        "secrets",
        "env",
        "ci:X",
        "--",
        "sh",
        "-c",
        "printf %s \"$X\"",
    ]);
    assert_eq!(out, "it's \"quoted\" $HOME");

    // A directory gives every secret in it; the exit code is the command's.
    let out = node.run(&[
        "secrets",
        "env",
        "ci:deploy",
        "--",
        "sh",
        "-c",
        "test \"$TOKEN\" = t0ken && exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));

    // No command: print them, for a shell, a .env file, or a program.
    assert_eq!(
        node.ok(&["secrets", "env", "ci:X"]).trim_end(),
        r#"export X='it'\''s "quoted" $HOME'"#
    );
    let json: serde_json::Value = serde_json::from_str(&node.ok(&[
        "secrets",
        "env",
        "ci:X",
        "ci:deploy/TOKEN",
        "--env-format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["TOKEN"], "t0ken");

    // A file name that cannot be a variable name is an error by default.
    node.write("ci:bad-name", b"x");
    let out = node.run(&["secrets", "env", "ci:bad-name"]);
    assert_eq!(out.status.code(), Some(65));
    let out = node.ok(&[
        "secrets",
        "env",
        "ci:",
        "--env-invalid",
        "ignore",
        "--env-format",
        "dotenv",
    ]);
    assert!(out.contains("X=") && !out.contains("bad"), "{out}");

    // A variable that changes how programs run (planted in a shared
    // folder by someone who may write to it; any case, as Windows reads
    // `Path` as `PATH`) is not set from a folder: skipped, with a warning.
    // Named itself, it is set.
    node.write("ci:deploy/LD_PRELOAD", b"/tmp/evil.so");
    node.write("ci:deploy/Node_Options", b"--require /tmp/evil.js");
    // Less known: cargo's runner, Go's module proxy, make's `rm`.
    let runner = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER";
    node.write(&format!("ci:deploy/{runner}"), b"sh -c evil");
    node.write("ci:deploy/GOPROXY", b"https://evil.example");
    node.write("ci:deploy/RM", b"sh -c evil #");
    // A token kept under such a prefix is set.
    node.write("ci:deploy/CARGO_REGISTRY_TOKEN", b"cio-token");
    let out = node.run(&[
        "secrets",
        "env",
        "ci:deploy",
        "--",
        "sh",
        "-c",
        &format!(
            "printf %s \"${{LD_PRELOAD-unset}} ${{Node_Options-unset}} ${{{runner}-unset}} \
             ${{GOPROXY-unset}} ${{RM-unset}} $CARGO_REGISTRY_TOKEN $TOKEN\""
        ),
    ]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "unset unset unset unset unset cio-token t0ken"
    );
    let message = String::from_utf8_lossy(&out.stderr);
    for name in ["LD_PRELOAD", "Node_Options", runner, "GOPROXY", "RM"] {
        assert!(message.contains(name), "{name}: {message}");
    }
    let out = node.ok(&["secrets", "env", "ci:deploy", "ci:deploy/LD_PRELOAD"]);
    assert!(out.contains("export LD_PRELOAD="), "{out}");
    assert!(!out.contains("Node_Options"), "{out}");
}

#[test]
fn errors_have_exit_codes_and_json_and_leak_nothing() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "Personal"]);
    node.write("Personal:github", b"hunter2");

    let wrong = node
        .command(&["secrets", "cat", "Personal:github"])
        .env("POLYKEY_PASSWORD_FILE", node.path("wrong"))
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(77), "wrong password");
    assert!(wrong.stdout.is_empty());

    let unknown = node.run(&["secrets", "cat", "Nope:github", "--format", "json"]);
    assert_eq!(unknown.status.code(), Some(66));
    let error: serde_json::Value = serde_json::from_slice(&unknown.stderr).unwrap();
    assert_eq!(error["error"]["code"], "unknown_vault");

    let hostile = node.run(&["secrets", "cat", "Personal:../etc/passwd"]);
    assert_eq!(hostile.status.code(), Some(65));
    let malformed = node.run(&["secrets", "cat", "no-colon"]);
    assert_eq!(malformed.status.code(), Some(64));

    for out in [&wrong, &unknown, &hostile] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("hunter2") && !stderr.contains(PASSWORD),
            "{stderr}"
        );
    }
}

#[test]
fn exports_are_imported_in_one_commit_and_a_vault_exports_as_git() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "Personal"]);
    node.write("Personal:Imported/GitHub", b"kept as it was");
    // An empty folder named like an item to come is no free name.
    node.ok(&["secrets", "mkdir", "Personal:Imported/Door"]);
    let commits = || node.ok(&["vaults", "log", "Personal"]).lines().count();
    let before = commits();
    // A Bitwarden CSV export, as its documentation lays it out.
    std::fs::write(
        node.path("bitwarden.csv"),
        "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
         Dev,,login,GitHub,,,0,https://github.com,octo,gh-pass,JBSWY3DPEHPK3PXP\n\
         ,,note,Door,code 42,,0,,,,\n\
         ,,,,,,,,,,\n",
    )
    .unwrap();
    let file = node.path("bitwarden.csv");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "csv",
            file.to_str().unwrap(),
            "--vault",
            "Personal",
        ];
        args.extend_from_slice(extra);
        node.ok(&args)
    };
    let dry = import(&["--folder", "Imported", "--dry-run"]);
    assert!(
        dry.starts_with("Would import 2 item(s) from a Bitwarden export"),
        "{dry}"
    );
    assert_eq!(commits(), before, "a dry run writes nothing");
    let out = import(&["--folder", "Imported", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["imported"], 2);
    assert_eq!(report["skipped"][0]["row"], 4, "its line");
    assert_eq!(commits(), before + 1, "one commit");
    assert_eq!(
        node.ok(&["secrets", "ls", "Personal"])
            .lines()
            .collect::<Vec<_>>(),
        [
            "Imported/Dev/GitHub",
            "Imported/Door (2)",
            "Imported/GitHub"
        ]
    );
    assert!(
        node.ok(&["secrets", "stat", "Personal:Imported/Door"])
            .contains("directory"),
        "the empty folder is still there"
    );
    let github = node.ok(&["secrets", "cat", "Personal:Imported/Dev/GitHub"]);
    let item: serde_json::Value = serde_json::from_str(&github).unwrap();
    assert_eq!(item["title"], "GitHub");
    assert_eq!(item["password"], "gh-pass");
    assert_eq!(item["username"], "octo");
    assert_eq!(item["totp"], "JBSWY3DPEHPK3PXP");
    assert_eq!(
        node.ok(&["secrets", "cat", "Personal:Imported/GitHub"]),
        "kept as it was"
    );

    // A CSV it does not know, refused with what to do, then mapped.
    std::fs::write(
        node.path("other.csv"),
        "Site,Login,Secret\nForum,me,hunter2\n",
    )
    .unwrap();
    let other = node.path("other.csv");
    let refused = node.run(&[
        "import",
        "csv",
        other.to_str().unwrap(),
        "--vault",
        "Personal",
    ]);
    assert_eq!(refused.status.code(), Some(65));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("mapping") && !message.contains("hunter2"),
        "{message}"
    );
    node.ok(&[
        "import",
        "csv",
        other.to_str().unwrap(),
        "--vault",
        "Personal",
        "--map",
        "title=Site,username=Login,password=Secret",
    ]);
    let forum = node.ok(&["secrets", "cat", "Personal:Forum"]);
    assert!(forum.contains("hunter2"), "{forum}");
    // A CSV without a header row: its first row is an entry, its columns
    // named by place.
    std::fs::write(node.path("bare.csv"), "Garden,me,rake-42\n").unwrap();
    let bare = node.path("bare.csv");
    node.ok(&[
        "import",
        "csv",
        bare.to_str().unwrap(),
        "--vault",
        "Personal",
        "--map",
        "title=#1,username=#2,password=#3",
        "--no-header",
    ]);
    let garden = node.ok(&["secrets", "cat", "Personal:Garden"]);
    assert!(garden.contains("rake-42"), "{garden}");

    // Bitwarden's JSON export: a card and an identity beside a login.
    std::fs::write(
        node.path("bitwarden.json"),
        r#"{"encrypted": false, "folders": [], "items": [
            {"type": 3, "name": "Visa", "card": {"cardholderName": "A", "number": "4111",
             "expMonth": "12", "expYear": "2030", "code": "999"}},
            {"type": 4, "name": "Passport", "identity": {"passportNumber": "X1"}}]}"#,
    )
    .unwrap();
    let json = node.path("bitwarden.json");
    let out = node.ok(&[
        "import",
        "bitwarden",
        json.to_str().unwrap(),
        "--vault",
        "Personal",
    ]);
    assert!(
        out.contains("2 item(s) from a Bitwarden export into Personal: 1 card, 1 identity"),
        "{out}"
    );
    let passport: serde_json::Value =
        serde_json::from_str(&node.ok(&["secrets", "cat", "Personal:Passport"])).unwrap();
    assert_eq!(
        (passport["type"].as_str(), passport["id_number"].as_str()),
        (Some("identity"), Some("X1"))
    );
    let card: serde_json::Value =
        serde_json::from_str(&node.ok(&["secrets", "cat", "Personal:Visa"])).unwrap();
    assert_eq!(
        (card["type"].as_str(), card["expiry"].as_str()),
        (Some("card"), Some("12/30"))
    );
    let damaged = node.run(&[
        "import",
        "bitwarden",
        other.to_str().unwrap(),
        "--vault",
        "Personal",
    ]);
    assert_eq!(damaged.status.code(), Some(65));
    assert!(!String::from_utf8_lossy(&damaged.stderr).contains("hunter2"));

    // Out again: the vault as a plain git repository, history and all.
    let repo = node.path("exported");
    let out = node.ok(&["vaults", "export", "Personal", repo.to_str().unwrap()]);
    assert!(out.contains("NOT encrypted"), "{out}");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["fsck", "--strict"]);
    assert_eq!(
        git(&["rev-list", "--count", "main"]).trim(),
        commits().to_string()
    );
    assert!(git(&["show", "main:Imported/Dev/GitHub"]).contains("gh-pass"));
    let again = node.run(&["vaults", "export", "Personal", repo.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "an existing repository is not written over"
    );

    // A plain export other managers import, read back into a new vault.
    let json = node.path("personal.json");
    let out = node.ok(&["export", "json", "Personal", json.to_str().unwrap()]);
    assert!(out.contains("NOT encrypted"), "{out}");
    assert_eq!(mode(&json) & 0o777, 0o600);
    let again = node.run(&["export", "json", "Personal", json.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "an existing file is not written over"
    );
    node.ok(&["vaults", "create", "Moved"]);
    node.ok(&[
        "import",
        "bitwarden",
        json.to_str().unwrap(),
        "--vault",
        "Moved",
    ]);
    let moved: serde_json::Value =
        serde_json::from_str(&node.ok(&["secrets", "cat", "Moved:Imported/Dev/GitHub"])).unwrap();
    assert_eq!(moved["password"], "gh-pass");
    let csv = node.path("personal.csv");
    node.ok(&["export", "csv", "Personal", csv.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&csv)
        .unwrap()
        .starts_with("folder,favorite,type,name"));
}

#[test]
fn the_password_can_come_from_standard_input_and_never_from_an_argument() {
    let node = bootstrapped();
    let out = piped(
        Command::new(env!("CARGO_BIN_EXE_polykey"))
            .args(["vaults", "list"])
            .env("PK_NODE_PATH", node.path("node"))
            .env("POLYKEY_FAST_KDF_FOR_TESTS", "1")
            .env_remove("POLYKEY_PASSWORD_FILE"),
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert!(out.status.success());
    // There is no flag that takes a password.
    let out = node.run(&["vaults", "list", "--password", PASSWORD]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_recovery_code_is_never_printed_where_no_one_sees_it() {
    let node = Node::new();
    let out = node.run(&["bootstrap"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--recovery-code-out"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Nothing was created: the node directory has no node yet.
    assert_ne!(node.run(&["keys", "public"]).status.code(), Some(0));
    let json = node.run(&["bootstrap", "--format", "json"]);
    assert_eq!(json.status.code(), Some(64));
    assert!(json.stdout.is_empty());
}

#[test]
fn recovery_code_restores_the_same_identity_in_a_new_directory() {
    let node = bootstrapped();
    let id = node.ok(&["keys", "public"]).trim().to_owned();
    let other = Node::new();
    let out = other.ok(&[
        "bootstrap",
        "--recovery-code-file",
        node.path("recovery-code").to_str().unwrap(),
    ]);
    assert!(out.contains(&id), "{out}");
    assert_eq!(other.ok(&["keys", "public"]).trim(), id);
}

#[test]
fn a_backup_is_made_shown_and_restored_on_another_node_through_its_agent() {
    let a = bootstrapped();
    a.ok(&["vaults", "create", "Personal"]);
    a.write("Personal:bank/pin", b"kiwi-4711");
    a.write("Personal:bank/pin", b"kiwi-4712");
    std::fs::write(a.path("passphrase"), "a long backup passphrase\n").unwrap();
    std::fs::write(a.path("short"), "short\n").unwrap();
    let file = a.path("polykey.backup");
    let backup = |extra: &[&str]| {
        let mut args = vec!["backup", "create", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        a.run(&args)
    };
    // A passphrase is never an argument, and a short one is refused.
    let none = backup(&[]);
    assert_eq!(none.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--passphrase-file"));
    let short = backup(&["--passphrase-file", a.path("short").to_str().unwrap()]);
    assert_eq!(short.status.code(), Some(64));
    assert!(!file.exists());
    let made = backup(&[
        "--passphrase-file",
        a.path("passphrase").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(made["vaults"][0]["name"], "Personal");

    let b = bootstrapped();
    b.ok(&["agent", "start"]);
    let _b = AgentGuard(&b);
    std::fs::copy(&file, b.path("copy.backup")).unwrap();
    std::fs::copy(a.path("passphrase"), b.path("passphrase")).unwrap();
    let shown = b.ok(&[
        "backup",
        "show",
        b.path("copy.backup").to_str().unwrap(),
        "--passphrase-file",
        b.path("passphrase").to_str().unwrap(),
    ]);
    assert!(shown.contains("Personal"), "{shown}");
    // A wrong passphrase is told as such, and restores nothing.
    let wrong = b.run(&[
        "backup",
        "restore",
        b.path("copy.backup").to_str().unwrap(),
        "--passphrase-file",
        b.path("password").to_str().unwrap(),
    ]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert_eq!(b.ok(&["vaults", "list"]), "");
    // A file named relative to where the command runs, not the agent.
    let restored = b
        .command(&[
            "backup",
            "restore",
            "copy.backup",
            "--passphrase-file",
            "passphrase",
        ])
        .current_dir(b.path(""))
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert!(String::from_utf8_lossy(&restored.stdout).contains("Personal: restored"));
    assert_eq!(b.ok(&["secrets", "cat", "Personal:bank/pin"]), "kiwi-4712");
    assert_eq!(
        b.ok(&["vaults", "log", "Personal"]),
        a.ok(&["vaults", "log", "Personal"]),
        "the same history"
    );
}

/// Stops the agent when the test ends, whatever happens.
struct AgentGuard<'a>(&'a Node);

impl Drop for AgentGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["agent", "stop"]);
    }
}

/// A process's core file size limit, soft and hard, from `/proc`.
fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let mut values = line["Max core file size".len()..].split_whitespace();
    format!("{} {}", values.next().unwrap(), values.next().unwrap())
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_background_agent_serves_the_cli_with_session_tokens() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "ci"]);
    let out = node.ok(&["agent", "start"]);
    let _guard = AgentGuard(&node);
    assert!(out.starts_with("Agent started"), "{out}");
    // The password is nowhere in the agent's command line (it came over a pipe).
    let pid: u32 = out
        .trim()
        .trim_start_matches("Agent started (pid ")
        .trim_end_matches(')')
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        cmdline.contains("agent") && !cmdline.contains(PASSWORD),
        "{cmdline}"
    );
    // Its memory (keys, secrets) never goes to a crash dump.
    assert_eq!(core_limit(pid), "0 0", "the agent may write a core dump");
    let socket = node.path("node").join("client.sock");
    let token_file = node.path("node").join("session.token");
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(&token_file), 0o600);
    let status: serde_json::Value =
        serde_json::from_str(&node.ok(&["agent", "status", "--format", "json"])).unwrap();
    assert_eq!(status["status"], "running");
    assert_eq!(status["state"], "unlocked");

    // The agent holds the node directory; commands go through it, with the
    // token and no password.
    let no_password = |args: &[&str]| {
        node.command(args)
            .env("POLYKEY_PASSWORD_FILE", node.path("wrong"))
            .output()
            .unwrap()
    };
    node.write("ci:X", b"from the agent");
    let out = no_password(&[
        "secrets",
        "env",
        "ci:X",
        "--",
        "sh",
        "-c",
        "printf %s \"$X\"",
    ]);
    assert_eq!(out.stdout, b"from the agent");
    assert!(out.status.success());

    // A folder added through the agent is one commit, whatever its size.
    std::fs::create_dir_all(node.path("many/sub")).unwrap();
    for i in 0..300 {
        std::fs::write(node.path(&format!("many/f{i:03}")), format!("v{i}")).unwrap();
    }
    std::fs::write(node.path("many/sub/deep"), [0u8, 255]).unwrap();
    let commits = || node.ok(&["vaults", "log", "ci"]).lines().count();
    let before = commits();
    let out = no_password(&[
        "secrets",
        "dir",
        node.path("many").to_str().unwrap(),
        "ci:many",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Added 301"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(commits(), before + 1);
    assert_eq!(
        no_password(&["secrets", "cat", "ci:many/sub/deep"]).stdout,
        [0, 255]
    );
    assert_eq!(
        no_password(&["secrets", "cat", "ci:many/f299"]).stdout,
        b"v299"
    );

    // A forged token is refused (and the wrong password cannot replace it).
    let token = std::fs::read_to_string(&token_file).unwrap();
    std::fs::write(&token_file, "0".repeat(64)).unwrap();
    let out = no_password(&["secrets", "cat", "ci:X"]);
    assert_eq!(
        out.status.code(),
        Some(77),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // lockall revokes every token: the old one no longer works.
    std::fs::write(&token_file, &token).unwrap();
    node.ok(&["agent", "lockall"]);
    assert!(!token_file.exists());
    std::fs::write(&token_file, &token).unwrap();
    let out = no_password(&["secrets", "cat", "ci:X"]);
    assert_eq!(out.status.code(), Some(77));

    // The password logs in again (and unlocks the node).
    node.ok(&["agent", "unlock"]);
    assert_eq!(
        node.run(&["secrets", "cat", "ci:X"]).stdout,
        b"from the agent"
    );

    node.ok(&["agent", "stop"]);
    assert!(!socket.exists());
    let status: serde_json::Value =
        serde_json::from_str(&node.ok(&["agent", "status", "--format", "json"])).unwrap();
    assert_eq!(status["status"], "stopped");
    // Without the agent the CLI opens the directory itself again.
    assert_eq!(
        node.run(&["secrets", "cat", "ci:X"]).stdout,
        b"from the agent"
    );
}

#[test]
fn a_piped_secret_is_never_taken_for_the_password_when_a_session_ended() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "ci"]);
    node.write("ci:X", b"before");
    node.ok(&["agent", "start"]);
    let _guard = AgentGuard(&node);
    // The saved session ends (a lock, its idle time or its lifetime).
    std::fs::remove_file(node.path("node").join("session.token")).unwrap();
    // The password itself, piped as a secret's value, is not taken for it.
    let out = piped(
        node.command(&["secrets", "write", "ci:X"])
            .env_remove("POLYKEY_PASSWORD_FILE"),
        format!("{PASSWORD}\n").as_bytes(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("--password-file"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_eq!(node.run(&["secrets", "cat", "ci:X"]).stdout, b"before");
    // Nor is a file named as standard input (the session ended again:
    // `secrets cat` above logged in with the password file).
    // However it is spelt.
    std::fs::remove_file(node.path("node").join("session.token")).unwrap();
    for stdin in [
        "/dev/stdin",
        "//dev/stdin",
        "/dev/./stdin",
        "/dev/../dev/fd/0",
    ] {
        let out = piped(
            node.command(&["keys", "sign", stdin])
                .env_remove("POLYKEY_PASSWORD_FILE"),
            format!("{PASSWORD}\n").as_bytes(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{stdin}: {stderr}");
        assert!(stderr.contains("--password-file"), "{stdin}: {stderr}");
    }
    // Or a file also redirected to it.
    let file = node.path("to-sign.txt");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let out = node
        .command(&["keys", "sign", file.to_str().unwrap()])
        .env_remove("POLYKEY_PASSWORD_FILE")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    // With the password from a file, the piped value is written.
    node.write("ci:X", b"after");
    assert_eq!(node.run(&["secrets", "cat", "ci:X"]).stdout, b"after");
}

/// What listens on a socket as another user (nobody): it says it is
/// ready, then prints each line a client sends, answering each that the
/// client must log in.
#[cfg(unix)]
const OTHER_USERS_LISTENER: &str = r#"
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(4)
s.settimeout(20)
print("ready", flush=True)
try:
    while True:
        c, _ = s.accept()
        c.settimeout(5)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        print(data.decode("utf-8", "replace"), flush=True)
        try:
            c.sendall(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"log in","data":{"code":"unauthorised"}}}\n')
        except OSError:
            # A client that only looked at who listens has gone.
            pass
        c.close()
except Exception:
    pass
"#;

/// A node directory another user can write to (named by PK_NODE_PATH, say)
/// holds their listener where the agent's socket would be: the CLI sends
/// it neither a token nor the password. Before, it sent both.
#[cfg(unix)]
#[test]
fn the_cli_sends_nothing_to_a_socket_another_user_listens_on() {
    use std::io::{BufRead, Read};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Another user's process needs root to start (CI runs as root).
    if !std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:\t0\t")))
    {
        eprintln!("skipped: starting another user's listener needs root");
        return;
    }
    let node = Node::new();
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let theirs = shared.path().join("node");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(theirs.join("session.token"), "a".repeat(64)).unwrap();
    let mut listener = Command::new("python3")
        .arg("-c")
        .arg(OTHER_USERS_LISTENER)
        .arg(theirs.join("client.sock"))
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut said = std::io::BufReader::new(listener.stdout.take().unwrap());
    let mut ready = String::new();
    said.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let out = node
        .command(&["vaults", "list"])
        .env("PK_NODE_PATH", &theirs)
        .output()
        .unwrap();
    // Asking only for the node's id, it stops alike.
    let public = node
        .command(&["keys", "public"])
        .env("PK_NODE_PATH", &theirs)
        .output()
        .unwrap();
    listener.kill().unwrap();
    listener.wait().unwrap();
    let mut heard = String::new();
    said.read_to_string(&mut heard).unwrap();
    assert!(
        heard.trim().is_empty(),
        "the other user's listener heard {heard:?} (the command said {})",
        String::from_utf8_lossy(&out.stderr)
    );
    // And says why, rather than opening the directory here.
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(told.contains("another user's program listens"), "{told}");
    assert_eq!(out.status.code(), Some(77), "{told}");
    let told = String::from_utf8_lossy(&public.stderr);
    assert!(told.contains("another user's program listens"), "{told}");
    assert_eq!(public.status.code(), Some(77), "{told}");
}

#[test]
fn two_agents_pair_with_invite_and_join_and_a_vault_syncs() {
    let (a, b) = (bootstrapped(), bootstrapped());
    a.ok(&["vaults", "create", "shared"]);
    a.write("shared:API_KEY", b"k-123");
    a.ok(&["agent", "start"]);
    let _a = AgentGuard(&a);
    b.ok(&["agent", "start"]);
    let _b = AgentGuard(&b);

    let invitation: serde_json::Value =
        serde_json::from_str(&a.ok(&["invite", "--format", "json"])).unwrap();
    let code = invitation["code"].as_str().unwrap();
    assert_eq!(invitation["words"].as_str().unwrap().split(' ').count(), 4);
    // B joins (accepting its digits); A's person then confirms the same
    // digits; nothing is recorded before.
    let joined = std::thread::scope(|scope| {
        // The code from standard input: an argument is seen by every
        // user of the machine while `join` waits.
        let joining = scope.spawn(|| {
            let mut child = b
                .command(&["join", "--yes", "--format", "json"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(format!("{code}\n").as_bytes()).unwrap();
            drop(stdin);
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        });
        let mut confirmed = None;
        for _ in 0..200 {
            let state: serde_json::Value =
                serde_json::from_str(&a.ok(&["nodes", "getall", "--format", "json"])).unwrap();
            assert_eq!(state.as_array().unwrap().len(), 1, "nothing recorded yet");
            let out = a.run(&["nodes", "confirm", "--format", "json"]);
            if out.status.success() {
                confirmed = Some(String::from_utf8(out.stdout).unwrap());
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let confirmed: serde_json::Value = serde_json::from_str(&confirmed.unwrap()).unwrap();
        let joined: serde_json::Value = serde_json::from_str(&joining.join().unwrap()).unwrap();
        assert_eq!(confirmed["fingerprint"], joined["fingerprint"]);
        joined
    });
    assert_eq!(joined["fingerprint"].as_str().unwrap().len(), 7);

    // B receives A's vault, through its agent.
    let mut synced = false;
    for _ in 0..200 {
        let out = b.run(&["secrets", "cat", "shared:API_KEY"]);
        if out.stdout == b"k-123" {
            synced = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(synced, "the vault never reached B");
    let devices: serde_json::Value =
        serde_json::from_str(&b.ok(&["nodes", "getall", "--format", "json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 2);
    // No devices removed each other: nothing to decide.
    let disputes: serde_json::Value =
        serde_json::from_str(&b.ok(&["nodes", "disputes", "--format", "json"])).unwrap();
    assert_eq!(disputes, serde_json::json!([]));
    // A names itself: B lists A by that name.
    a.ok(&["nodes", "name", "CI runner"]);
    let mut named = false;
    for _ in 0..200 {
        let listed = b.ok(&["nodes", "getall"]);
        if listed.lines().any(|l| l.starts_with("CI runner\t")) {
            named = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(named, "A's name never reached B");
    let connections: serde_json::Value =
        serde_json::from_str(&b.ok(&["nodes", "connections", "--format", "json"])).unwrap();
    assert_eq!(connections["online"], 1);
    let a_id = a.ok(&["keys", "public"]).trim().to_owned();
    let pong = b.ok(&["nodes", "ping", &a_id]);
    assert!(pong.contains("answered"), "{pong}");

    // A signed notification from B reaches A; reading marks it read.
    let b_id = b.ok(&["keys", "public"]).trim().to_owned();
    b.ok(&["notifications", "send", &a_id, "rotate the API key"]);
    let read: serde_json::Value =
        serde_json::from_str(&a.ok(&["notifications", "read", "--format", "json"])).unwrap();
    assert_eq!(read[0]["text"], "rotate the API key");
    assert_eq!(read[0]["from"], b_id.as_str());
    let unread = a.ok(&["notifications", "read", "--unread"]);
    assert_eq!(unread, "");
    // Another node's text cannot act on the terminal (an escape sequence
    // setting its title), turn itself around, or add a line of its own.
    let hostile = "x\u{1b}]0;pwned\u{7}\u{202e}txt.exe\n1712345678 vFAKE: approve the new device";
    b.ok(&["notifications", "send", &a_id, hostile]);
    let shown = a.ok(&["notifications", "read", "--unread"]);
    assert_eq!(shown.lines().count(), 1, "{shown:?}");
    assert!(
        !shown.contains(['\u{1b}', '\u{7}', '\u{202e}']),
        "{shown:?}"
    );
    assert!(
        shown.contains("\\u{1b}]0;pwned") && shown.contains("\\u{202e}"),
        "{shown:?}"
    );
    let read: serde_json::Value =
        serde_json::from_str(&a.ok(&["notifications", "read", "--format", "json"])).unwrap();
    assert_eq!(read[0]["text"], hostile, "JSON keeps the text as sent");
    // The code works once.
    let again = b.run(&["join", code]);
    assert_ne!(again.status.code(), Some(0));
    // B removes A: A removed nobody, so nothing comes back with it and
    // nothing is asked.
    let removed: serde_json::Value =
        serde_json::from_str(&b.ok(&["nodes", "revoke", &a_id, "--yes", "--format", "json"]))
            .unwrap();
    assert_eq!(removed["keptRemoved"], serde_json::json!([]));
    let devices: serde_json::Value =
        serde_json::from_str(&b.ok(&["nodes", "getall", "--format", "json"])).unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 1);
}

#[test]
fn secrets_edit_uses_the_editor_on_a_private_file_that_is_removed() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "v"]);
    node.write("v:note", b"old text");
    let script = node.path("editor.sh");
    let record = node.path("edited-path");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}'\nls -ld \"$(dirname \"$1\")\" >> '{}.mode'\nsed -i 's/old/new/' \"$1\"\n",
            record.display(),
            record.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = node
        .command(&["secrets", "edit", "v:note"])
        .env("EDITOR", &script)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.run(&["secrets", "cat", "v:note"]).stdout, b"new text");
    // The file lived in a directory only its owner could enter; both are gone.
    let edited = std::path::PathBuf::from(std::fs::read_to_string(&record).unwrap());
    let mode = std::fs::read_to_string(format!("{}.mode", record.display())).unwrap();
    assert!(mode.starts_with("drwx------"), "{mode}");
    assert!(!edited.exists() && !edited.parent().unwrap().exists());

    // An editor that fails saves nothing.
    let out = node
        .command(&["secrets", "edit", "v:note"])
        .env("EDITOR", "false")
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70));
    assert_eq!(node.run(&["secrets", "cat", "v:note"]).stdout, b"new text");
}

/// A secret's text (another person with write access chose it) may carry
/// a modeline; vim reads none, even where the user's vimrc turns them on
/// (this one would save the text with DOS line ends).
#[test]
fn secrets_edit_with_vim_reads_no_modeline_from_the_secret() {
    let text = b"token-4711\n# vim: set fileformat=dos :\n";
    let Some((node, home)) = note_for_vim(text) else {
        return;
    };
    // A vimrc that turns modelines on, and one as many begin (its own
    // group's autocommands cleared; `set nocompatible` turns modelines
    // back on for any user but root). A bare `autocmd!` clearing every
    // group would turn them on again (README).
    for vimrc in [
        "set modeline modelines=5\n",
        "augroup vimrc\nautocmd!\naugroup END\nset nocompatible\nset modeline\n",
    ] {
        std::fs::write(home.path().join(".vimrc"), vimrc).unwrap();
        edit_with_vim(&node, home.path(), "vim -c wq");
        assert_eq!(
            node.run(&["secrets", "cat", "v:note"]).stdout,
            text,
            "{vimrc}"
        );
    }
}

/// A node with `v:note` holding `text`, and an empty home directory for
/// vim; none (said on stderr) where this machine has no vim.
fn note_for_vim(text: &[u8]) -> Option<(Node, tempfile::TempDir)> {
    if !std::path::Path::new("/usr/bin/vim").exists() {
        eprintln!("skipped: no vim on this machine");
        return None;
    }
    let node = bootstrapped();
    node.ok(&["vaults", "create", "v"]);
    node.write("v:note", text);
    Some((node, tempfile::tempdir().unwrap()))
}

/// `secrets edit v:note` with `editor` (a vim command line) and `home`
/// as the home directory (its vimrc, its viminfo); it must succeed.
fn edit_with_vim(node: &Node, home: &std::path::Path, editor: &str) {
    let out = node
        .command(&["secrets", "edit", "v:note"])
        .env("HOME", home)
        .env("EDITOR", editor)
        .env_remove("VISUAL")
        .env_remove("VIMINIT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn secrets_edit_with_vim_leaves_no_copy_in_the_home_directory() {
    // Vim keeps deleted text in ~/.viminfo (on disk) unless told not to.
    let Some((node, home)) = note_for_vim(b"old-secret-4711") else {
        return;
    };
    edit_with_vim(
        &node,
        home.path(),
        "vim -c 'normal ddinew-secret-0815' -c wq",
    );
    // (Vim ends the file with a newline.)
    assert_eq!(
        node.run(&["secrets", "cat", "v:note"]).stdout,
        b"new-secret-0815\n"
    );
    let mut files = Vec::new();
    let mut dirs = vec![home.path().to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = std::fs::read(&file).unwrap();
        let found = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        assert!(
            !found(b"old-secret-4711") && !found(b"new-secret-0815"),
            "{} keeps the secret",
            file.display()
        );
    }
}

#[test]
fn shell_completions_are_printed() {
    let node = Node::new();
    let bash = node.ok(&["completions", "bash"]);
    assert!(
        bash.contains("polykey") && bash.contains("secrets"),
        "{bash}"
    );
}

/// Replace what changes from run to run (NodeIds, vault and commit ids,
/// times) so outputs can be compared with their snapshots.
fn redact(text: &str) -> String {
    let mut out = String::new();
    for token in text.split_inclusive(|c: char| !(c.is_ascii_alphanumeric())) {
        let (word, rest) = match token.char_indices().last() {
            Some((i, c)) if !c.is_ascii_alphanumeric() => (&token[..i], &token[i..]),
            _ => (token, ""),
        };
        let hex = !word.is_empty() && word.bytes().all(|b| b.is_ascii_hexdigit());
        let redacted = if word.len() == 53 && word.starts_with('v') {
            "[nodeid]"
        } else if hex && word.len() == 40 {
            "[commit]"
        } else if hex && word.len() == 32 {
            "[vaultid]"
        } else if hex && word.len() == 8 {
            "[short]"
        } else if word.len() == 10 && word.bytes().all(|b| b.is_ascii_digit()) {
            "[time]"
        } else {
            word
        };
        out.push_str(redacted);
        out.push_str(rest);
    }
    out
}

/// Each command's output for people and for programs, as snapshots.
#[test]
fn human_and_json_output_snapshots() {
    let node = bootstrapped();
    let mut transcript = String::new();
    let mut show = |args: &[&str], stdin: Option<&[u8]>| {
        let out = match stdin {
            Some(value) => {
                let mut child = node
                    .command(args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(value).unwrap();
                child.wait_with_output().unwrap()
            }
            None => node.run(args),
        };
        transcript.push_str(&format!(
            "$ polykey {}\n[exit {}]\n{}{}\n",
            args.join(" "),
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    };
    for format in ["human", "json"] {
        let f = |args: &[&'static str]| -> Vec<&'static str> {
            let mut all = args.to_vec();
            all.extend(["--format", if format == "json" { "json" } else { "human" }]);
            all
        };
        let vault = if format == "json" { "j" } else { "h" };
        let target = |path: &str| format!("{vault}:{path}");
        show(
            &f(&["vaults", "create"])
                .into_iter()
                .chain([vault])
                .collect::<Vec<_>>(),
            None,
        );
        show(&f(&["vaults", "list"]), None);
        show(
            &f(&["secrets", "write"])
                .into_iter()
                .chain([target("db/PASS").as_str()])
                .collect::<Vec<_>>(),
            Some(b"pw"),
        );
        show(
            &f(&["secrets", "ls"])
                .into_iter()
                .chain([vault])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "stat"])
                .into_iter()
                .chain([target("db").as_str()])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "cat"])
                .into_iter()
                .chain([target("db/PASS").as_str()])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "env"])
                .into_iter()
                .chain([target("db").as_str()])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "mkdir"])
                .into_iter()
                .chain([target("empty").as_str()])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "rename"])
                .into_iter()
                .chain([target("db/PASS").as_str(), "db/PASSWORD"])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["secrets", "rm"])
                .into_iter()
                .chain([target("db/PASSWORD").as_str()])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["vaults", "log"])
                .into_iter()
                .chain([vault])
                .collect::<Vec<_>>(),
            None,
        );
        show(
            &f(&["vaults", "rename"])
                .into_iter()
                .chain([vault, "renamed"])
                .collect::<Vec<_>>(),
            None,
        );
        show(&f(&["vaults", "delete", "renamed"]), None);
        show(&f(&["secrets", "cat", "missing:x"]), None);
        show(&f(&["secrets", "cat", "no-colon"]), None);
        show(&f(&["keys", "public"]), None);
        show(&f(&["agent", "status"]), None);
    }
    insta::assert_snapshot!(redact(&transcript));
}

#[test]
fn keys_encrypt_decrypt_sign_verify_and_change_the_password() {
    let node = bootstrapped();
    std::fs::write(node.path("message"), b"launch codes").unwrap();
    let message = node.path("message");
    let message = message.to_str().unwrap();

    let sealed = node.ok(&["keys", "encrypt", message]);
    assert!(!sealed.contains("launch"));
    std::fs::write(node.path("sealed"), &sealed).unwrap();
    let out = node.run(&["keys", "decrypt", node.path("sealed").to_str().unwrap()]);
    assert_eq!(out.stdout, b"launch codes");

    let signature = node.ok(&["keys", "sign", message]).trim().to_owned();
    node.ok(&["keys", "verify", message, &signature]);
    std::fs::write(node.path("message"), b"launch codez").unwrap();
    let out = node.run(&["keys", "verify", message, &signature]);
    assert_eq!(out.status.code(), Some(65));

    std::fs::write(node.path("new"), "a brand new password\n").unwrap();
    node.ok(&[
        "keys",
        "password",
        "--new-password-file",
        node.path("new").to_str().unwrap(),
    ]);
    assert_eq!(node.run(&["vaults", "list"]).status.code(), Some(77));
    let out = node
        .command(&["vaults", "list"])
        .env("POLYKEY_PASSWORD_FILE", node.path("new"))
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// The agent, pairing, nodes, notifications and keys commands' output for
/// people and for programs, as snapshots (random codes, keys and
/// signatures replaced).
#[test]
fn agent_pairing_nodes_and_keys_output_snapshots() {
    let node = bootstrapped();
    std::fs::write(node.path("file"), b"signed words").unwrap();
    let file = node.path("file").to_str().unwrap().to_owned();
    let mut transcript = String::new();
    let mut show = |args: &[&str], opaque: bool| {
        let out = node.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stdout = if opaque && out.status.success() {
            "[random]\n".to_owned()
        } else {
            stdout
        };
        let shown: Vec<&str> = args
            .iter()
            .map(|a| if a.len() > 60 { "SIGNATURE" } else { a })
            .collect();
        transcript.push_str(&format!(
            "$ polykey {}\n[exit {}]\n{}{}\n",
            shown.join(" ").replace(&file, "FILE"),
            out.status.code().unwrap_or(-1),
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    for format in ["human", "json"] {
        let f = |args: &[&str]| -> Vec<String> {
            let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            all.extend(["--format".into(), format.into()]);
            all
        };
        let mut run = |args: &[&str], opaque: bool| {
            let all = f(args);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            show(&refs, opaque)
        };
        run(&["agent", "lock"], false);
        run(&["agent", "start"], true);
        run(&["agent", "status"], false);
        run(&["nodes", "name", " "], false);
        run(&["nodes", "name", "Build server"], false);
        run(&["nodes", "getall"], true);
        run(&["nodes", "connections"], false);
        run(&["invite", "--no-wait"], true);
        run(&["notifications", "read"], false);
        run(&["notifications", "clear"], false);
        let signature = run(&["keys", "sign", &file], true);
        let signature = if format == "json" {
            serde_json::from_str::<serde_json::Value>(&signature).unwrap()["signature"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            signature
        };
        run(&["keys", "verify", &file, &signature], false);
        run(&["keys", "verify", &file, &"A".repeat(88)], false);
        run(&["keys", "encrypt", &file], true);
        run(&["agent", "lock"], false);
        run(&["agent", "unlock"], false);
        run(&["agent", "lockall"], false);
        run(&["agent", "stop"], false);
        run(&["agent", "stop"], false);
    }
    insta::assert_snapshot!(redact(&transcript));
}

/// The remaining commands' output (bootstrap, create, dir, edit, version,
/// join, nodes add/find/ping without an agent, decrypt, password,
/// completions), for people and for programs.
#[test]
fn remaining_commands_output_snapshots() {
    let mut transcript = String::new();
    for format in ["human", "json"] {
        let node = Node::new();
        std::fs::create_dir_all(node.path("dir/sub")).unwrap();
        std::fs::write(node.path("dir/sub/K"), b"v").unwrap();
        std::fs::write(node.path("value"), b"v").unwrap();
        std::fs::write(node.path("new"), "another password 2\n").unwrap();
        let mut show = |args: &[&str], opaque: bool, editor: Option<&str>| {
            let mut command = node.command(args);
            command.arg("--format").arg(format);
            if let Some(editor) = editor {
                command.env("EDITOR", editor).env_remove("VISUAL");
            }
            let out = command.output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let shown = if opaque && out.status.success() {
                "[random]\n".to_owned()
            } else {
                stdout.clone()
            };
            let dir = node.dir.path().to_str().unwrap().to_owned();
            let args = args.join(" ");
            let entry = format!(
                "$ polykey {args} --format {format}\n[exit {}]\n{shown}{}\n",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr)
            );
            transcript.push_str(&entry.replace(&dir, "DIR"));
            stdout
        };
        let code_file = node.path("code");
        show(
            &[
                "bootstrap",
                "--recovery-code-out",
                code_file.to_str().unwrap(),
            ],
            false,
            None,
        );
        show(&["vaults", "create", "v"], false, None);
        let value = node.path("value");
        show(
            &["secrets", "create", value.to_str().unwrap(), "v:K"],
            false,
            None,
        );
        show(
            &["secrets", "create", value.to_str().unwrap(), "v:K"],
            false,
            None,
        );
        show(
            &[
                "secrets",
                "dir",
                node.path("dir").to_str().unwrap(),
                "v:imported",
            ],
            false,
            None,
        );
        show(&["secrets", "edit", "v:K"], false, Some("true"));
        show(&["secrets", "edit", "v:K"], false, Some("false"));
        let log = node.ok(&["vaults", "log", "v", "--format", "json"]);
        let log: serde_json::Value = serde_json::from_str(&log).unwrap();
        let first = log.as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        show(&["vaults", "version", "v", &first], false, None);
        show(&["join", "polykey-pair:not-a-code"], false, None);
        show(
            &["nodes", "add", "vabc", "/ip4/127.0.0.1/tcp/1"],
            false,
            None,
        );
        show(&["nodes", "find", "vabc"], false, None);
        show(&["nodes", "ping", "vabc"], false, None);
        let sealed = node.ok(&["keys", "encrypt", value.to_str().unwrap()]);
        std::fs::write(node.path("sealed"), sealed).unwrap();
        show(
            &["keys", "decrypt", node.path("sealed").to_str().unwrap()],
            false,
            None,
        );
        show(
            &[
                "keys",
                "password",
                "--new-password-file",
                node.path("new").to_str().unwrap(),
            ],
            false,
            None,
        );
        show(&["completions", "bash"], true, None);
    }
    insta::assert_snapshot!(redact(&transcript));
}

#[test]
fn a_deleted_vault_waits_in_recently_deleted_and_comes_back() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "ci"]);
    node.write("ci:TOKEN", b"t-1");
    let out = node.ok(&["vaults", "delete", "ci"]);
    assert!(out.contains("restorable for 30 days"), "{out}");
    assert_eq!(node.ok(&["vaults", "list"]).trim(), "");
    let deleted: serde_json::Value =
        serde_json::from_str(&node.ok(&["vaults", "deleted", "--format", "json"])).unwrap();
    assert_eq!(deleted[0]["name"], "ci");
    let id = deleted[0]["id"].as_str().unwrap().to_owned();
    node.ok(&["vaults", "restore", &id]);
    assert_eq!(node.ok(&["secrets", "cat", "ci:TOKEN"]), "t-1");
    let again: serde_json::Value =
        serde_json::from_str(&node.ok(&["vaults", "deleted", "--format", "json"])).unwrap();
    assert_eq!(again.as_array().unwrap().len(), 0);
}

/// Every entry under `root` (and `root` itself): path, directory?, mode.
#[cfg(unix)]
fn modes(root: &std::path::Path) -> Vec<(String, bool, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((
            path.display().to_string(),
            meta.is_dir(),
            meta.permissions().mode() & 0o777,
        ));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out
}

#[cfg(unix)]
fn assert_private(root: &std::path::Path) {
    for (path, is_dir, mode) in modes(root) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{path} is {mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn every_file_of_a_fresh_node_is_private_under_umask_022() {
    let node = Node::new();
    // The real binary under the umask most systems have: files would be
    // 0644 and directories 0755 if created without their own mode.
    let run = |args: &[&str], input: Option<&[u8]>| {
        let plain = node.command(args);
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("umask 022; exec \"$0\" \"$@\"")
            .arg(plain.get_program())
            .args(plain.get_args());
        for (key, value) in plain.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        if let Some(input) = input {
            stdin.write_all(input).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "polykey {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let code = node.path("recovery-code");
    run(
        &["bootstrap", "--recovery-code-out", code.to_str().unwrap()],
        None,
    );
    run(&["vaults", "create", "v"], None);
    run(&["secrets", "write", "v:note"], Some(b"a secret"));
    let dir = node.path("node");
    assert_private(&dir);
    // A link where the log goes is replaced, not written through.
    let victim = node.path("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("agent.log")).unwrap();
    run(&["agent", "start"], None);
    let _guard = AgentGuard(&node);
    run(&["secrets", "write", "v:other"], Some(b"another"));
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
    assert!(std::fs::symlink_metadata(dir.join("agent.log"))
        .unwrap()
        .is_file());
    assert!(dir.join("session.token").exists());
    assert_private(&dir);
    run(&["agent", "stop"], None);
    assert_private(&dir);
}

/// The private directory `secrets edit` keeps its files in, under `base`.
#[cfg(unix)]
fn edit_dir(base: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    base.join(format!("polykey-edit-{uid}"))
}

#[cfg(unix)]
fn executable(path: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(unix)]
#[test]
fn secrets_edit_interrupted_by_sighup_leaves_no_file() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "v"]);
    node.write("v:note", b"old text");
    // A memory-backed runtime directory of the test's own.
    let runtime = tempfile::tempdir_in("/dev/shm").unwrap();
    let record = node.path("edited-path");
    let script = node.path("editor.sh");
    executable(
        &script,
        &format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{}.part'\nmv '{0}.part' '{0}'\nexec sleep 30\n",
            record.display()
        ),
    );
    for (signal, code) in [("HUP", 129), ("TERM", 143), ("INT", 130)] {
        let _ = std::fs::remove_file(&record);
        let mut child = node
            .command(&["secrets", "edit", "v:note"])
            .env("EDITOR", &script)
            .env_remove("VISUAL")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !record.exists() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the editor never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let edited = std::path::PathBuf::from(std::fs::read_to_string(&record).unwrap());
        assert!(edited.starts_with(runtime.path()), "{}", edited.display());
        assert_eq!(std::fs::read(&edited).unwrap(), b"old text");
        let killed = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "after SIG{signal}");
        assert!(
            !edited.exists() && !edited.parent().unwrap().exists(),
            "SIG{signal} left {}",
            edited.display()
        );
        // Only the (empty) private directory is left.
        assert_eq!(
            std::fs::read_dir(edit_dir(runtime.path())).unwrap().count(),
            0
        );
    }
    assert_eq!(node.run(&["secrets", "cat", "v:note"]).stdout, b"old text");
}

#[cfg(unix)]
#[test]
fn secrets_edit_removes_what_a_crashed_run_left() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "v"]);
    node.write("v:note", b"old text");
    let runtime = tempfile::tempdir_in("/dev/shm").unwrap();
    let private = edit_dir(runtime.path());
    std::fs::create_dir(&private).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // A run whose process is gone (a pid that just exited) and one whose
    // process still runs (this test): only the first is a leftover.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let leftover = private.join(format!("edit-{dead}-crashed"));
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("note"), b"plaintext left by a crash").unwrap();
    let live = private.join(format!("edit-{}-running", std::process::id()));
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("note"), b"someone is editing").unwrap();

    let out = node
        .command(&["secrets", "edit", "v:note"])
        .env("EDITOR", "true")
        .env_remove("VISUAL")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!leftover.exists());
    assert!(live.join("note").exists());
}

#[test]
fn an_agent_started_with_auto_lock_locks_itself_when_nobody_uses_it() {
    let node = bootstrapped();
    node.ok(&["vaults", "create", "ci"]);
    // Debug builds accept a short time (release builds: 30 s at least).
    let out = node.ok(&["agent", "start", "--auto-lock", "2s"]);
    let _guard = AgentGuard(&node);
    assert!(out.starts_with("Agent started"), "{out}");
    // With the session's token, and a wrong password at hand (so nothing
    // can log in again behind the test's back).
    let with_token = || {
        node.command(&["vaults", "list"])
            .env("POLYKEY_PASSWORD_FILE", node.path("wrong"))
            .output()
            .unwrap()
    };
    // Used: it stays unlocked.
    for _ in 0..6 {
        assert!(
            with_token().status.success(),
            "the session ended while in use"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // Left alone past its time: locked, and the session ended with it.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let out = with_token();
    assert_eq!(
        out.status.code(),
        Some(77),
        "still served after the auto-lock time: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A bad time is refused with a clear error.
    let bad = node.run(&["agent", "start", "--foreground", "--auto-lock", "soon"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("auto-lock"), "{err}");
}

#[test]
fn malformed_answers_from_an_agent_are_shown_or_refused_never_a_crash() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;
    let node = Node::new();
    let dir = node.path("node");
    std::fs::create_dir_all(&dir).unwrap();
    // Something answering on the agent's socket: version ids too short and
    // not ASCII, a result of the wrong shape, and a line that is not JSON.
    let listener = UnixListener::bind(dir.join("client.sock")).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..4 {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let request: serde_json::Value = serde_json::from_str(&line).unwrap();
                line.clear();
                let answer = match request["method"].as_str().unwrap_or("") {
                    "status" => r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_owned(),
                    "vaults.log" => serde_json::json!({ "jsonrpc": "2.0", "id": request["id"],
                        "result": [{ "id": "ab", "time": 1, "message": "short" },
                                   { "id": "éééééééé", "time": 2, "message": "wide" },
                                   { "id": 7 }] })
                    .to_string(),
                    "vaults.restore" | "vaults.version" => serde_json::json!({
                        "jsonrpc": "2.0", "id": request["id"], "result": { "version": "€€€" } })
                    .to_string(),
                    // An agent older than the call.
                    "secrets.paths" => serde_json::json!({ "jsonrpc": "2.0", "id": request["id"],
                        "error": { "code": -32601, "message": "no such method" } })
                    .to_string(),
                    "secrets.list" => serde_json::json!({
                        "jsonrpc": "2.0", "id": request["id"], "result": ["Forum"] })
                    .to_string(),
                    _ => "not json".to_owned(),
                };
                writeln!(writer, "{answer}").unwrap();
            }
        }
    });
    let log = node.run(&["vaults", "log", "Personal"]);
    let stderr = String::from_utf8_lossy(&log.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(log.status.success(), "{stderr}");
    let shown = String::from_utf8_lossy(&log.stdout);
    assert!(
        shown.contains("ab 1 short") && shown.contains("éééé 2 wide"),
        "{shown}"
    );
    let version = node.run(&["vaults", "version", "Personal", "abc"]);
    let stderr = String::from_utf8_lossy(&version.stderr);
    assert!(
        !stderr.contains("panicked") && version.status.success(),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&version.stdout).contains("€€€"));
    let list = node.run(&["vaults", "list"]);
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert!(
        !stderr.contains("panicked") && !list.status.success(),
        "{stderr}"
    );
    // An import through an agent older than `secrets.paths` avoids the
    // names its secrets list gives, as it did before the call.
    std::fs::write(
        node.path("other.csv"),
        "name,url,username,password\nForum,https://forum.example,me,pw\n",
    )
    .unwrap();
    let file = node.path("other.csv");
    let import = node.run(&[
        "import",
        "csv",
        file.to_str().unwrap(),
        "--vault",
        "Personal",
        "--dry-run",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(import.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&import.stdout).unwrap();
    assert_eq!(report["paths"], serde_json::json!(["Forum (2)"]));
    server.join().unwrap();
}

/// `polykey identities`: Alice logs in to GitHub (a fake GitHub on
/// 127.0.0.1 speaking its HTTP API) by the device flow, claims her account
/// for her node, lists it; Bob's node finds Alice's node under her account.
/// Human and JSON output, and exit codes.
#[test]
fn identities_authenticate_claim_discover_and_trust() {
    use fake_github::{Answer, FakeGitHub, CLIENT_ID, USER_CODE};
    const ALICE_TOKEN: &str = "gho_aliceSECRETtoken0123456789abcdefABCD";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeGitHub::start());
    fake.add_user("alice", ALICE_TOKEN);
    fake.add_user("carol", "gho_carolSECRETtoken0123456789abcdefABCD");
    let start_agent = |node: &Node| {
        let out = node
            .command(&["agent", "start"])
            .env("POLYKEY_GITHUB_CLIENT_ID", CLIENT_ID)
            .env("POLYKEY_GITHUB_URL", &fake.base)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (alice, bob) = (bootstrapped(), bootstrapped());
    start_agent(&alice);
    let _alice_agent = AgentGuard(&alice);
    start_agent(&bob);
    let _bob_agent = AgentGuard(&bob);

    // Not logged in yet: a clear error and a non-zero exit.
    let out = alice.run(&["identities", "claim", "github.com"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("identities authenticate github.com"),
        "{stderr}"
    );

    fake.script(vec![Answer::Pending, Answer::Token(ALICE_TOKEN.into())]);
    let out = alice.run(&["identities", "authenticate", "github.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(USER_CODE) && stderr.contains(&fake.base),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Logged in as github.com:alice\n"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(ALICE_TOKEN));

    let claimed = alice.ok(&["identities", "claim", "github.com"]);
    assert!(
        claimed.starts_with("Claimed github.com:alice for this node: "),
        "{claimed}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&alice.ok(&["identities", "list", "--format", "json"])).unwrap();
    assert_eq!(listed[0]["identity"], "github.com:alice");
    let proof = listed[0]["proofUrl"].as_str().unwrap().to_owned();
    assert!(claimed.trim_end().ends_with(&proof), "{claimed}");

    let alice_id = alice.ok(&["keys", "public"]).trim().to_owned();
    let found = bob.ok(&["identities", "discover", "github.com:alice"]);
    assert_eq!(found, format!("{alice_id}\t{proof}\n"));
    let found: serde_json::Value = serde_json::from_str(&bob.ok(&[
        "identities",
        "discover",
        "github.com:alice",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(found[0]["node"], alice_id.as_str());
    assert_eq!(
        bob.ok(&["identities", "discover", "github.com:carol"]),
        "No node has claimed github.com:carol\n"
    );
    let out = bob.run(&["identities", "discover", "github.com:nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such account"));
    let out = bob.run(&["identities", "discover", "alice"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("provider:login"));

    // Bob trusts Alice by her account, lets her notify him, then untrusts.
    assert_eq!(
        bob.ok(&["identities", "trust", "github.com:alice"]),
        format!("Trusted github.com:alice\t-\t{alice_id}\n")
    );
    assert_eq!(
        bob.ok(&["identities", "allow", "github.com:alice", "notify"]),
        format!("github.com:alice\tnotify\t{alice_id}\n")
    );
    let people: serde_json::Value =
        serde_json::from_str(&bob.ok(&["identities", "permissions", "--format", "json"])).unwrap();
    assert_eq!(people[0]["notify"], true);
    assert_eq!(people[0]["scan"], false);
    let out = bob.run(&["identities", "allow", "github.com:alice", "everything"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("notify and scan"));
    assert_eq!(
        bob.ok(&["identities", "untrust", "github.com:alice"]),
        "No longer trusted: github.com:alice\n"
    );
    assert_eq!(
        bob.ok(&["identities", "permissions"]),
        "Nobody is trusted here\n"
    );
    let out = bob.run(&["identities", "allow", "github.com:alice", "notify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not trusted here"));
}

/// `polykey identities search/get/refresh`, for people and for programs:
/// Bob searches GitHub, looks Alice up by her account and by her NodeId
/// before and after trusting her, and refreshes her after her gist is
/// deleted (her node dropped) and posted again (added back). Unknown
/// targets exit 66, malformed ones 65.
#[test]
fn identities_search_get_and_refresh_output_snapshots() {
    use fake_github::{Answer, FakeGitHub, CLIENT_ID};
    const ALICE_TOKEN: &str = "gho_aliceSECRETtoken0123456789abcdefABCD";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeGitHub::start());
    fake.add_user("alice", ALICE_TOKEN);
    fake.add_user("alfred", "gho_alfredSECRETtoken0123456789abcdefAB");
    fake.add_user("carol", "gho_carolSECRETtoken0123456789abcdefABCD");
    let start_agent = |node: &Node| {
        let out = node
            .command(&["agent", "start"])
            .env("POLYKEY_GITHUB_CLIENT_ID", CLIENT_ID)
            .env("POLYKEY_GITHUB_URL", &fake.base)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (alice, bob) = (bootstrapped(), bootstrapped());
    start_agent(&alice);
    let _alice_agent = AgentGuard(&alice);
    start_agent(&bob);
    let _bob_agent = AgentGuard(&bob);
    fake.script(vec![Answer::Token(ALICE_TOKEN.into())]);
    alice.ok(&["identities", "authenticate", "github.com"]);
    alice.ok(&["identities", "claim", "github.com"]);
    let alice_id = alice.ok(&["keys", "public"]).trim().to_owned();
    let bob_id = bob.ok(&["keys", "public"]).trim().to_owned();

    let mut transcript = String::new();
    const BOTH: &[&str] = &["human", "json"];
    let mut show = |args: &[&str], formats: &[&str]| {
        for format in formats {
            let out = bob
                .command(args)
                .args(["--format", format])
                .output()
                .unwrap();
            let entry = format!(
                "$ polykey {} --format {format}\n[exit {}]\n{}{}\n",
                args.join(" "),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            transcript.push_str(
                &entry
                    .replace(&fake.base, "http://GITHUB")
                    .replace(&alice_id, "ALICE")
                    .replace(&bob_id, "BOB"),
            );
        }
    };
    show(&["identities", "search", "github.com", "al"], BOTH);
    show(&["identities", "search", "github.com", "zed"], BOTH);
    show(&["identities", "search", "github.com", "not a login"], BOTH);
    fake.state.lock().unwrap().search_needs_token = true;
    show(&["identities", "search", "github.com", "al"], BOTH);
    fake.state.lock().unwrap().search_needs_token = false;

    // Unknown: a node nobody here knows of, an account GitHub lacks.
    show(&["identities", "get", &alice_id], BOTH);
    show(&["identities", "get", "github.com:nobody"], BOTH);
    show(&["identities", "get", "nonsense"], BOTH);
    show(&["identities", "get", &bob_id], BOTH);
    show(&["identities", "get", "github.com:carol"], BOTH);
    // Known once looked up under her account.
    show(&["identities", "get", "github.com:alice"], BOTH);
    show(&["identities", "get", &alice_id], BOTH);
    show(&["identities", "refresh", "github.com:alice"], BOTH);

    bob.ok(&["identities", "trust", "github.com:alice"]);
    bob.ok(&["identities", "allow", "github.com:alice", "scan"]);
    show(&["identities", "get", "github.com:Alice"], BOTH);
    show(&["identities", "refresh", "github.com:alice"], BOTH);

    // Her gist deleted: her node is dropped; posted again: added back;
    // by a refresh, then by looking her up, in each format.
    let delete_gists = || {
        for gist in fake.gists_of("alice") {
            fake.delete_gist(&gist);
        }
    };
    let refresh = ["identities", "refresh", "github.com:alice"];
    let get = ["identities", "get", "github.com:alice"];
    for (format, command) in [
        ("human", &refresh),
        ("json", &refresh),
        ("human", &get),
        ("json", &get),
    ] {
        delete_gists();
        show(command, &[format]);
        alice.ok(&["identities", "claim", "github.com"]);
        show(command, &[format]);
    }
    // Trusted still, without a node: known by name, not by that node.
    delete_gists();
    show(&refresh, &["human"]);
    show(&["identities", "get", &alice_id], BOTH);
    show(&["identities", "refresh", &alice_id], BOTH);
    insta::assert_snapshot!(redact(&transcript));
}

/// Wait (at most 20 s) until `check` holds.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn vaults_share_clone_scan_pull_and_unshare_between_two_people() {
    let (alice, bob) = (bootstrapped(), bootstrapped());
    alice.ok(&["vaults", "create", "Team"]);
    alice.write("Team:wifi", b"hunter2");
    for node in [&alice, &bob] {
        node.ok(&["agent", "start"]);
    }
    let (_alice_agent, _bob_agent) = (AgentGuard(&alice), AgentGuard(&bob));
    let alice_id = alice.ok(&["keys", "public"]).trim().to_owned();
    let bob_id = bob.ok(&["keys", "public"]).trim().to_owned();
    let code_of = |node: &Node| {
        let code = node.ok(&["identities", "contact"]).trim().to_owned();
        assert!(code.starts_with("polykey-contact:"), "{code}");
        code
    };
    let (alice_code, bob_code) = (code_of(&alice), code_of(&bob));

    // Bob adds Alice by her contact code and lets her send him offers.
    assert_eq!(
        bob.ok(&["identities", "trust", &alice_code]),
        format!("Trusted {alice_id}\t-\t{alice_id}\n")
    );
    bob.ok(&["identities", "allow", &alice_id, "notify"]);

    // Alice shares by Bob's contact code (trusting him).
    assert_eq!(
        alice.ok(&["vaults", "share", "Team", &bob_code]),
        format!("Shared Team with {bob_id} (read only); they were sent an offer\n")
    );
    assert_eq!(
        alice.ok(&["vaults", "permissions", "Team"]),
        format!("{bob_id}\tread only\t{bob_id}\n")
    );
    let permissions: serde_json::Value =
        serde_json::from_str(&alice.ok(&["vaults", "permissions", "Team", "--format", "json"]))
            .unwrap();
    assert_eq!(permissions["grants"][0]["person"], bob_id.as_str());
    assert_eq!(permissions["grants"][0]["write"], false);
    assert!(permissions["remote"].is_null());

    // Bob sees the offer and takes the vault by its id.
    let read: serde_json::Value =
        serde_json::from_str(&bob.ok(&["notifications", "read", "--format", "json"])).unwrap();
    let offer = &read[0]["share"];
    assert_eq!(offer["name"], "Team");
    let id = offer["vault"].as_str().unwrap().to_owned();
    assert_eq!(
        bob.ok(&["vaults", "clone", &id]),
        format!("Cloned Team ({id})\n")
    );
    assert_eq!(bob.ok(&["secrets", "cat", "Team:wifi"]), "hunter2");
    assert_eq!(
        bob.ok(&["vaults", "permissions", "Team"]),
        format!("{alice_id}'s vault, shared with you (read only)\n")
    );

    // Bob may not write to it: exit 77 (no permission), and why.
    let out = bob.run(&["secrets", "rm", "Team:wifi"]);
    assert_eq!(out.status.code(), Some(77));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("read only"), "{stderr}");
    let out = bob.run(&["vaults", "share", "Team", &alice_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only its owner shares it"));

    // Scanning needs Alice's leave.
    let out = bob.run(&["vaults", "scan", &alice_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("may not list"));
    alice.ok(&["identities", "allow", &bob_id, "scan"]);
    assert_eq!(
        bob.ok(&["vaults", "scan", &alice_id]),
        format!("{id}\tTeam\tread only\n")
    );
    let scanned: serde_json::Value =
        serde_json::from_str(&bob.ok(&["vaults", "scan", &alice_id, "--format", "json"])).unwrap();
    assert_eq!(scanned[0]["id"], id.as_str());

    // Alice's edit reaches Bob; an explicit pull says what it did.
    alice.write("Team:wifi", b"correct horse");
    let pulled = bob.ok(&["vaults", "pull", "Team"]);
    assert!(
        pulled == "Pulled Team\n" || pulled == "Team is up to date\n",
        "{pulled}"
    );
    wait_until("Alice's edit reaches Bob", || {
        bob.run(&["secrets", "cat", "Team:wifi"]).stdout == b"correct horse"
    });

    // Unshared: Bob keeps his copy, marked; nothing more is pulled.
    assert_eq!(
        alice.ok(&["vaults", "unshare", "Team", &bob_id]),
        format!("Team is no longer shared with {bob_id}; they keep what they have\n")
    );
    assert_eq!(
        alice.ok(&["vaults", "unshare", "Team", &bob_id]),
        format!("Team was not shared with {bob_id}\n")
    );
    assert_eq!(
        alice.ok(&["vaults", "permissions", "Team"]),
        "Team is not shared\n"
    );
    wait_until("Bob's copy is marked ended", || {
        bob.ok(&["vaults", "permissions", "Team"])
            .contains("no longer shared")
    });
    let out = bob.run(&["vaults", "pull", "Team", "--format", "json"]);
    assert!(!out.status.success());
    let failure: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(failure["error"]["code"], "invalid_input", "{failure}");
    assert_eq!(bob.ok(&["secrets", "cat", "Team:wifi"]), "correct horse");
    // An id nobody shares: a clear error.
    let out = bob.run(&["vaults", "clone", "00000000000000000000000000000000"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such share was offered"));
}
