//! The real desktop app, driven through tauri-driver and WebKitWebDriver
//! under a virtual X display. Build the app first:
//! `cargo build -p polykey-desktop` (the README's test command does).

mod backup;
mod devices;
mod editor;
mod files;
mod keyring;
mod package;
mod quick_access;
mod sharing;
mod tray;
mod vaults;
mod window;

use polykey_keys::NodeId;
use polykey_tests::gui::{App, Driver};

const PASSWORD: &str = "tulip-orbit-candle-42";
const NEW_PASSWORD: &str = "harbor-velvet-comet-17";

#[tokio::test]
async fn create_quit_relaunch_unlock_and_recover() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(node_dir.path()).await;

    // First launch: the first-run screen; create a node.
    let app = driver.launch().await;
    let (words, node_id) = create_node(&app, PASSWORD, true).await;
    app.screenshot("05-home").await;
    app.quit().await;

    // Second launch: the unlock screen for the same node.
    let app = driver.launch().await;
    assert_eq!(app.text("unlock-node-id").await, node_id);
    app.type_into("unlock-password", "not-the-password").await;
    app.click("unlock-submit").await;
    assert_eq!(app.text("unlock-error").await, "Wrong password. Try again.");
    app.screenshot("06-unlock-wrong-password").await;

    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    assert_eq!(app.text("node-id").await, node_id);
    // Unlocked, its memory (keys, secrets) never goes to a crash dump.
    let processes = driver.app_processes();
    assert!(!processes.is_empty(), "the app's process is not found");
    for pid in processes {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let core = limits.lines().find(|l| l.starts_with("Max core file size"));
        assert!(
            core.is_some_and(|l| l.split_whitespace().skip(4).take(2).eq(["0", "0"])),
            "the app may write a core dump: {core:?}"
        );
    }

    // Forgot the password: the recovery code and a new password reach the
    // same node, and from then on only the new password unlocks it.
    app.click("lock-button").await;
    app.click("unlock-forgot").await;
    app.type_into("recover-code", &words.join(" ")).await;
    app.type_into("recover-password", NEW_PASSWORD).await;
    app.type_into("recover-confirm", NEW_PASSWORD).await;
    app.screenshot("07-recover").await;
    app.click("recover-submit").await;
    assert_eq!(app.text("node-id").await, node_id);
    app.click("lock-button").await;
    app.type_into("unlock-password", PASSWORD).await;
    app.click("unlock-submit").await;
    assert_eq!(app.text("unlock-error").await, "Wrong password. Try again.");
    app.type_into("unlock-password", NEW_PASSWORD).await;
    app.click("unlock-submit").await;
    assert_eq!(app.text("node-id").await, node_id);
    app.quit().await;
}

/// Which first-run choice to take.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// A new node.
    Create,
    /// A new node that then joins another device (ends on the join screen).
    Join,
}

/// Walk the first-run screens: create a node with `password`, read the
/// recovery code, confirm it. Returns the words and the NodeId shown.
pub async fn create_node(app: &App, password: &str, screenshots: bool) -> (Vec<String>, String) {
    create_node_with(app, password, FirstRun::Create, screenshots).await
}

/// Create a vault named `name` from the sidebar and wait for it to be listed.
pub async fn create_vault(app: &App, name: &str) {
    app.click("new-vault").await;
    app.type_into("new-vault-name", name).await;
    app.click("new-vault-create").await;
    devices::until(
        app,
        &format!("the vault {name} is listed"),
        &devices::shows("vault-item", name),
    )
    .await;
}

/// [`create_node`] through either first-run choice; after `Join` the NodeId
/// is empty (the join screen shows next).
pub async fn create_node_with(
    app: &App,
    password: &str,
    choice: FirstRun,
    screenshots: bool,
) -> (Vec<String>, String) {
    if screenshots {
        app.screenshot("01-welcome").await;
    }
    match choice {
        FirstRun::Create => app.click("welcome-create").await,
        FirstRun::Join => app.click("welcome-join").await,
    }
    app.type_into("create-password", password).await;
    app.type_into("create-confirm", password).await;
    if screenshots {
        app.screenshot("02-create").await;
    }
    app.click("create-submit").await;

    // The recovery code is shown once: 24 words.
    let mut words = Vec::new();
    for element in app.find_all("recovery-word").await {
        words.push(
            app.timed("reading a word", element.text())
                .await
                .expect("word text"),
        );
    }
    assert_eq!(words.len(), 24, "{words:?}");
    if screenshots {
        app.screenshot("03-recovery-code").await;
    }
    app.click("code-written-down").await;
    app.click("code-continue").await;

    // Confirm it by typing back the words it asks for.
    for input in app.find_all("confirm-word").await {
        let position: usize = app
            .timed("reading a word's place", input.attr("data-position"))
            .await
            .expect("attr")
            .expect("data-position")
            .parse()
            .expect("number");
        app.timed("typing a word", input.send_keys(&words[position - 1]))
            .await
            .expect("type word");
    }
    if screenshots {
        app.screenshot("04-confirm-code").await;
    }
    app.click("confirm-submit").await;
    if choice == FirstRun::Join {
        app.find("join-code").await;
        return (words, String::new());
    }

    // Home shows a well-formed NodeId.
    let node_id = app.text("node-id").await;
    node_id
        .parse::<NodeId>()
        .unwrap_or_else(|e| panic!("home shows {node_id:?}, not a NodeId: {e}"));
    (words, node_id)
}
