//! Search summaries, favourites, recently used secrets, quick copy and
//! preferences, against a real node directory.

use polykey_node::api::{EntryKindDto, ErrorCode, ItemDto, SecretDto};
use polykey_node::{Node, Preferences};

use crate::{open, snapshot, PASSWORD};

fn login(path: &str, username: &str, password: &str, url: &str) -> SecretDto {
    SecretDto {
        path: path.into(),
        title: path.rsplit('/').next().unwrap().to_uppercase(),
        item: ItemDto::Login {
            username: username.into(),
            password: password.into(),
            urls: vec![url.into()],
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

async fn node_with_logins(dir: &std::path::Path) -> Node {
    let node = open(dir).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.create_vault("Personal".into()).await.unwrap();
    node.create_vault("Work".into()).await.unwrap();
    for (vault, secret) in [
        (
            "Personal",
            login(
                "mail",
                "ada@example.org",
                "pw-mail-1",
                "https://mail.example.org",
            ),
        ),
        (
            "Personal",
            login(
                "shop/books",
                "ada",
                "pw-books-2",
                "https://books.example.com",
            ),
        ),
        (
            "Work",
            login("vpn", "a.lovelace", "pw-vpn-3", "https://vpn.corp.example"),
        ),
    ] {
        node.save_secret(vault.into(), secret, true).await.unwrap();
    }
    node
}

#[tokio::test]
async fn entries_summarize_without_secret_fields_and_search_by_username_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_logins(dir.path()).await;
    node.write_secret("Personal".into(), "pin".into(), b"4711".to_vec().into())
        .await
        .unwrap();

    let entries = node.list_entries("Personal".into()).await.unwrap();
    let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["mail", "pin", "shop/books"]);
    assert_eq!(entries[0].title, "MAIL");
    assert_eq!(entries[0].kind, EntryKindDto::Login);
    assert_eq!(entries[0].username, "ada@example.org");
    assert_eq!(entries[0].urls, ["https://mail.example.org"]);
    assert_eq!(entries[1].kind, EntryKindDto::Text);
    assert_eq!(entries[1].title, "pin");
    let listed = format!("{entries:?}");
    assert!(!listed.contains("pw-mail-1") && !listed.contains("4711"));

    // An edit shows up at once (summaries are keyed by content).
    node.save_secret(
        "Personal".into(),
        login(
            "mail",
            "lovelace@example.org",
            "pw-mail-2",
            "https://mail.example.org",
        ),
        false,
    )
    .await
    .unwrap();
    let entries = node.list_entries("Personal".into()).await.unwrap();
    assert_eq!(entries[0].username, "lovelace@example.org");

    // Quick search spans vaults and matches user names, websites and vault names.
    let found = |q: &str| {
        let node = node.clone();
        let q = q.to_owned();
        async move {
            node.quick_search(q, 20)
                .await
                .unwrap()
                .into_iter()
                .map(|i| format!("{}:{}", i.vault, i.path))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("lovelace").await, ["Personal:mail", "Work:vpn"]);
    assert_eq!(found("books.example").await, ["Personal:shop/books"]);
    assert_eq!(found("work VPN").await, ["Work:vpn"]);
    assert!(found("nothing-like-this").await.is_empty());
    assert_eq!(found("").await.len(), 4);

    node.lock().await.unwrap();
    let err = node.list_entries("Personal".into()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Locked);
}

#[tokio::test]
async fn favourites_and_recent_uses_feed_quick_copy_and_follow_renames() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_logins(dir.path()).await;
    let mut changes = node.changes();
    assert!(node.quick_items().await.unwrap().is_empty());

    node.set_favourite("Work".into(), "vpn".into(), true)
        .await
        .unwrap();
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    let err = node
        .set_favourite("Work".into(), "missing".into(), true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SecretNotFound);

    // Quick copy gives the main field and counts as a use.
    let value = node
        .quick_copy_value("Personal".into(), "mail".into())
        .await
        .unwrap();
    assert_eq!(value.as_str(), "pw-mail-1");
    assert!(changes.has_changed().unwrap());
    node.secret_field("Personal".into(), "shop/books".into(), "username".into())
        .await
        .unwrap();
    let items = node.quick_items().await.unwrap();
    let listed: Vec<_> = items
        .iter()
        .map(|i| format!("{}:{}:{}", i.vault, i.path, i.favourite))
        .collect();
    assert_eq!(
        listed,
        [
            "Work:vpn:true",
            "Personal:shop/books:false",
            "Personal:mail:false"
        ]
    );

    // Renames are followed, deletions drop out, a vault rename shows its new name.
    node.rename_secret("Personal".into(), "shop".into(), "stores".into())
        .await
        .unwrap();
    node.remove_secret("Personal".into(), "mail".into(), false)
        .await
        .unwrap();
    node.rename_vault("Work".into(), "Office".into())
        .await
        .unwrap();
    let listed: Vec<_> = node
        .quick_items()
        .await
        .unwrap()
        .into_iter()
        .map(|i| format!("{}:{}", i.vault, i.path))
        .collect();
    assert_eq!(listed, ["Office:vpn", "Personal:stores/books"]);
    let entries = node.list_entries("Office".into()).await.unwrap();
    assert!(entries[0].favourite);

    node.set_favourite("Office".into(), "vpn".into(), false)
        .await
        .unwrap();
    assert!(!node.list_entries("Office".into()).await.unwrap()[0].favourite);

    // Favourites survive a restart and are stored encrypted.
    node.set_favourite("Personal".into(), "stores/books".into(), true)
        .await
        .unwrap();
    drop(node);
    let node = open(dir.path()).await;
    node.unlock(PASSWORD.into()).await.unwrap();
    assert!(node.quick_items().await.unwrap()[0].favourite);
    drop(node);
    for (path, bytes) in snapshot(dir.path()) {
        // (No needle shorter than 6 bytes: 3 turn up in a few MB of
        // ciphertext by chance, as a vault name "Job" did in a backup.)
        for needle in ["stores/books", "vpn.corp.example", "Office"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds {needle}",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn preferences_persist_are_checked_and_readable_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    let chosen = Preferences {
        auto_lock_secs: 300,
        clipboard_clear_secs: 15,
        shortcut: "Alt+Shift+P".into(),
        tray: false,
        ..Preferences::default()
    };
    node.set_preferences(chosen.clone()).await.unwrap();
    for bad in [
        Preferences {
            auto_lock_secs: 5,
            ..chosen.clone()
        },
        Preferences {
            clipboard_clear_secs: 0,
            ..chosen.clone()
        },
        Preferences {
            clipboard_clear_secs: 3600,
            ..chosen.clone()
        },
        Preferences {
            shortcut: "Alt+\u{7}".into(),
            ..chosen.clone()
        },
    ] {
        let err = node.set_preferences(bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadPreference);
    }
    node.lock().await.unwrap();
    drop(node);
    let node = open(dir.path()).await;
    assert_eq!(node.preferences(), chosen);

    // A damaged file falls back to the defaults instead of failing to start.
    drop(node);
    std::fs::write(dir.path().join("preferences.json"), b"{not json").unwrap();
    let node = open(dir.path()).await;
    assert_eq!(
        node.preferences().shortcut,
        polykey_node::preferences::DEFAULT_SHORTCUT
    );

    // A file edited past the bounds is brought back within them: a copied
    // secret is still cleared within 10 minutes, auto-lock is not 1 second.
    drop(node);
    std::fs::write(
        dir.path().join("preferences.json"),
        br#"{"autoLockSecs":1,"clipboardClearSecs":4000000000,"shortcut":"Ctrl+\u0000","tray":true}"#,
    )
    .unwrap();
    let node = open(dir.path()).await;
    let read = node.preferences();
    assert_eq!(read.clipboard_clear_secs, 600);
    assert_eq!(read.auto_lock_secs, 30);
    assert_eq!(read.shortcut, polykey_node::preferences::DEFAULT_SHORTCUT);
}

#[tokio::test]
async fn many_secrets_are_saved_as_one_version() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.create_vault("Import".into()).await.unwrap();
    let secrets: Vec<SecretDto> = (0..50)
        .map(|i| {
            login(
                &format!("site{i:02}"),
                "ada",
                &format!("pw-{i}"),
                "https://x.example",
            )
        })
        .collect();
    node.save_secrets("Import".into(), secrets).await.unwrap();
    assert_eq!(
        node.vault_log("Import".into(), None).await.unwrap().len(),
        2
    );
    assert_eq!(node.list_entries("Import".into()).await.unwrap().len(), 50);

    // One bad path and nothing is written.
    let bad = vec![
        login("fine", "a", "b", "https://x.example"),
        login("../escape", "a", "b", "https://x.example"),
    ];
    let err = node.save_secrets("Import".into(), bad).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPath);
    assert_eq!(node.list_entries("Import".into()).await.unwrap().len(), 50);
}
