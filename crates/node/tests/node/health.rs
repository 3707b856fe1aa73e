//! Password health over real vaults: weak, reused and old passwords are
//! listed (never the passwords), read-only shares left out, and a fix
//! takes a login off the list.

use polykey_node::api::{HealthItemDto, ItemDto, SecretDto};

use crate::{open, PASSWORD};

const STRONG_A: &str = "v9#Lq2!mZ7@pW4$tR8";
const STRONG_B: &str = "K3&xN6*yB1^hJ5%cF0";

fn login(path: &str, password: &str) -> SecretDto {
    SecretDto {
        path: path.into(),
        title: path.to_uppercase(),
        item: ItemDto::Login {
            username: "ada".into(),
            password: password.into(),
            urls: Vec::new(),
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

fn listed(report: &[HealthItemDto]) -> Vec<(String, bool, u32, bool)> {
    report
        .iter()
        .map(|i| (format!("{}:{}", i.vault, i.path), i.weak, i.reused, i.old))
        .collect()
}

#[tokio::test]
async fn weak_reused_and_old_passwords_are_listed_and_a_fix_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = open(dir.path()).await;
    node.create(PASSWORD.into()).await.unwrap();
    node.create_vault("Personal".into()).await.unwrap();
    node.create_vault("Work".into()).await.unwrap();
    for (vault, secret) in [
        ("Personal", login("forum", "hunter2")),
        ("Personal", login("bank", STRONG_A)),
        ("Work", login("vpn", STRONG_A)),
        ("Work", login("wiki", STRONG_B)),
        ("Personal", login("empty", "")),
    ] {
        node.save_secret(vault.into(), secret, true).await.unwrap();
    }
    node.write_secret(
        "Personal".into(),
        "note".into(),
        zeroize::Zeroizing::new(b"hunter2".to_vec()),
    )
    .await
    .unwrap();

    let report = node.password_health().await.unwrap();
    assert_eq!(
        listed(&report),
        [
            ("Personal:forum".to_owned(), true, 0, false),
            ("Personal:bank".to_owned(), false, 1, false),
            ("Work:vpn".to_owned(), false, 1, false),
        ],
        "weakest first; the unique strong one, the empty one and plain text left out"
    );
    assert!(report.iter().all(|i| i.changed > 0 && i.username == "ada"));
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains("hunter2") && !json.contains(STRONG_A),
        "{json}"
    );

    // A year and a bit later, nothing having changed: every login is old.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let later = now + 400 * 86_400;
    let aged = node.password_health_at(later).await.unwrap();
    assert_eq!(aged.len(), 4, "{:?}", listed(&aged));
    assert!(aged.iter().all(|i| i.old && i.changed == 0));

    // Fixed: a new password for the bank login; the VPN's is unique now.
    node.save_secret("Personal".into(), login("bank", STRONG_B), false)
        .await
        .unwrap();
    node.save_secret("Work".into(), login("wiki", "Zq8!rT5@wE2#yU7$iO"), false)
        .await
        .unwrap();
    let report = node.password_health().await.unwrap();
    assert_eq!(
        listed(&report),
        [("Personal:forum".to_owned(), true, 0, false)]
    );
}
