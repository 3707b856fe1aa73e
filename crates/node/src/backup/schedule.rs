//! Backups on a schedule: every few hours while the node is unlocked, a
//! backup of every vault to a chosen folder (a USB stick, a synced
//! folder), the oldest beyond a count removed. The passphrase is asked
//! once, when the schedule is set: only the key it derives (with the
//! salt and cost every scheduled file names in its header) is kept, in
//! the encrypted store, so each file opens with that passphrase.

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use polykey_db::{RawRead, RawTable, Table};
use polykey_keys::{KdfParams, Password, SymmetricKey};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::sealed::SealedWriter;
use super::{timed, write_backup, BackupMade};
use crate::error::NodeError;
use crate::node::{Inner, Node, Session};
use crate::peers::now_secs;

/// How often an unlocked node looks whether a backup is due: a minute
/// (`POLYKEY_BACKUP_CHECK_SECS` in debug builds, for tests).
pub const BACKUP_CHECK_EVERY: Duration = Duration::from_secs(60);

/// The longest time between two backups a schedule may have: 30 days.
const MAX_EVERY_HOURS: u32 = 24 * 30;
/// The most backups a schedule keeps.
const MAX_KEEP: u32 = 365;
/// The start and end of the files a schedule writes and removes.
const PREFIX: &str = "polykey-";
const SUFFIX: &str = ".backup";

/// What the store keeps of a schedule (the key apart, raw).
#[derive(Serialize, Deserialize)]
struct Stored {
    folder: PathBuf,
    every_hours: u32,
    keep: u32,
    kdf: KdfParams,
    last_success: Option<u64>,
    last_file: Option<String>,
    last_error: Option<String>,
}

const SCHEDULE: Table<Stored> = Table::new("backup_schedule");
const SCHEDULE_KEY: RawTable = RawTable::new("backup_schedule_key");

/// Backups on a schedule, as Settings shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedule {
    /// The folder backups are written to.
    pub folder: String,
    /// Hours between two backups.
    pub every_hours: u32,
    /// How many backups are kept there (the oldest removed).
    pub keep: u32,
    /// The last backup written, seconds since the epoch.
    #[ts(type = "number | null")]
    pub last_success: Option<u64>,
    /// Its file name.
    pub last_file: Option<String>,
    /// Why the last attempt failed, if it did (cleared by a success).
    pub last_error: Option<String>,
    /// When the next one is due, seconds since the epoch.
    #[ts(type = "number")]
    pub next_due: u64,
}

impl From<&Stored> for BackupSchedule {
    fn from(stored: &Stored) -> Self {
        Self {
            folder: stored.folder.display().to_string(),
            every_hours: stored.every_hours,
            keep: stored.keep,
            last_success: stored.last_success,
            last_file: stored.last_file.clone(),
            last_error: stored.last_error.clone(),
            next_due: stored
                .last_success
                .map_or(0, |last| last + u64::from(stored.every_hours) * 3600),
        }
    }
}

fn record_key(s: &Session) -> polykey_db::RecordKey {
    s.db.record_key("backup_schedule", b"schedule")
}

fn load(s: &Session) -> Result<Option<Stored>, NodeError> {
    Ok(s.db.read()?.get(&SCHEDULE, &record_key(s))?)
}

fn save(s: &Session, stored: &Stored) -> Result<(), NodeError> {
    let mut txn = s.db.write()?;
    txn.put(&SCHEDULE, &record_key(s), stored)?;
    txn.commit()?;
    Ok(())
}

/// The civil date and time (UTC) of `secs`, as `YYYY-MM-DD-HHMMSS`.
fn stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// What names this node's scheduled backups apart from another's in the
/// same folder (two devices backing up to one synced folder): the end of
/// its NodeId.
fn node_tag(s: &Session) -> String {
    let id = s.keys.node_id().to_string();
    id[id.len().saturating_sub(8)..].to_owned()
}

/// The name of a backup this node writes at `secs` (`n`: the how-manieth
/// in that second, from 2).
fn file_name(tag: &str, secs: u64, n: u32) -> String {
    match n {
        0 | 1 => format!("{PREFIX}{tag}-{}{SUFFIX}", stamp(secs)),
        n => format!("{PREFIX}{tag}-{}-{n}{SUFFIX}", stamp(secs)),
    }
}

/// When `name` is one of the files this node's schedule writes (`tag`),
/// its time and number, which order them.
fn ours(name: &str, tag: &str) -> Option<(String, u32)> {
    let middle = name
        .strip_prefix(PREFIX)?
        .strip_prefix(tag)?
        .strip_prefix('-')?
        .strip_suffix(SUFFIX)?;
    if !middle.is_ascii() {
        return None;
    }
    let (stamp, extra) = middle.split_at(middle.len().min(17));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = stamp.split('-').collect();
    if !(parts.iter().map(|p| p.len()).eq([4, 2, 2, 6]) && parts.iter().all(|p| digits(p))) {
        return None;
    }
    let n = match extra.strip_prefix('-') {
        None if extra.is_empty() => 1,
        Some(n) if digits(n) => n.parse().ok()?,
        _ => return None,
    };
    Some((stamp.to_owned(), n))
}

/// Remove the oldest of this node's scheduled backups in `folder` beyond
/// `keep`, `written` (the one just written) always kept; nothing else
/// there is touched. Those dated after `written` (a clock that ran ahead,
/// or files put there to push the new ones out) count as the oldest:
/// before, `keep` of them dated in the year 9999 had every new backup
/// removed as it was written.
fn prune(folder: &Path, tag: &str, keep: u32, written: &str) -> std::io::Result<()> {
    let now = ours(written, tag);
    let mut found: Vec<((bool, String, u32), String)> = std::fs::read_dir(folder)?
        .filter_map(Result::ok)
        .filter(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != written)
        .filter_map(|name| {
            let (stamp, n) = ours(&name, tag)?;
            let ahead = now
                .as_ref()
                .is_some_and(|now| (&stamp, n) > (&now.0, now.1));
            Some(((!ahead, stamp, n), name))
        })
        .collect();
    found.sort();
    let excess = found
        .len()
        .saturating_sub((keep as usize).saturating_sub(1));
    for (_, name) in &found[..excess] {
        std::fs::remove_file(folder.join(name))?;
    }
    Ok(())
}

/// Write the schedule's next backup, then prune; the outcome is recorded
/// either way.
fn back_up(s: &Session, mut stored: Stored, limit: Duration) -> Result<BackupMade, NodeError> {
    let now = now_secs();
    let written = (|| -> Result<(BackupMade, String, Option<std::io::Error>), NodeError> {
        let key =
            s.db.read()?
                .get_raw(&SCHEDULE_KEY, &record_key(s))?
                .ok_or_else(|| NodeError::Internal("the backup key is missing".into()))?;
        let key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| NodeError::Internal("the backup key is damaged".into()))?;
        let key = SymmetricKey::from_bytes(key);
        // A share that stopped answering leaves a thread waiting on it at
        // every try: none while one still waits.
        if timed::stuck() > 0 {
            return Err(NodeError::io(
                "write the backup",
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the disk or share has not answered an earlier backup yet",
                ),
            ));
        }
        let tag = node_tag(s);
        let (folder, names) = (stored.folder.clone(), tag.clone());
        let name = timed::run(limit, move || {
            let mut name = file_name(&names, now, 1);
            for n in 2..=100 {
                if !folder.join(&name).exists() {
                    break;
                }
                name = file_name(&names, now, n);
            }
            Ok(name)
        })
        .map_err(|e| NodeError::io("look at the backup folder", e))?;
        let kdf = stored.kdf.clone();
        let made = write_backup(s, &stored.folder.join(&name), None, limit, |out| {
            SealedWriter::with_key(out, key, kdf)
        })?;
        // The backup is written whatever becomes of the old ones.
        let (folder, keep, written) = (stored.folder.clone(), stored.keep, name.clone());
        let pruned = timed::run(limit, move || prune(&folder, &tag, keep, &written)).err();
        Ok((made, name, pruned))
    })();
    match written {
        Ok((made, name, pruned)) => {
            stored.last_success = Some(now);
            stored.last_file = Some(name);
            stored.last_error = pruned.map(|e| {
                format!("the backup was written, but an older one could not be removed: {e}")
            });
            save(s, &stored)?;
            Ok(made)
        }
        // Stopped for a lock: nothing failed, and it is still due.
        Err(NodeError::Locked) => Err(NodeError::Locked),
        Err(e) => {
            stored.last_error = Some(e.to_string());
            // The failure is what the caller hears of; the record is
            // only for Settings.
            let _ = save(s, &stored);
            Err(e)
        }
    }
}

impl Node {
    /// Back up every vault to `folder` every `every_hours` hours while
    /// unlocked, keeping the newest `keep` backups there, sealed with a
    /// key derived once from `passphrase` (which opens every one of
    /// them). Replaces any schedule; the first backup is due at once.
    pub async fn set_backup_schedule(
        &self,
        folder: PathBuf,
        every_hours: u32,
        keep: u32,
        passphrase: Password,
    ) -> Result<BackupSchedule, NodeError> {
        if !folder.is_absolute() || !folder.is_dir() {
            return Err(NodeError::Invalid(format!(
                "{} is not a folder here; choose an existing folder",
                folder.display()
            )));
        }
        if !(1..=MAX_EVERY_HOURS).contains(&every_hours) {
            return Err(NodeError::Invalid(
                "back up every hour at most and every 30 days at least".into(),
            ));
        }
        if !(1..=MAX_KEEP).contains(&keep) {
            return Err(NodeError::Invalid(format!(
                "keep between 1 and {MAX_KEEP} backups"
            )));
        }
        super::check_passphrase(&passphrase)?;
        let kdf = self.kdf_params();
        self.with_vaults(move |s| {
            let key = kdf
                .derive(&passphrase)
                .map_err(|e| NodeError::Internal(e.to_string()))?;
            let stored = Stored {
                folder,
                every_hours,
                keep,
                kdf,
                last_success: None,
                last_file: None,
                last_error: None,
            };
            let mut txn = s.db.write()?;
            txn.put(&SCHEDULE, &record_key(s), &stored)?;
            txn.put_raw(&SCHEDULE_KEY, &record_key(s), key.expose_secret())?;
            txn.commit()?;
            Ok(BackupSchedule::from(&stored))
        })
        .await
    }

    /// The backup schedule, if one is set.
    pub async fn backup_schedule(&self) -> Result<Option<BackupSchedule>, NodeError> {
        self.with_vaults_read(|s| Ok(load(s)?.as_ref().map(BackupSchedule::from)))
            .await
    }

    /// Stop backing up on a schedule (the backups written stay).
    pub async fn clear_backup_schedule(&self) -> Result<(), NodeError> {
        self.with_vaults(|s| {
            let mut txn = s.db.write()?;
            txn.delete(&SCHEDULE, &record_key(s))?;
            txn.put_raw(&SCHEDULE_KEY, &record_key(s), &[])?;
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// Write the schedule's backup now, due or not.
    pub async fn back_up_now(&self) -> Result<BackupMade, NodeError> {
        let limit = self.file_stall();
        self.with_vaults(move |s| {
            let stored = load(s)?.ok_or_else(|| {
                NodeError::Invalid("set up backups first: a folder and a passphrase".into())
            })?;
            back_up(s, stored, limit)
        })
        .await
    }

    /// Write the schedule's backup if one is due; `None` if none was.
    pub async fn back_up_if_due(&self) -> Result<Option<BackupMade>, NodeError> {
        let limit = self.file_stall();
        self.with_vaults(move |s| match load(s)? {
            Some(stored) if now_secs() >= BackupSchedule::from(&stored).next_due => {
                back_up(s, stored, limit).map(Some)
            }
            _ => Ok(None),
        })
        .await
    }
}

/// Look every [`BACKUP_CHECK_EVERY`] whether a scheduled backup is due,
/// until the node is gone (the network's tasks end with it).
pub(crate) async fn back_up_periodically(weak: Weak<Inner>) {
    let every = std::env::var("POLYKEY_BACKUP_CHECK_SECS")
        .ok()
        .filter(|_| cfg!(debug_assertions))
        .and_then(|v| v.parse().ok())
        .map_or(BACKUP_CHECK_EVERY, Duration::from_secs);
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        // A failure is recorded for Settings; the next tick tries again.
        let _ = Node { inner }.back_up_if_due().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_by_time_and_only_ours_are_pruned() {
        assert_eq!(stamp(0), "1970-01-01-000000");
        assert_eq!(stamp(1_764_582_000), "2025-12-01-094000");
        assert_eq!(stamp(951_825_600), "2000-02-29-120000");
        let tag = "abcd1234";
        assert_eq!(
            file_name(tag, 1_764_582_000, 1),
            "polykey-abcd1234-2025-12-01-094000.backup"
        );
        assert_eq!(
            ours(&file_name(tag, 1_764_582_000, 3), tag),
            Some(("2025-12-01-094000".into(), 3))
        );
        for other in [
            "polykey-abcd1234-2025-12-01-094000.backup.partial",
            "polykey-abcd1234-notes.backup",
            "polykey-abcd1234-2025-12-01-0940.backup",
            "my-polykey-abcd1234-2025-12-01-094000.backup",
            "polykey-abcd1234-2025-12-01-094000-.backup",
            // Another device's, in the same synced folder.
            "polykey-zzzz9999-2025-12-01-094000.backup",
            // Not ASCII where the time goes (a byte index inside a letter).
            "polykey-abcd1234-0000000000000000\u{e9}.backup",
            "polykey-abcd1234-2025-12-01-09400\u{e9}.backup",
        ] {
            assert_eq!(ours(other, tag), None, "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "polykey-abcd1234-2025-12-01-094000.backup",
            "polykey-abcd1234-2025-12-02-094000.backup",
            "polykey-abcd1234-2025-12-02-094000-2.backup",
            "polykey-abcd1234-2025-12-03-094000.backup",
            "polykey-zzzz9999-2025-11-01-094000.backup",
            "holiday.jpg",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let left = || {
            let mut left: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            left.sort();
            left
        };
        prune(
            dir.path(),
            tag,
            2,
            "polykey-abcd1234-2025-12-03-094000.backup",
        )
        .unwrap();
        assert_eq!(
            left(),
            [
                "holiday.jpg",
                "polykey-abcd1234-2025-12-02-094000-2.backup",
                "polykey-abcd1234-2025-12-03-094000.backup",
                "polykey-zzzz9999-2025-11-01-094000.backup",
            ]
        );
        // Files dated ahead of the one just written go first, and that
        // one stays: before, two dated in the year 9999 had each new
        // backup removed as it was written.
        for name in [
            "polykey-abcd1234-9999-12-31-235959.backup",
            "polykey-abcd1234-9999-12-31-235959-2.backup",
            "polykey-abcd1234-2025-12-04-094000.backup",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        prune(
            dir.path(),
            tag,
            2,
            "polykey-abcd1234-2025-12-04-094000.backup",
        )
        .unwrap();
        assert_eq!(
            left(),
            [
                "holiday.jpg",
                "polykey-abcd1234-2025-12-03-094000.backup",
                "polykey-abcd1234-2025-12-04-094000.backup",
                "polykey-zzzz9999-2025-11-01-094000.backup",
            ]
        );
    }
}
