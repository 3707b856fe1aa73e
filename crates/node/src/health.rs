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
use polykey_vaults::items::{Attachment, Item, ItemKind};
use polykey_vaults::Vaults;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::api::HealthItemDto;
use crate::error::NodeError;
use crate::node::{Node, Session};

/// A password scoring below this (0–4) is weak.
pub const WEAK_BELOW: u8 = 3;
/// Unchanged this long, a password is old.
pub const OLD_AFTER_DAYS: i64 = 365;
/// Most trees one vault's history walk may read for the age check.
const AGE_TREE_READS: usize = 50_000;

/// A login of a vault this device may write, with a password: where it
/// is, its title, user name and strength, and `digest` of its password.
/// Attachment files are not items and are passed over.
fn writable_logins<T>(
    s: &Session,
    digest: impl Fn(&str) -> T,
) -> Result<Vec<(HealthItemDto, T)>, NodeError> {
    let vaults = Vaults::new(&s.db);
    let mut out = Vec::new();
    for info in vaults.list()? {
        if Node::read_only_in(s, &info.id, &info.name)?.is_some() {
            continue;
        }
        let vault = vaults.open(&info.name)?;
        let mut files = vault.files(&s.db)?;
        files.retain(|(path, _)| !Attachment::is_attachment_file(path));
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
                    digest(password),
                ));
            }
        }
    }
    Ok(out)
}

impl Node {
    /// Every login with something to fix, weakest first.
    pub async fn password_health(&self) -> Result<Vec<HealthItemDto>, NodeError> {
        self.password_health_at(crate::peers::now_ms() / 1000).await
    }

    /// [`Self::password_health`] as of `now` (seconds since the epoch).
    #[doc(hidden)]
    pub async fn password_health_at(&self, now: i64) -> Result<Vec<HealthItemDto>, NodeError> {
        self.with_vaults_read(move |s| {
            // Each login with a hash of its password (only compared here).
            let mut logins = writable_logins(s, |password| -> [u8; 32] {
                Sha256::digest(password.as_bytes()).into()
            })?;
            // When each changed, read back only to a year ago, vault by
            // vault (listed together).
            let since = now - OLD_AFTER_DAYS * 86_400;
            let vaults = Vaults::new(&s.db);
            for group in logins.chunk_by_mut(|(a, _), (b, _)| a.vault == b.vault) {
                let vault = vaults.open(&group[0].0.vault)?;
                let paths: Vec<String> = group.iter().map(|(h, _)| h.path.clone()).collect();
                let (changed, complete) =
                    vault.changed_since(&s.db, &paths, since, AGE_TREE_READS)?;
                for (item, _) in group.iter_mut() {
                    match changed.get(&item.path) {
                        Some(time) => item.changed = *time,
                        None => item.old = complete,
                    }
                }
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
    /// breach check is off. Each distinct prefix is asked once, and only
    /// the answer's lines for these passwords are kept.
    pub async fn breached_logins(&self) -> Result<Vec<HealthItemDto>, NodeError> {
        let prefs = self.preferences();
        if !prefs.breach_check {
            return Err(NodeError::Invalid(
                "the breach check is off; turn it on in Settings, Security".into(),
            ));
        }
        let logins = self
            .with_vaults_read(|s| writable_logins(s, sha1_hex))
            .await?;
        let mut wanted = Wanted::new();
        for (_, hash) in &logins {
            wanted
                .entry(hash[..5].to_owned())
                .or_default()
                .insert(hash[5..].to_owned());
        }
        let counts = ask_ranges(&prefs.breach_endpoint, wanted).await?;
        let mut out: Vec<HealthItemDto> = logins
            .into_iter()
            .filter_map(|(mut item, hash)| {
                let seen = counts.get(&hash[..]).copied().unwrap_or(0);
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

/// The suffixes looked for, by prefix (upper-case hex).
type Wanted = HashMap<String, std::collections::HashSet<String>>;

/// The whole check's time, however many prefixes (a slow service cannot
/// hold it for hours: 10,000 logins at 4 at a time and 15 s each would).
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Ask `endpoint` for each prefix of `wanted` (a few at a time) and keep,
/// of each answer, only the wanted suffixes: full hash → times seen. A
/// failure of any one prefix is the check's failure, said plainly.
async fn ask_ranges(endpoint: &str, wanted: Wanted) -> Result<HashMap<String, u64>, NodeError> {
    let not_started = || NodeError::Network("could not start the breach check".into());
    let mut client = reqwest::Client::builder()
        .timeout(RANGE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Polykey");
    if crate::preferences::breach_endpoint_is_loopback(endpoint) {
        // Never through a proxy to this computer's own service.
        client = client.no_proxy();
    }
    let client = client.build().map_err(|_| not_started())?;
    let work = async {
        let mut out = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut queue = wanted.into_iter();
        loop {
            while tasks.len() < BREACH_PARALLEL {
                let Some((prefix, suffixes)) = queue.next() else {
                    break;
                };
                let url = crate::preferences::breach_range_url(endpoint, &prefix)
                    .ok_or_else(not_started)?;
                let client = client.clone();
                tasks.spawn(async move {
                    let found = ask_range(&client, url, &suffixes).await;
                    (prefix, found)
                });
            }
            let Some(done) = tasks.join_next().await else {
                break;
            };
            let (prefix, found) =
                done.map_err(|_| NodeError::Network("the breach check stopped".into()))?;
            for (suffix, count) in found? {
                out.insert(format!("{prefix}{suffix}"), count);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(CHECK_TIMEOUT, work)
        .await
        .map_err(|_| {
            NodeError::Network("the breach check service is too slow; try again later".into())
        })?
}

/// One prefix's answer (`SUFFIX:COUNT` lines; padding lines count 0),
/// bounded in bytes and lines: the wanted suffixes seen, with their counts.
async fn ask_range(
    client: &reqwest::Client,
    url: reqwest::Url,
    wanted: &std::collections::HashSet<String>,
) -> Result<HashMap<String, u64>, NodeError> {
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
        let suffix = suffix.to_ascii_uppercase();
        if !wanted.contains(&suffix) {
            continue;
        }
        let count: u64 = count.trim().parse().unwrap_or(0);
        if count > 0 {
            out.insert(suffix, count);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile service answers a range with as many made-up suffixes as
    /// the byte bound lets through: of them, only the suffix asked about
    /// is kept (the rest would be megabytes per prefix, thousands of
    /// prefixes per check).
    #[tokio::test]
    async fn only_the_wanted_suffixes_of_an_answer_are_kept() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!("http://{}/range/", listener.local_addr().expect("bound"));
        let mine = "0123456789ABCDEF0123456789ABCDEF012";
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a request");
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let mut body = String::new();
            for i in 0..40_000u32 {
                body.push_str(&format!("{i:035X}:{}\r\n", i + 1));
            }
            body.push_str(&format!("{}:7\r\n", mine.to_ascii_lowercase()));
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client");
        let wanted = std::collections::HashSet::from([mine.to_owned()]);
        let url = crate::preferences::breach_range_url(&url, "ABCDE").expect("a url");
        let found = ask_range(&client, url, &wanted).await.expect("an answer");
        assert_eq!(found, HashMap::from([(mine.to_owned(), 7)]));
        server.await.expect("served");
    }
}
