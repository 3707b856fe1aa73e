//! The tray menu's contents and its copy action, through the functions the
//! tray itself calls (`polykey_desktop::tray::{entries, activate}`), with a
//! real node and the real X clipboard. (No tray host runs under Xvfb, so the
//! icon itself cannot be clicked here.)

use std::sync::Arc;
use std::time::Duration;

use polykey_desktop::clipboard::Clipboard;
use polykey_desktop::tray::{self, Action, TrayEntry};
use polykey_node::api::{ItemDto, SecretDto};
use polykey_node::{KdfProfile, Node, NodeOptions, Preferences};
use polykey_tests::gui::Display;

fn login(path: &str, password: &str) -> SecretDto {
    SecretDto {
        path: path.into(),
        title: path.to_uppercase(),
        item: ItemDto::Login {
            username: "ada".into(),
            password: password.into(),
            urls: vec![],
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

fn clipboard_text() -> Option<String> {
    arboard::Clipboard::new().ok()?.get_text().ok()
}

fn copies(menu: &[TrayEntry]) -> Vec<(String, String)> {
    menu.iter()
        .filter_map(|e| match e {
            TrayEntry::Copy { id, label } => Some((id.clone(), label.clone())),
            _ => None,
        })
        .collect()
}

fn actions(menu: &[TrayEntry]) -> Vec<String> {
    menu.iter()
        .filter_map(|e| match e {
            TrayEntry::Action { label, .. } => Some(label.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn tray_lists_favourites_then_recent_and_copies_with_auto_clear() {
    let display = Display::ensure().await;
    // arboard finds the display through $DISPLAY; this test holds the
    // process's turn at the GUI (the display) until it ends.
    std::env::set_var("DISPLAY", display.name());
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::open(
        dir.path(),
        NodeOptions {
            kdf: KdfProfile::FastForTests,
            ..Default::default()
        },
    )
    .await
    .expect("open");
    node.create("tray test password".into())
        .await
        .expect("create");
    node.set_preferences(Preferences {
        clipboard_clear_secs: 5,
        ..Preferences::default()
    })
    .await
    .expect("preferences");
    node.create_vault("Personal".into()).await.expect("vault");
    node.create_vault("Work".into()).await.expect("vault");
    for (vault, secret) in [
        ("Personal", login("mail", "mail-password-1")),
        ("Personal", login("bank", "bank-password-2")),
        ("Work", login("vpn", "vpn-password-3")),
    ] {
        node.save_secret(vault.into(), secret, true)
            .await
            .expect("save");
    }
    let clipboard = Arc::new(Clipboard::new());

    // Nothing chosen yet: a hint, then Show / Lock / Quit.
    let menu = tray::entries(&node).await;
    assert!(copies(&menu).is_empty());
    assert!(matches!(menu[0], TrayEntry::Note(_)));
    assert_eq!(actions(&menu), ["Show Polykey", "Lock", "Quit Polykey"]);

    // A favourite, and a secret copied in the main window (a recent use).
    node.set_favourite("Work".into(), "vpn".into(), true)
        .await
        .expect("favourite");
    node.secret_field("Personal".into(), "mail".into(), "username".into())
        .await
        .expect("copy field");
    let menu = tray::entries(&node).await;
    let listed = copies(&menu);
    let labels: Vec<&str> = listed.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(labels, ["★ VPN — Work", "MAIL — Personal"]);

    // Choosing the favourite puts its password on the X clipboard…
    let action = tray::activate(&node, &clipboard, &listed[0].0)
        .await
        .expect("activate");
    assert_eq!(action, Action::Copied(5));
    assert_eq!(clipboard_text().as_deref(), Some("vpn-password-3"));
    // …and the clipboard is cleared after the set time.
    let mut cleared = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if clipboard_text().unwrap_or_default().is_empty() {
            cleared = true;
            break;
        }
    }
    assert!(cleared, "the clipboard still holds the password after 10 s");

    // Lock from the tray: the menu only offers to unlock, and a copy entry
    // from the old menu opens the unlock window instead of copying.
    assert_eq!(
        tray::activate(&node, &clipboard, tray::LOCK)
            .await
            .expect("lock"),
        Action::Locked
    );
    let menu = tray::entries(&node).await;
    assert!(copies(&menu).is_empty());
    assert_eq!(actions(&menu), ["Unlock Polykey…", "Quit Polykey"]);
    assert_eq!(
        tray::activate(&node, &clipboard, &listed[1].0)
            .await
            .expect("locked copy"),
        Action::ShowWindow
    );
    assert_ne!(clipboard_text().as_deref(), Some("mail-password-1"));

    // A forged menu id is refused.
    node.unlock("tray test password".into())
        .await
        .expect("unlock");
    assert!(tray::activate(&node, &clipboard, "copy:[\"Work\"]")
        .await
        .is_err());
    assert!(tray::activate(&node, &clipboard, "format-disk")
        .await
        .is_err());
}

#[test]
fn tray_can_be_turned_off() {
    let preferences = Preferences {
        tray: false,
        ..Preferences::default()
    };
    assert!(!tray::wanted(&preferences));
    // (Passed, not set: this process's other tests launch apps that
    // would inherit it under plain `cargo test`.)
    let off = std::ffi::OsStr::new("1");
    assert!(!tray::wanted_given(&Preferences::default(), Some(off)));
}
