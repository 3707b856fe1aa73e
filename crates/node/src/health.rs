//! Password health: the logins whose password is weak, used by another
//! login too, or unchanged for over a year, across every vault this device
//! may write. Only where and why leave the node: never a password, nor a
//! hash of one.
//!
//! The breach check, when the user turns it on, asks a k-anonymity range
//! API (Have I Been Pwned's by default): for each password, only the first
//! five hex characters of its SHA-1 leave the device; the service answers
//! every hash suffix it knows under that prefix (padded, so the answer's
//! size says nothing either) and the match is made here.

use std::collections::HashMap;

use polykey_vaults::generate;
use polykey_vaults::items::{Item, ItemKind};
use polykey_vaults::Vaults;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

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
                                breached: 0,
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

    /// The logins whose password appears in known breaches, most seen
    /// first, by the range API the preferences name; refused while the
    /// breach check is off. Each distinct prefix is asked once.
    pub async fn breached_logins(&self) -> Result<Vec<HealthItemDto>, NodeError> {
        let prefs = self.preferences();
        if !prefs.breach_check {
            return Err(NodeError::Invalid(
                "the breach check is off; turn it on in Settings, Security".into(),
            ));
        }
        let logins = self
            .with_vaults_read(|s| {
                let vaults = Vaults::new(&s.db);
                let mut out: Vec<(HealthItemDto, Zeroizing<String>)> = Vec::new();
                for info in vaults.list()? {
                    if Node::read_only_in(s, &info.id, &info.name)?.is_some() {
                        continue;
                    }
                    let vault = vaults.open(&info.name)?;
                    let files = vault.files(&s.db)?;
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
                            out.push((
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
                                    breached: 0,
                                },
                                sha1_hex(password),
                            ));
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        let mut prefixes: Vec<String> = logins.iter().map(|(_, h)| h[..5].to_owned()).collect();
        prefixes.sort();
        prefixes.dedup();
        let counts = ask_ranges(&prefs.breach_endpoint, prefixes).await?;
        let mut out: Vec<HealthItemDto> = logins
            .into_iter()
            .filter_map(|(mut item, hash)| {
                let seen = counts
                    .get(&hash[..5])
                    .and_then(|suffixes| suffixes.get(&hash[5..]))
                    .copied()
                    .unwrap_or(0);
                item.breached = seen;
                (seen > 0).then_some(item)
            })
            .collect();
        out.sort_by(|a, b| {
            (std::cmp::Reverse(a.breached), &a.vault, &a.path).cmp(&(
                std::cmp::Reverse(b.breached),
                &b.vault,
                &b.path,
            ))
        });
        Ok(out)
    }
}

/// Most prefixes asked at once.
const BREACH_PARALLEL: usize = 4;
/// Longest answer taken for one prefix (Pwned Passwords' are about 40 KB
/// padded).
const MAX_RANGE_BYTES: usize = 2 * 1024 * 1024;
/// Most lines taken from one answer.
const MAX_RANGE_LINES: usize = 100_000;
/// How long one prefix may take.
const RANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The SHA-1 of a password, upper-case hex (as range APIs spell it).
fn sha1_hex(password: &str) -> Zeroizing<String> {
    use sha1::Digest as _;
    let digest = sha1::Sha1::digest(password.as_bytes());
    let mut hex = Zeroizing::new(String::with_capacity(40));
    for b in digest {
        hex.push_str(&format!("{b:02X}"));
    }
    hex
}

/// Suffix → times seen, by prefix.
type Ranges = HashMap<String, HashMap<String, u64>>;

/// Ask `endpoint` for each prefix (a few at a time); a failure of any one
/// is the check's failure, said plainly.
async fn ask_ranges(endpoint: &str, prefixes: Vec<String>) -> Result<Ranges, NodeError> {
    let client = reqwest::Client::builder()
        .timeout(RANGE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Polykey")
        .build()
        .map_err(|_| NodeError::Network("could not start the breach check".into()))?;
    let mut out = Ranges::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut queue = prefixes.into_iter();
    loop {
        while tasks.len() < BREACH_PARALLEL {
            let Some(prefix) = queue.next() else { break };
            let (client, url) = (client.clone(), format!("{endpoint}{prefix}"));
            tasks.spawn(async move {
                let suffixes = ask_range(&client, &url).await;
                (prefix, suffixes)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (prefix, suffixes) =
            done.map_err(|_| NodeError::Network("the breach check stopped".into()))?;
        out.insert(prefix, suffixes?);
    }
    Ok(out)
}

/// One prefix's answer: `SUFFIX:COUNT` lines (padding lines count 0).
async fn ask_range(client: &reqwest::Client, url: &str) -> Result<HashMap<String, u64>, NodeError> {
    let unreachable = |_| {
        NodeError::Network("the breach check service could not be reached; try again later".into())
    };
    let mut response = client
        .get(url)
        .header("Add-Padding", "true")
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(NodeError::Network(format!(
            "the breach check service answered {}; try again later",
            response.status().as_u16()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_RANGE_BYTES {
            return Err(NodeError::Network(
                "the breach check service sent far more than a range; not used".into(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body);
    let mut out = HashMap::new();
    for line in text.lines().take(MAX_RANGE_LINES) {
        let Some((suffix, count)) = line.trim().split_once(':') else {
            continue;
        };
        if suffix.len() != 35 || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let count: u64 = count.trim().parse().unwrap_or(0);
        if count > 0 {
            out.insert(suffix.to_ascii_uppercase(), count);
        }
    }
    Ok(out)
}
