//! The editor as someone coming from another password manager uses it: a
//! login saved with only a title, a website typed as a bare domain and a
//! second one, then the login moved to another folder; and the keyboard
//! shortcuts on the way (Ctrl+N, Esc, Ctrl+L), and the question before
//! unsaved changes are discarded.

use std::time::Duration;

use polykey_node::{Node, NodeOptions};
use polykey_tests::gui::{App, Driver};

use crate::devices::{click_with_text, shows, until};
use crate::{create_node, create_vault};

const PASSWORD: &str = "juniper-harbor-signal-27";
/// WebDriver's Control key, and the key that lets go of it.
const CTRL: &str = "\u{E009}";
const RELEASE: &str = "\u{E000}";
const ESCAPE: &str = "\u{E00C}";

/// The texts of every element with `test_id`, once there are `count`.
async fn texts(app: &App, test_id: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let elements = app.find_all(test_id).await;
        if elements.len() == count {
            let mut out = Vec::new();
            for element in elements {
                out.push(
                    app.timed("reading a text", element.text())
                        .await
                        .expect("text"),
                );
            }
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {count} of [data-testid={test_id}]");
}

#[tokio::test]
async fn a_login_needs_only_a_title_takes_bare_websites_and_moves_to_another_folder() {
    let node_dir = tempfile::tempdir().expect("temp dir");
    let driver = Driver::start(node_dir.path()).await;
    let app = driver.launch().await;
    create_node(&app, PASSWORD, false).await;
    app.wait_for_text("vault-item", "Personal").await;

    // A title, a password and a bare domain: no second name to invent.
    // Ctrl+N opens the editor, wherever the focus is.
    app.press("search", &format!("{CTRL}n{RELEASE}")).await;
    app.select("item-type", "login").await;
    app.type_into("edit-title", "GitHub").await;
    // The strength estimate arrives after the typing: it moves nothing
    // below it (a click aimed at "Add website" as it arrived went astray).
    let add_url = || async { app.find("add-url").await.rectangle().await.expect("a box") };
    let before = add_url().await;
    app.type_into("edit-password", "gh-Passw0rd!").await;
    app.find("strength-label").await;
    assert_eq!(
        add_url().await,
        before,
        "the estimate moved the buttons below it"
    );
    app.type_into("edit-url", "github.com").await;
    app.click("add-url").await;
    let second = texts(&app, "edit-url", 2).await;
    assert_eq!(second[1], "");
    let second_url = app.find_all("edit-url").await.swap_remove(1);
    app.timed(
        "typing the second website",
        second_url.send_keys("gist.github.com"),
    )
    .await
    .expect("typing the second website");
    app.screenshot("12-new-login-title-only").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", "GitHub").await;
    app.wait_for_text("secret-path", "GitHub").await;
    assert_eq!(
        texts(&app, "website", 2).await,
        ["https://github.com", "https://gist.github.com"]
    );

    // Esc leaves the editor without saving, once the person agreed to
    // discard what they typed.
    app.click("edit-secret").await;
    app.type_into("edit-title", "Not saved").await;
    app.press("edit-title", ESCAPE).await;
    app.find("unsaved-dialog").await;
    app.screenshot("13-unsaved-changes").await;
    app.click("unsaved-dialog-confirm").await;
    app.wait_for_text("secret-title", "GitHub").await;
    assert_eq!(app.count("edit-title").await, 0);

    // Moved to a new folder: the title stays, the name keeps, the folder
    // changes.
    app.click("edit-secret").await;
    app.type_into("edit-folder", "work/dev").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-path", "work/dev/GitHub").await;
    app.wait_for_text("secret-title", "GitHub").await;
    app.click("reveal-password").await;
    app.wait_for_text("field-password", "gh-Passw0rd!").await;

    // Search covers every vault: from Personal, "vpn" finds the login in
    // Work, listed under its vault, and opens it there.
    create_vault(&app, "Work").await;
    app.press("search", &format!("{CTRL}n{RELEASE}")).await;
    app.select("item-type", "login").await;
    app.type_into("edit-title", "VPN").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", "VPN").await;
    click_with_text(&app, "vault-item", "Personal").await;
    app.type_into("search", "vpn").await;
    until(
        &app,
        "Work's login is found",
        &shows("elsewhere-vault", "In Work"),
    )
    .await;
    app.screenshot("13-search-all-vaults").await;
    app.click("elsewhere-item").await;
    app.wait_for_text("secret-title", "VPN").await;
    until(
        &app,
        "Work is the open vault",
        "return document.querySelector('[data-testid=\"vault-item\"][aria-current=\"true\"]')?.textContent.includes('Work') === true;",
    )
    .await;

    // Password health: a second login with GitHub's password is listed as
    // reused, with it; a new password for one takes both off that list.
    app.press("search", &format!("{CTRL}n{RELEASE}")).await;
    app.select("item-type", "login").await;
    app.type_into("edit-title", "Forum").await;
    app.type_into("edit-password", "gh-Passw0rd!").await;
    app.click("save-secret").await;
    app.wait_for_text("secret-title", "Forum").await;
    app.click("password-health").await;
    let reused = |n: usize| {
        format!("return document.querySelectorAll('[data-testid=\"health-item\"][data-group=\"reused\"]').length === {n};")
    };
    until(&app, "both logins are listed as reused", &reused(2)).await;
    app.screenshot("14-password-health").await;
    app.click("health-fix").await;
    until(&app, "neither is reused any more", &reused(0)).await;
    until(
        &app,
        "the fix is told",
        &shows("notice", "A new password is saved"),
    )
    .await;

    // Ctrl+L locks.
    app.press("search", &format!("{CTRL}l{RELEASE}")).await;
    app.find("unlock-password").await;
    app.quit().await;
    drop(driver);

    // The node holds it there, with both websites, and nothing at the old
    // name.
    let node = Node::open(node_dir.path(), NodeOptions::default())
        .await
        .expect("open");
    node.unlock(PASSWORD.into()).await.expect("unlock");
    let item = node
        .get_secret("Personal".into(), "work/dev/GitHub".into(), None)
        .await
        .expect("the moved login");
    let item = String::from_utf8_lossy(&item);
    assert!(
        item.contains("https://github.com") && item.contains("https://gist.github.com"),
        "both websites"
    );
    assert!(node
        .get_secret("Personal".into(), "GitHub".into(), None)
        .await
        .is_err());
}
