//! Password health: the logins whose password is weak, used by another
//! login too, or unchanged for over a year, across every vault this device
//! may write. Only where and why leave the node: never a password, nor a
//! hash of one.

use std::collections::HashMap;

use polykey_vaults::generate;
use polykey_vaults::items::{Item, ItemKind};
use polykey_vaults::Vaults;
use sha2::{Digest, Sha256};

use crate::api::HealthItemDto;
use crate::error::NodeError;
use crate::node::Node;

/// A password scoring below this (0–4) is weak.
pub const WEAK_BELOW: u8 = 3;
/// Unchanged this long, a password is old.
pub const OLD_AFTER_DAYS: i64 = 365;
/// Most trees one vault's history walk may read for the age check.
const AGE_TREE_READS: usize = 50_000;

impl Node {
    /// Every login with something to fix, weakest first.
    pub async fn password_health(&self) -> Result<Vec<HealthItemDto>, NodeError> {
        self.password_health_at(crate::peers::now_ms() / 1000).await
    }

    /// [`Self::password_health`] as of `now` (seconds since the epoch).
    #[doc(hidden)]
    pub async fn password_health_at(&self, now: i64) -> Result<Vec<HealthItemDto>, NodeError> {
        self.with_vaults_read(move |s| {
            let vaults = Vaults::new(&s.db);
            // (item, hash of its password) for each login with one.
            let mut logins: Vec<(HealthItemDto, [u8; 32])> = Vec::new();
            for info in vaults.list()? {
                if Node::read_only_in(s, &info.id, &info.name)?.is_some() {
                    continue;
                }
                let vault = vaults.open(&info.name)?;
                let files = vault.files(&s.db)?;
                let mut found = Vec::new();
                for chunk in files.chunks(512) {
                    let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
                    for ((path, _), bytes) in chunk.iter().zip(vault.blobs(&s.db, &ids)?) {
                        let Ok(item) = Item::from_bytes(&bytes) else {
                            continue;
                        };
                        let ItemKind::Login {
                            username, password, ..
                        } = &item.kind
                        else {
                            continue;
                        };
                        if password.is_empty() {
                            continue;
                        }
                        let score = generate::strength(password).score;
                        let hash: [u8; 32] = Sha256::digest(password.as_bytes()).into();
                        found.push((
                            HealthItemDto {
                                vault: info.name.clone(),
                                path: path.clone(),
                                title: item.title.clone(),
                                username: username.clone(),
                                score,
                                weak: score < WEAK_BELOW,
                                reused: 0,
                                changed: 0,
                                old: false,
                            },
                            hash,
                        ));
                    }
                }
                // When each changed, read back only to a year ago.
                let since = now - OLD_AFTER_DAYS * 86_400;
                let paths: Vec<String> = found.iter().map(|(h, _)| h.path.clone()).collect();
                let (changed, complete) =
                    vault.changed_since(&s.db, &paths, since, AGE_TREE_READS)?;
                for (item, _) in &mut found {
                    match changed.get(&item.path) {
                        Some(time) => item.changed = *time,
                        None => item.old = complete,
                    }
                }
                logins.extend(found);
            }
            let mut uses: HashMap<[u8; 32], u32> = HashMap::new();
            for (_, hash) in &logins {
                *uses.entry(*hash).or_default() += 1;
            }
            let mut out: Vec<HealthItemDto> = logins
                .into_iter()
                .map(|(mut item, hash)| {
                    item.reused = uses.get(&hash).copied().unwrap_or(1) - 1;
                    item
                })
                .filter(|i| i.weak || i.reused > 0 || i.old)
                .collect();
            out.sort_by(|a, b| {
                (a.score, std::cmp::Reverse(a.reused), &a.vault, &a.path).cmp(&(
                    b.score,
                    std::cmp::Reverse(b.reused),
                    &b.vault,
                    &b.path,
                ))
            });
            Ok(out)
        })
        .await
    }
}
