//! Encrypted backups written to and restored from real files.

use std::path::{Path, PathBuf};

use polykey_node::backup::{BackupError, Restored};
use polykey_node::{Node, NodeError};
use zeroize::Zeroizing;

use crate::{open, PASSWORD};

const PASSPHRASE: &str = "a long backup passphrase";

async fn node(dir: &Path) -> Node {
    let node = open(dir).await;
    node.create(PASSWORD.into()).await.unwrap();
    node
}

async fn write(node: &Node, vault: &str, path: &str, value: &str) {
    node.write_secret(
        vault.into(),
        path.into(),
        Zeroizing::new(value.as_bytes().to_vec()),
    )
    .await
    .unwrap();
}

/// Everything a person sees of the node's vaults: ids, names, each
/// version's id, author and message, and every secret at the head.
async fn everything(node: &Node) -> Vec<(String, String, Vec<String>, Vec<(String, Vec<u8>)>)> {
    let mut out = Vec::new();
    for info in node.vaults().await.unwrap() {
        let name = info.name.clone();
        let log = node
            .vault_log(name.clone(), None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| format!("{} {} {}", c.id, c.author, c.message))
            .collect();
        let mut secrets = Vec::new();
        for path in node.list_secrets(name.clone(), None).await.unwrap() {
            if let Ok(value) = node.get_secret(name.clone(), path.clone(), None).await {
                secrets.push((path, value.to_vec()));
            }
        }
        out.push((info.id.to_string(), name, log, secrets));
    }
    out.sort();
    out
}

async fn with_two_vaults(dir: &Path) -> Node {
    let node = node(dir).await;
    node.create_vault("Personal".into()).await.unwrap();
    node.create_vault("Work".into()).await.unwrap();
    write(&node, "Personal", "bank/pin", "kiwi-4711-pear").await;
    write(&node, "Personal", "bank/pin", "kiwi-4712-plum").await;
    write(&node, "Personal", "mail", "inbox-zero").await;
    node.remove_secret("Personal".into(), "mail".into(), false)
        .await
        .unwrap();
    write(&node, "Work", "deploy/token", "tok-0001").await;
    // Large enough that the backup runs to several chunks.
    let mut big = vec![0u8; 1536 * 1024];
    for (i, byte) in big.iter_mut().enumerate() {
        *byte = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    }
    node.write_secret("Work".into(), "disk.img".into(), Zeroizing::new(big))
        .await
        .unwrap();
    node.rename_vault("Work".into(), "Job tickets".into())
        .await
        .unwrap();
    node
}

/// [`with_two_vaults`] in `dir/a`, and its backup of every vault at
/// `dir/polykey.backup`.
async fn backed_up(dir: &Path) -> (Node, PathBuf) {
    let a = with_two_vaults(&dir.join("a")).await;
    let file = dir.join("polykey.backup");
    a.create_backup(file.clone(), PASSPHRASE.into(), None)
        .await
        .unwrap();
    (a, file)
}

#[tokio::test]
async fn a_backup_restored_into_a_fresh_node_gives_identical_vaults_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let a = with_two_vaults(&dir.path().join("a")).await;
    let file = dir.path().join("polykey.backup");
    let made = a
        .create_backup(file.clone(), PASSPHRASE.into(), None)
        .await
        .unwrap();
    assert_eq!(made.manifest.vaults.len(), 2);
    assert_eq!(made.bytes, std::fs::metadata(&file).unwrap().len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only its owner reads the backup");
    }
    // Nothing of the vaults is readable in the file. (Each needle is 8
    // bytes or more: 3 bytes turn up in 1.6 MB of ciphertext by chance,
    // as the vault's old name "Job" did in about one run in ten.)
    let bytes = std::fs::read(&file).unwrap();
    for needle in [
        "Personal",
        "bank/pin",
        "kiwi-471",
        "tok-0001",
        "Job tickets",
    ] {
        assert!(needle.len() >= 8);
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the backup holds {needle}"
        );
    }

    let b = node(&dir.path().join("b")).await;
    let listed = b
        .read_backup(file.clone(), PASSPHRASE.into())
        .await
        .unwrap();
    assert_eq!(listed, made.manifest);
    let mut restored = b
        .restore_backup(file.clone(), PASSPHRASE.into())
        .await
        .unwrap();
    restored.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        restored,
        [
            Restored::Restored("Job tickets".into()),
            Restored::Restored("Personal".into())
        ]
    );
    let expected = everything(&a).await;
    assert_eq!(expected.len(), 2);
    assert_eq!(everything(&b).await, expected);
    // The restored vaults live on: an old version reads back, a new
    // version can be written.
    let log = b.vault_log("Personal".into(), None).await.unwrap();
    let first = log.iter().rev().nth(1).unwrap().id.clone();
    let old = b
        .get_secret("Personal".into(), "bank/pin".into(), Some(first))
        .await
        .unwrap();
    assert_eq!(old.as_slice(), b"kiwi-4711-pear");
    write(&b, "Personal", "bank/pin", "after-restore").await;

    // Restoring the same backup again changes nothing that is unchanged.
    let again = b.restore_backup(file, PASSPHRASE.into()).await.unwrap();
    assert_eq!(
        again,
        [
            Restored::Beside("Personal (restored)".into()),
            Restored::Unchanged("Job tickets".into()),
        ]
    );
    // Beside: the backup's state under a new vault, the newer one kept.
    let beside = b
        .get_secret("Personal (restored)".into(), "bank/pin".into(), None)
        .await
        .unwrap();
    assert_eq!(beside.as_slice(), b"kiwi-4712-plum");
    let kept = b
        .get_secret("Personal".into(), "bank/pin".into(), None)
        .await
        .unwrap();
    assert_eq!(kept.as_slice(), b"after-restore");
    assert_eq!(b.vaults().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_wrong_passphrase_or_a_changed_file_restores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, file) = backed_up(dir.path()).await;
    let b = node(&dir.path().join("b")).await;

    let wrong = b
        .restore_backup(file.clone(), "not the passphrase".into())
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, NodeError::Backup(BackupError::WrongPassphrase)),
        "{wrong}"
    );
    assert_eq!(wrong.code(), polykey_node::api::ErrorCode::WrongPassword);

    let bytes = std::fs::read(&file).unwrap();
    let damaged = dir.path().join("damaged.backup");
    // A flipped byte anywhere past the header: in the first chunk, in
    // the second (after the first vault was taken in), at the end; and
    // the file cut short.
    let header = 14 + u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
    for at in [header + 100, bytes.len() - 1000, bytes.len() - 1] {
        let mut changed = bytes.clone();
        changed[at] ^= 0x20;
        std::fs::write(&damaged, &changed).unwrap();
        let err = b
            .restore_backup(damaged.clone(), PASSPHRASE.into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, NodeError::Backup(BackupError::Damaged(_))),
            "flip at {at}: {err}"
        );
        assert!(err.to_string().contains("nothing was restored"), "{err}");
        assert!(
            b.vaults().await.unwrap().is_empty(),
            "nothing half restored"
        );
    }
    std::fs::write(&damaged, &bytes[..bytes.len() - 10]).unwrap();
    let cut = b
        .restore_backup(damaged.clone(), PASSPHRASE.into())
        .await
        .unwrap_err();
    assert!(cut.to_string().contains("nothing was restored"), "{cut}");
    std::fs::write(&damaged, b"PKBACKUP").unwrap();
    let short = b
        .restore_backup(damaged, PASSPHRASE.into())
        .await
        .unwrap_err();
    assert!(
        short.to_string().contains("not a Polykey backup")
            || short.to_string().contains("cut short"),
        "{short}"
    );
    assert!(
        b.vaults().await.unwrap().is_empty(),
        "nothing half restored"
    );
}

#[tokio::test]
async fn a_backup_of_chosen_vaults_holds_only_those_and_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = with_two_vaults(&dir.path().join("a")).await;
    let file = dir.path().join("job.backup");
    let made = a
        .create_backup(
            file.clone(),
            PASSPHRASE.into(),
            Some(vec!["Job tickets".into()]),
        )
        .await
        .unwrap();
    assert_eq!(made.manifest.vaults.len(), 1);
    assert_eq!(made.manifest.vaults[0].name, "Job tickets");
    let before = std::fs::read(&file).unwrap();
    let err = a
        .create_backup(file.clone(), PASSPHRASE.into(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let unknown = a
        .create_backup(
            dir.path().join("x.backup"),
            PASSPHRASE.into(),
            Some(vec!["Nope".into()]),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), polykey_node::api::ErrorCode::UnknownVault);
    assert!(!dir.path().join("x.backup").exists());
    // Nothing partial is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn a_vault_deleted_here_comes_back_beside_and_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, file) = backed_up(dir.path()).await;
    a.delete_vault("Job tickets".into()).await.unwrap();
    let restored = a.restore_backup(file, PASSPHRASE.into()).await.unwrap();
    assert_eq!(
        restored,
        [
            Restored::Beside("Job tickets (restored)".into()),
            Restored::Unchanged("Personal".into())
        ]
    );
    let token = a
        .get_secret("Job tickets (restored)".into(), "deploy/token".into(), None)
        .await
        .unwrap();
    assert_eq!(token.as_slice(), b"tok-0001");
    assert_eq!(a.deleted_vaults_dto().await.unwrap().len(), 1);

    // A name too long for the mark is cut to make room for it: before, a
    // vault of 90 to 100 characters refused the whole restore.
    let long = "L".repeat(100);
    a.rename_vault("Personal".into(), long.clone())
        .await
        .unwrap();
    let file = dir.path().join("long.backup");
    a.create_backup(file.clone(), PASSPHRASE.into(), None)
        .await
        .unwrap();
    a.delete_vault(long).await.unwrap();
    let restored = a.restore_backup(file, PASSPHRASE.into()).await.unwrap();
    let beside = format!("{} (restored)", "L".repeat(89));
    assert!(
        restored.contains(&Restored::Beside(beside.clone())),
        "{restored:?}"
    );
    assert_eq!(beside.chars().count(), 100);
}

#[tokio::test]
async fn scheduled_backups_open_with_the_passphrase_and_keep_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let a = with_two_vaults(&dir.path().join("a")).await;
    let folder = dir.path().join("usb");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("holiday.jpg"), b"not a backup").unwrap();
    assert!(a
        .set_backup_schedule(folder.join("missing"), 24, 2, PASSPHRASE.into())
        .await
        .is_err());
    assert!(a
        .set_backup_schedule(folder.clone(), 24, 2, "short".into())
        .await
        .is_err());
    let set = a
        .set_backup_schedule(folder.clone(), 24, 2, PASSPHRASE.into())
        .await
        .unwrap();
    assert_eq!((set.every_hours, set.keep, set.last_success), (24, 2, None));
    // Due at once, then not for a day.
    assert!(a.back_up_if_due().await.unwrap().is_some());
    assert!(a.back_up_if_due().await.unwrap().is_none());
    a.back_up_now().await.unwrap();
    write(&a, "Personal", "latest", "written last").await;
    a.back_up_now().await.unwrap();
    let schedule = a.backup_schedule().await.unwrap().unwrap();
    assert!(schedule.last_success.is_some());
    assert_eq!(schedule.last_error, None);
    let newest = folder.join(schedule.last_file.unwrap());
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "two backups and the photo: {names:?}");
    assert!(names.contains(&"holiday.jpg".to_owned()));

    // The newest opens with the passphrase and holds the last write.
    let b = node(&dir.path().join("b")).await;
    b.restore_backup(newest, PASSPHRASE.into()).await.unwrap();
    let latest = b
        .get_secret("Personal".into(), "latest".into(), None)
        .await
        .unwrap();
    assert_eq!(latest.as_slice(), b"written last");

    // The schedule outlives a lock; a folder gone is reported in Settings.
    a.lock().await.unwrap();
    a.unlock(PASSWORD.into()).await.unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    assert!(a.back_up_now().await.is_err());
    let failed = a.backup_schedule().await.unwrap().unwrap();
    assert!(failed.last_error.is_some());
    assert!(failed.last_success.is_some());
    a.clear_backup_schedule().await.unwrap();
    assert_eq!(a.backup_schedule().await.unwrap(), None);
    assert!(a.back_up_now().await.is_err());
}

/// A backup on a disk or share that stops answering part way (a network
/// share that hangs) is given up: the restore ends with an error saying
/// so, restores nothing, and the node locks. Before, the restore held the
/// store for as long as the file did not answer, for ever, and a lock
/// (the person's, the idle timer's) waited with it.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_a_file_that_stops_answering_gives_up_and_the_node_locks() {
    use std::io::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (_a, file) = backed_up(dir.path()).await;
    let bytes = std::fs::read(&file).unwrap();
    let fifo = crate::fifo(&dir.path().join("stalls.backup"));
    // The first half comes, then nothing more (the writer stays open).
    let (path, half) = (fifo.clone(), bytes[..bytes.len() / 2].to_vec());
    let writer = std::thread::spawn(move || {
        let mut out = std::fs::File::options().write(true).open(path).unwrap();
        out.write_all(&half).unwrap();
        out
    });
    let b = node(&dir.path().join("b")).await;
    b.set_file_stall(Duration::from_secs(2));
    let restored = tokio::time::timeout(
        Duration::from_secs(30),
        b.restore_backup(fifo, PASSPHRASE.into()),
    )
    .await
    .expect("the restore waited on the file for ever");
    let err = restored.unwrap_err().to_string();
    assert!(err.contains("stopped answering"), "{err}");
    assert!(b.vaults().await.unwrap().is_empty(), "nothing restored");
    tokio::time::timeout(Duration::from_secs(10), b.lock())
        .await
        .expect("the lock waited")
        .unwrap();
    drop(writer.join().unwrap());
}

/// A lock pressed while a restore runs stops it, and nothing is restored
/// (all or nothing); the lock waited to the restore's end before. The
/// auto-lock does not cut off a restore someone watches: it locks once the
/// restore ends.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_stops_a_restore_under_way_and_nothing_is_restored() {
    for pressed in [true, false] {
        restore_under_a_lock(pressed).await;
    }
}

#[cfg(unix)]
async fn restore_under_a_lock(pressed: bool) {
    use std::io::Write;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let (_a, file) = backed_up(dir.path()).await;
    let bytes = std::fs::read(&file).unwrap();
    let fifo = crate::fifo(&dir.path().join("slow.backup"));
    // All but the end of the file's last chunk, then the rest once the
    // lock waits. Once most of it is written, the restore has read past
    // its first chunk and the buffer before it (less a pipe's 64 KiB): it
    // is under way, holding the node's state.
    let most = bytes.len() - 1000;
    assert!(
        most - 64 * 1024 > polykey_node::backup::CHUNK + 256 * 1024 + 4096,
        "a backup large enough"
    );
    let (written, under_way) = std::sync::mpsc::channel::<()>();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut out = std::fs::File::options().write(true).open(path).unwrap();
        out.write_all(&bytes[..most]).unwrap();
        written.send(()).unwrap();
        let _ = wait.recv();
        // (A restore stopped reads no more of it.)
        let _ = out.write_all(&bytes[most..]);
    });
    let b = node(&dir.path().join("b")).await;
    let restoring = {
        let b = b.clone();
        tokio::spawn(async move { b.restore_backup(fifo, PASSPHRASE.into()).await })
    };
    tokio::task::spawn_blocking(move || under_way.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the restore read the file");
    let locking = {
        let b = b.clone();
        tokio::spawn(async move {
            if pressed {
                b.lock().await.map(|()| true)
            } else {
                b.lock_if_idle(Duration::ZERO).await
            }
        })
    };
    if pressed {
        for _ in 0..1000 {
            if b.locks_waiting() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(b.locks_waiting(), 1);
    } else {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    go.send(()).unwrap();
    let restored = tokio::time::timeout(Duration::from_secs(30), restoring)
        .await
        .expect("the restore ended")
        .unwrap();
    let locked = tokio::time::timeout(Duration::from_secs(10), locking)
        .await
        .expect("the lock waited")
        .unwrap()
        .unwrap();
    assert!(locked);
    writer.join().unwrap();
    b.unlock(crate::PASSWORD.into()).await.unwrap();
    if pressed {
        assert!(matches!(restored, Err(NodeError::Locked)), "{restored:?}");
        assert!(b.vaults().await.unwrap().is_empty(), "nothing restored");
    } else {
        assert_eq!(restored.unwrap().len(), 2);
        assert_eq!(b.vaults().await.unwrap().len(), 2);
    }
}
