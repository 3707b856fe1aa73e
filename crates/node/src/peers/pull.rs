//! Pulling from devices of the gestalt and merging, one task per device:
//! each sync has a deadline, so a slow or hostile device delays nobody
//! else. A pull takes the new claims of the gestalt's chains (`trust`),
//! the peer's vault list (new vaults received whole, newer names adopted,
//! missing history fetched page by page and stored as it arrives, then a
//! fast-forward or a merge), and last its vault deletions, in bounded pages.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use polykey_gestalts::{GestaltGraph, Judgement};
use polykey_keys::{NodeId, Plain};
use polykey_network::protocol::{
    MAX_DELETIONS_PAGE, MAX_DELETION_PAGES, MAX_HAVES, MAX_VAULTS, PAGE_BYTES,
};
use polykey_network::{Client, Request, Response};
use polykey_vaults::{
    kind_of_tag, Deletion, Incoming, MergeOutcome, Part, RawObject, Relation, Vault, VaultError,
    VaultId, Vaults, MAX_IMPORT_OBJECTS, MAX_SECRET_SIZE,
};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use super::resume::{cut_off, Progress, Resume};
use super::{
    clamp_peer_time, gestalt, net_error, now_ms, refused, upgrade, Node, PeerState,
    MAX_REFUSED_MERGES, REDIAL_EVERY, RESYNC_EVERY, RETRY_AFTER, WATCH_EVERY,
};
use crate::error::NodeError;
use crate::node::{Inner, Session};

/// The longest wait between tries with a device whose syncs keep failing.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// How often vaults deleted longer ago than the recovery window are freed.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);
/// The longest one whole sync with one device may take.
pub(crate) const SYNC_DEADLINE: Duration = Duration::from_secs(120);
/// The largest page an honest peer sends: it stops once a page reaches
/// [`PAGE_BYTES`], so its last object (at most one secret) crosses it.
pub(crate) const MAX_PAGE_BYTES: usize = PAGE_BYTES + MAX_SECRET_SIZE + 1024 * 1024;

/// Sync asks, routed to one task per device.
pub(crate) struct Scheduler {
    asks: mpsc::UnboundedSender<NodeId>,
    tasks: Tasks,
}

/// Each device's task (see [`dispatch`]).
type Tasks = Arc<Mutex<HashMap<NodeId, DeviceTask>>>;

fn lock_tasks(tasks: &Tasks) -> std::sync::MutexGuard<'_, HashMap<NodeId, DeviceTask>> {
    tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Scheduler {
    /// Start the dispatcher: it wakes each device's task on an ask, and
    /// every online device's every [`RESYNC_EVERY`].
    pub(super) fn start(weak: Weak<Inner>, client: Client) -> (Self, JoinHandle<()>) {
        let (asks, rx) = mpsc::unbounded_channel();
        let tasks = Tasks::default();
        let task = tokio::spawn(dispatch(weak, client, rx, Arc::clone(&tasks)));
        (Self { asks, tasks }, task)
    }

    /// Pull from `peer` soon (asks coalesce).
    pub(super) fn ask(&self, peer: NodeId) {
        let _ = self.asks.send(peer);
    }

    /// Pull from `peers` no more, a pull under way ending where it is
    /// (devices removed just now): it asks them nothing more, and fails
    /// on nothing to report. A pull that learned the removal itself (the
    /// caller's task) ends by itself, as it finds its peer removed.
    pub(super) fn stop(&self, peers: &[NodeId]) {
        let current = tokio::task::try_id();
        let mut stopped = Vec::new();
        let mut tasks = lock_tasks(&self.tasks);
        for peer in peers {
            if tasks
                .get(peer)
                .is_some_and(|t| Some(t.task.id()) != current)
            {
                stopped.extend(tasks.remove(peer));
            }
        }
        // (Aborted once the map is let go of.)
        drop(tasks);
        drop(stopped);
    }
}

struct DeviceTask {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Drop for DeviceTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn dispatch(
    weak: Weak<Inner>,
    client: Client,
    mut asks: mpsc::UnboundedReceiver<NodeId>,
    tasks: Tasks,
) {
    let mut every = tokio::time::interval(RESYNC_EVERY);
    every.tick().await;
    loop {
        let mut peers = BTreeSet::new();
        tokio::select! {
            asked = asks.recv() => match asked {
                Some(peer) => { peers.insert(peer); }
                None => return,
            },
            _ = every.tick() => {
                let Some(node) = upgrade(&weak) else { return };
                let state = node.inner.peer_state();
                peers.extend(state.online.iter().chain(&state.online_people).copied());
            }
        }
        let Some(node) = upgrade(&weak) else { return };
        let members: BTreeSet<NodeId> = {
            let state = node.inner.peer_state();
            state
                .members
                .union(&state.contested)
                .copied()
                .chain(state.shares.keys().copied())
                .collect()
        };
        // Devices no longer in the gestalt (and people no longer sharing)
        // lose their task.
        let mut tasks = lock_tasks(&tasks);
        tasks.retain(|peer, _| members.contains(peer));
        for peer in peers {
            if !members.contains(&peer) {
                continue;
            }
            let entry = tasks.entry(peer).or_insert_with(|| {
                let wake = Arc::new(Notify::new());
                let task = tokio::spawn(device_sync(
                    weak.clone(),
                    client.clone(),
                    peer,
                    Arc::clone(&wake),
                ));
                DeviceTask { wake, task }
            });
            entry.wake.notify_one();
        }
    }
}

/// A sync under way, counted in the sync status until it ends or its task
/// is stopped part way.
struct Syncing {
    node: Node,
    count: Arc<AtomicUsize>,
}

impl Syncing {
    fn begin(node: &Node) -> Self {
        let count = {
            let mut state = node.inner.peer_state();
            state.active_syncs.fetch_add(1, Ordering::SeqCst);
            state.sync.syncing = true;
            Arc::clone(&state.active_syncs)
        };
        node.notify();
        Self {
            node: node.clone(),
            count,
        }
    }
}

impl Drop for Syncing {
    fn drop(&mut self) {
        // (Counted where it began: the network stopped and started again
        // meanwhile counts its own syncs.)
        self.count.fetch_sub(1, Ordering::SeqCst);
        {
            let mut state = self.node.inner.peer_state();
            state.sync.syncing = state.active_syncs.load(Ordering::SeqCst) > 0;
        }
        self.node.notify();
    }
}

/// Pull from one device whenever woken, each sync within [`SYNC_DEADLINE`].
async fn device_sync(weak: Weak<Inner>, client: Client, peer: NodeId, wake: Arc<Notify>) {
    let retry = Arc::new(Mutex::new(None::<JoinHandle<()>>));
    let mut failures: u32 = 0;
    loop {
        wake.notified().await;
        let Some(node) = upgrade(&weak) else { return };
        let syncing = Syncing::begin(&node);
        let began = Instant::now();
        let result = match tokio::time::timeout(SYNC_DEADLINE, node.sync_with(&client, peer)).await
        {
            Ok(result) => result,
            Err(_) => Err(NodeError::Network(
                "a device took too long to sync; trying again later".into(),
            )),
        };
        // A sync cut off at its deadline let go of its transfer there.
        node.sweep_parts().await;
        if result.is_err() {
            // A transient failure (a dropped connection, a busy peer) is
            // tried again soon rather than at the next resync; a device that
            // keeps failing (or sending what is refused) is tried less and
            // less often, but not one whose transfer got somewhere and was
            // set aside (a large vault over a slow link goes on soon).
            if node.inner.resume_saved_since(peer, began) {
                failures = 0;
            }
            let delay = retry_delay(failures);
            failures = failures.saturating_add(1);
            let weak = weak.clone();
            let wake = Arc::clone(&wake);
            let handle = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(node) = upgrade(&weak) {
                    let state = node.inner.peer_state();
                    if state.online.contains(&peer) || state.online_people.contains(&peer) {
                        wake.notify_one();
                    }
                }
            });
            if let Ok(mut slot) = retry.lock() {
                if let Some(old) = slot.replace(handle) {
                    old.abort();
                }
            }
        }
        if result.is_ok() {
            failures = 0;
            // A retry still waiting is not needed now.
            if let Some(pending) = retry.lock().ok().and_then(|mut slot| slot.take()) {
                pending.abort();
            }
        }
        {
            let mut state = node.inner.peer_state();
            state.sync.last_sync = now_ms();
            // A merge refused stays reported until that vault merges.
            state.sync.last_error = result
                .err()
                .map(|e| e.to_string())
                .or_else(|| state.refused_report());
        }
        drop(syncing);
    }
}

/// The wait before the next try after `failures` failed syncs in a row:
/// [`RETRY_AFTER`], doubling, at most [`MAX_RETRY_AFTER`].
fn retry_delay(failures: u32) -> Duration {
    RETRY_AFTER
        .saturating_mul(1u32 << failures.min(16))
        .min(MAX_RETRY_AFTER)
}

/// Tell connected devices of the gestalt when our vaults or chain change.
pub(super) async fn watch_changes(weak: Weak<Inner>, client: Client) {
    let mut last_generation = None;
    let mut last_snapshot: Option<Vec<String>> = None;
    let mut redial = tokio::time::interval(REDIAL_EVERY);
    let mut purge = tokio::time::interval(PURGE_EVERY);
    loop {
        let commits = match weak.upgrade() {
            Some(inner) => Arc::clone(&inner.commits),
            None => return,
        };
        tokio::select! {
            _ = commits.notified() => {}
            // A fallback; commits normally wake the watcher at once.
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = redial.tick() => {
                if let Some(node) = upgrade(&weak) {
                    tokio::spawn(async move { node.redial().await });
                }
                continue;
            }
            _ = purge.tick() => {
                if let Some(node) = upgrade(&weak) {
                    let _ = node.purge_deleted().await;
                }
                continue;
            }
        }
        let Some(node) = upgrade(&weak) else { return };
        let generation = node.db_generation();
        if generation.is_none() || generation == last_generation {
            continue;
        }
        last_generation = generation;
        let Ok(snapshot) = node.snapshot().await else {
            continue;
        };
        if last_snapshot.as_ref() == Some(&snapshot) {
            continue;
        }
        // Each changed line's vault id, and the head it moved to when
        // nothing else changed.
        let news: Vec<(String, Option<String>)> = snapshot
            .iter()
            .filter(|line| {
                last_snapshot
                    .as_ref()
                    .is_none_or(|last| !last.contains(line))
            })
            .map(|line| {
                let id = line.split(' ').next().unwrap_or_default();
                let moved_to = last_snapshot.as_ref().and_then(|last| {
                    let before = last.iter().find(|l| l.split(' ').next() == Some(id))?;
                    let (head, rest) = head_and_rest(line)?;
                    (head_and_rest(before)?.1 == rest).then(|| head.to_owned())
                });
                (id.to_owned(), moved_to)
            })
            .collect();
        // The first look announces too: a peer that pulls finds nothing new
        // at worst, and nothing changed before the watch began goes unsaid.
        last_snapshot = Some(snapshot);
        let online: Vec<NodeId> = {
            let state = node.inner.peer_state();
            // A device is told unless every change is a vault moving to the
            // head that device gave as its own (a pull from it): telling it
            // would only make it pull back what it sent.
            let devices = state.online.iter().filter(|peer| {
                let told = state.heads_told.get(*peer);
                news.iter().any(|(id, moved_to)| {
                    moved_to.is_none() || told.and_then(|heads| heads.get(id)) != moved_to.as_ref()
                })
            });
            // People sharing a vault with this gestalt hear of that vault's
            // changes only.
            let people = state.online_people.iter().filter(|n| {
                state.pulls_from_here.get(n).is_some_and(|vaults| {
                    vaults
                        .iter()
                        .any(|v| news.iter().any(|(id, _)| *id == v.to_string()))
                })
            });
            devices.chain(people).copied().collect()
        };
        // Every device at once: a slow one must not hold up the others.
        for peer in online {
            node.send_changed(&client, peer);
        }
    }
}

/// The versions a pull names as those this copy has: the peer sends what
/// they do not reach.
pub(super) enum Haves {
    /// These, from this copy's log.
    Given(Vec<String>),
    /// This copy's head and the head the peer gave at its last `Vaults`
    /// answer, when that is stored here (the peer has it, so the two
    /// histories meet there): two names instead of the recent log, which
    /// is named otherwise (up to [`MAX_HAVES`]).
    Told(Option<String>),
}

/// How a vault this node lacked was received ([`Node::receive_new_vault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NewVault {
    /// Here now, from this transfer.
    Received,
    /// Not taken: it was deleted here at that version.
    DeletedHere,
    /// Here already: another device's transfer brought it meanwhile.
    AlreadyHere,
    /// Not begun: another device's transfer of it is under way.
    Busy,
}

/// Whether `id` is written as a whole commit id (40 lowercase hex digits).
fn is_commit_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A vault's snapshot line (see `Node::snapshot`: a name may hold spaces,
/// the last three fields are the head, whether deleted, and the access
/// time) as its head and the line without it.
fn head_and_rest(line: &str) -> Option<(&str, String)> {
    let mut fields = line.rsplitn(4, ' ');
    let (access_at, deleted, head, start) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    Some((head, format!("{start} {deleted} {access_at}")))
}

/// `result` of one vault's transfer: a failure of that vault alone (its
/// data refused here, or by the peer) is kept in `failed` (the first one)
/// and gives `None`; any other (the node locked, the network, the disk)
/// ends the pull.
fn vault_alone<T>(
    result: Result<T, NodeError>,
    failed: &mut Option<NodeError>,
) -> Result<Option<T>, NodeError> {
    match result {
        Ok(done) => Ok(Some(done)),
        Err(
            e @ (NodeError::BadPeerData(_)
            | NodeError::PeerRefused(_)
            | NodeError::ReadOnly(_)
            | NodeError::Vault(
                VaultError::Refused(_)
                | VaultError::InvalidVaultName(_)
                | VaultError::Corrupt(_)
                | VaultError::TooLarge { .. }
                | VaultError::UnknownVault(_),
            )),
        ) => {
            failed.get_or_insert(e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn may_author(members: &BTreeSet<NodeId>) -> impl Fn(&NodeId) -> bool + '_ {
    move |n: &NodeId| members.contains(n)
}

/// Who may have made a commit at a time (seconds): a device of the gestalt,
/// or a removed one before its removal (its earlier work stays in history
/// and still reaches a device that was away), never after.
fn may_author_at<'a>(
    members: &'a BTreeSet<NodeId>,
    removed: &'a HashMap<NodeId, u64>,
) -> impl Fn(&NodeId, i64) -> bool + 'a {
    move |n: &NodeId, time: i64| {
        members.contains(n)
            || removed
                .get(n)
                .is_some_and(|at| u64::try_from(time).is_ok_and(|t| t <= *at))
    }
}

impl Node {
    /// Pull from `peer` now and wait for it (tests and the CLI).
    pub async fn sync_now(&self, peer: NodeId) -> Result<bool, NodeError> {
        let client = self.client()?;
        self.sync_with(&client, peer).await
    }

    /// Bring vault `id` here to `want`, `peer`'s version: fetch what is
    /// missing (naming the versions here that `haves` says), then
    /// fast-forward, or merge where the two diverged and `merges`.
    /// Returns whether the vault moved, and whether the peer should pull
    /// (it has diverged and merges).
    pub(super) async fn catch_up(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        want: &str,
        haves: Haves,
        merges: bool,
    ) -> Result<(bool, bool), NodeError> {
        // What it names and takes in is no version's till the merge: a
        // collection while unlocked waits for it (`Node::collect_if_quiet`).
        let _catching_up = self.inner.catching_up();
        let wanted = want.to_owned();
        let refused_before = self
            .inner
            .peer_state()
            .refused_merges
            .get(&(id, want.to_owned()))
            .map(|(head, _)| head.clone());
        let refused_here = refused_before.clone();
        let missing = self
            .with_vaults(move |s| {
                let vault = Vaults::new(&s.db).open_any(&id)?;
                // A version whose merge this side refused at this head is
                // not fetched again (a collection may have taken it).
                if merges && refused_here.is_some_and(|at| vault.head(&s.db).ok() == Some(at)) {
                    return Ok(Err(()));
                }
                // Whether the version is here at all (how it relates to
                // ours would walk both histories when they diverged).
                match vault.has_version(&s.db, &wanted) {
                    Ok(true) => Ok(Ok(None)),
                    Ok(false) => Ok(Ok(Some(match haves {
                        Haves::Given(recent) => recent,
                        Haves::Told(Some(told)) if vault.has_version(&s.db, &told)? => {
                            let head = vault.head(&s.db)?;
                            if head == told {
                                vec![told]
                            } else {
                                vec![head, told]
                            }
                        }
                        Haves::Told(_) => vault
                            .log(&s.db, Some(MAX_HAVES))?
                            .into_iter()
                            .map(|c| c.id)
                            .collect(),
                    }))),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        let Ok(missing) = missing else {
            return Ok((false, false));
        };
        if let Some(recent) = missing {
            let vault = self
                .with_vaults(move |s| Ok(Vaults::new(&s.db).open_any(&id)?))
                .await?;
            if self.fetch_into(client, peer, &vault, want, recent).await? {
                return Ok((true, false));
            }
        }
        let want = want.to_owned();
        let offered = want.clone();
        let outcome = self
            .with_vaults(move |s| {
                let vault = Vaults::new(&s.db).open_any(&id)?;
                // The side that merges asks `merge` alone: it finds a
                // fast-forward, or walks each history once (asking
                // `relation` first would walk them twice more).
                if merges {
                    let head = vault.head(&s.db)?;
                    if refused_before.as_ref() == Some(&head) {
                        return Ok(Err(None));
                    }
                    return Ok(match vault.merge(&s.db, &s.keys, &want) {
                        Ok(MergeOutcome::UpToDate) => Ok((false, true)),
                        Ok(MergeOutcome::FastForward { .. } | MergeOutcome::Merged { .. }) => {
                            Ok((true, false))
                        }
                        // Both versions are kept as they are; so is this
                        // pull's work on the other vaults.
                        Err(VaultError::OverLimit(why)) => Err(Some((head, why))),
                        // Collected since it came, at a quiet moment (see
                        // `Node::collect_if_quiet`): fetched again next time.
                        Err(VaultError::UnknownVersion(_)) => Err(None),
                        Err(e) => return Err(e.into()),
                    });
                }
                match Self::follow(s, &vault, &want) {
                    Err(NodeError::Vault(VaultError::UnknownVersion(_))) => Ok(Err(None)),
                    followed => Ok(Ok(followed?)),
                }
            })
            .await?;
        let mut state = self.inner.peer_state();
        match outcome {
            Ok(moved) => {
                if moved.0 {
                    // Merged at last (or moved on): nothing left to report.
                    state.refused_merges.retain(|(vault, _), _| *vault != id);
                }
                Ok(moved)
            }
            Err(None) => Ok((false, false)),
            Err(Some((head, why))) => {
                if state.refused_merges.len() >= MAX_REFUSED_MERGES {
                    state.refused_merges.clear();
                }
                state.refused_merges.insert((id, offered), (head, why));
                let report = state.refused_report();
                state.sync.last_error = report;
                Ok((false, false))
            }
        }
    }

    /// The side that does not merge: fast-forward to `want` when this copy
    /// is behind it, and otherwise leave the merge to the peer.
    fn follow(s: &Session, vault: &Vault, want: &str) -> Result<(bool, bool), NodeError> {
        match vault.relation(&s.db, want)? {
            Relation::UpToDate => Ok((false, true)),
            Relation::Behind => {
                vault.merge(&s.db, &s.keys, want)?;
                Ok((true, false))
            }
            // The peer merges; it pulls when told.
            Relation::Diverged => Ok((false, true)),
        }
    }

    /// Fetch every object of `want` that our copy (with `haves`) lacks into
    /// `vault`, storing each page as it arrives (checked as
    /// [`Vault::receive_page`] does); the last page's transaction checks
    /// the version is complete and fast-forwards to it when this copy is
    /// behind. Returns whether the head moved.
    async fn fetch_into(
        &self,
        client: &Client,
        peer: NodeId,
        vault: &Vault,
        want: &str,
        haves: Vec<String>,
    ) -> Result<bool, NodeError> {
        let (_, moved) = self
            .fetch_pages(client, peer, vault, want, haves, true)
            .await?;
        Ok(moved)
    }

    /// Pull everything new from `peer`. Returns whether anything changed here.
    pub(super) async fn sync_with(&self, client: &Client, peer: NodeId) -> Result<bool, NodeError> {
        let contested = self.inner.peer_state().contested.contains(&peer);
        let person = !self.is_member(&peer) && !contested && self.shares_with(&peer);
        if !self.is_member(&peer) && !contested && !person {
            return Err(NodeError::PeerRefused(
                "not a device of this gestalt".into(),
            ));
        }
        let lock = {
            let mut state = self.inner.peer_state();
            if state.pull_locks.len() > state.members.len() + state.shares.len() + 1 {
                let PeerState {
                    members, shares, ..
                } = &*state;
                let keep: BTreeSet<NodeId> = members.iter().chain(shares.keys()).copied().collect();
                state.pull_locks.retain(|p, _| keep.contains(p));
            }
            Arc::clone(state.pull_locks.entry(peer).or_default())
        };
        let _one_at_a_time = lock.lock().await;
        if person {
            return self.share_sync_with(client, peer).await;
        }
        // The vaults are asked for while the chains are taken (one round
        // trip fewer), and looked at only after.
        let member = self.is_member(&peer);
        let vaults_asked = async {
            match member {
                true => Some(client.request(peer, Request::Vaults).await),
                false => None,
            }
        };
        let (chains, vaults) = tokio::join!(
            async {
                let changed = self.pull_chains(client, peer).await?;
                if changed {
                    // A removal learned (or fallen) counts before anything
                    // else the peer may fail to send.
                    self.settle_removed().await?;
                }
                Ok::<_, NodeError>(changed)
            },
            vaults_asked
        );
        let mut changed = chains?;
        if !self.is_member(&peer) {
            // The pull itself showed the peer was removed.
            return Ok(changed);
        }
        let vaults = match vaults {
            Some(answer) => answer,
            // A member again: its removal fell with the chains just taken.
            None => client.request(peer, Request::Vaults).await,
        };
        let vaults = match vaults.map_err(net_error)? {
            Response::Vaults { vaults } => vaults,
            other => return Err(refused(other)),
        };
        if vaults.len() > MAX_VAULTS {
            return Err(NodeError::BadPeerData("too many vaults listed".into()));
        }
        let told_before;
        {
            let mut state = self.inner.peer_state();
            // Only well-formed ids are kept (the answer is the peer's).
            let heads = vaults
                .iter()
                .filter(|v| v.id.parse::<VaultId>().is_ok() && is_commit_id(&v.head))
                .map(|v| (v.id.clone(), v.head.clone()))
                .collect();
            told_before = state.heads_told.insert(peer, heads).unwrap_or_default();
            let PeerState {
                members,
                heads_told,
                ..
            } = &mut *state;
            heads_told.retain(|node, _| members.contains(node));
        }
        let me = self.status().node_id.ok_or(NodeError::Locked)?;
        let local = self
            .with_vaults(move |s| {
                let vaults = Vaults::new(&s.db);
                let mut local = HashMap::new();
                for (info, head, _) in vaults.list_for_sync()? {
                    local.insert(info.id.to_string(), (head, info.renamed_at));
                }
                Ok(local)
            })
            .await?;
        // Who else takes part in each vault, before any is received: the
        // authors of a shared vault are taken from it.
        let access: Vec<(VaultId, polykey_network::Access)> = vaults
            .iter()
            .filter_map(|v| Some((v.id.parse().ok()?, v.access.clone()?)))
            .collect();
        if !access.is_empty() {
            let adopted = self
                .with_vaults(move |s| {
                    let mut any = false;
                    for (id, access) in access {
                        any |= super::share::adopt_access(s, &id, access)?;
                    }
                    Ok(any)
                })
                .await?;
            if adopted {
                self.refresh_shares().await?;
                changed = true;
            }
        }
        // A vault whose history is refused here (or that the peer refuses
        // to send) stops only itself: before, the pull ended there, and
        // every vault after it in the list, the deletions and the removals
        // waited for good behind one vault (a writer's commits taken on one
        // device and refused on another). The first such failure is the
        // pull's, once the rest is done.
        let mut failed = None;
        for summary in vaults {
            let Ok(id) = summary.id.parse::<VaultId>() else {
                continue;
            };
            match local.get(&summary.id) {
                None => {
                    // A slow device sending it too delays no other vault of
                    // this pull: the next pull takes it if that one fails.
                    let received = self
                        .receive_new_vault(client, peer, id, &summary, false)
                        .await;
                    changed |= vault_alone(received, &mut failed)? == Some(NewVault::Received);
                }
                Some((head, renamed_here)) => {
                    let (name, renamed_at) = (summary.name.clone(), summary.renamed_at);
                    // A rename dated beyond this clock's skew is not taken
                    // at all: clamped, it would win again at every pull.
                    if renamed_at > *renamed_here && renamed_at == clamp_peer_time(renamed_at) {
                        let adopted = self
                            .with_vaults(move |s| {
                                Ok(Vaults::new(&s.db).adopt_name(&id, &name, renamed_at)?)
                            })
                            .await;
                        changed |= vault_alone(adopted, &mut failed)? == Some(true);
                    }
                    if *head == summary.head {
                        continue;
                    }
                    let lower = me.as_bytes() < peer.as_bytes();
                    let caught_up = self
                        .catch_up(
                            client,
                            peer,
                            id,
                            &summary.head,
                            Haves::Told(told_before.get(&summary.id).cloned()),
                            lower,
                        )
                        .await;
                    let Some((moved, ask_peer)) = vault_alone(caught_up, &mut failed)? else {
                        continue;
                    };
                    changed |= moved;
                    if ask_peer {
                        self.send_changed(client, peer);
                    }
                }
            }
        }
        changed |= self.pull_deletions(client, peer).await?;
        changed |= self.settle_removed().await?;
        if changed {
            // A shared vault received (or deleted) changes who takes part.
            self.refresh_shares().await?;
            self.notify();
        }
        match failed {
            Some(failed) => Err(failed),
            None => Ok(changed),
        }
    }

    /// Receive a vault this node lacks, page by page; a refused or broken
    /// transfer leaves nothing behind. One transfer of a vault at a time:
    /// while another device's transfer of it is under way, this one
    /// `wait`s for it (then finds the vault here, or begins again if that
    /// one failed), or is not begun at all ([`NewVault::Busy`]).
    pub(super) async fn receive_new_vault(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        summary: &polykey_network::VaultSummary,
        wait: bool,
    ) -> Result<NewVault, NodeError> {
        let lock = self.inner.new_vault_lock(id);
        let _one_at_a_time = if wait {
            lock.lock().await
        } else {
            match lock.try_lock() {
                Ok(held) => held,
                Err(_) => return Ok(NewVault::Busy),
            }
        };
        self.receive_new_vault_held(client, peer, id, summary, None)
            .await
    }

    /// [`Self::receive_new_vault`] for a caller that holds the lock of
    /// new vault `id` already (see `Inner::new_vault_lock`). With
    /// `taken_from`, the vault is another person's being accepted: it is
    /// finished only if its record (which other devices of this gestalt
    /// may have merged into meanwhile) still lets it be taken from them
    /// (see `share::taken_from`), and dropped otherwise.
    pub(super) async fn receive_new_vault_held(
        &self,
        client: &Client,
        peer: NodeId,
        id: VaultId,
        summary: &polykey_network::VaultSummary,
        taken_from: Option<&str>,
    ) -> Result<NewVault, NodeError> {
        let owner = taken_from.map(str::to_owned);
        let (name, renamed_at) = (summary.name.clone(), clamp_peer_time(summary.renamed_at));
        let head = summary.head.clone();
        let offered = head.clone();
        let begun = self
            .with_vaults(move |s| {
                let vaults = Vaults::new(&s.db);
                // Purged here at that version: nothing to fetch.
                if vaults.purged_at(&id, &offered)? {
                    return Ok(Err(NewVault::DeletedHere));
                }
                match vaults.begin_receive_vault(&name, &id.to_string(), renamed_at) {
                    Ok(vault) => Ok(Ok(vault)),
                    // Deleted here: not brought back by a copy at that version.
                    Err(VaultError::UnknownVault(_)) => Ok(Err(NewVault::DeletedHere)),
                    // Another transfer brought it meanwhile.
                    Err(VaultError::VaultExists(_)) => Ok(Err(NewVault::AlreadyHere)),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        let vault = match begun {
            Ok(vault) => vault,
            Err(outcome) => return Ok(outcome),
        };
        let fetched = self
            .fetch_pages(client, peer, &vault, &summary.head, Vec::new(), false)
            .await;
        let finished = match fetched {
            Ok((incoming, _)) => {
                self.with_vaults(move |s| {
                    if let Some(owner) = owner {
                        // Still the record the accept wrote (not one its
                        // undoing, after its deadline, removed).
                        let now = super::share::access_of(s, &id)?;
                        let named = now.remote.as_ref().is_some_and(|r| r.owner == owner);
                        if !named || !super::share::taken_from(&now, &owner) {
                            return Err(super::share::not_theirs(&owner));
                        }
                    }
                    Vaults::new(&s.db).finish_receive_vault(&id.to_string(), incoming, &head)?;
                    Ok(())
                })
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = finished {
            // Its copy stays while a transfer of it waits to go on: this
            // one, cut off part way, or another device's (a device failing
            // or refused here takes no other's progress away).
            let awaited = self.inner.copy_awaited(id);
            if awaited && cut_off(&e) {
                return Err(e);
            }
            let deleted_here = self
                .with_vaults(move |s| {
                    let vaults = Vaults::new(&s.db);
                    if !awaited {
                        vaults.abort_receive_vault(&id.to_string())?;
                    }
                    Ok(vaults.deletion_recorded(&id.to_string())?)
                })
                .await;
            // Refused as a version this node deleted, older than the
            // deletion (see `Vaults::settle_received`): not an error of
            // the sync, which goes on with the other vaults.
            return match (e, deleted_here) {
                (NodeError::Vault(VaultError::UnknownVault(_)), Ok(true)) => {
                    Ok(NewVault::DeletedHere)
                }
                (e, _) => Err(e),
            };
        }
        Ok(NewVault::Received)
    }

    /// Fetch the objects of `want` a copy with `haves` lacks into `vault`,
    /// page by page; the caller finishes (or aborts) the transfer, or with
    /// `finish` the last page's transaction does, and fast-forwards to
    /// `want` when behind (returned: whether it did). A page
    /// larger than an honest peer sends, or more objects than the transfer
    /// announced, ends it: memory holds one page at a time. Commits are
    /// taken from the gestalt's devices, the vault's other authors (see
    /// `share::extra_authors`); never from a device this gestalt
    /// removed, after its removal.
    async fn fetch_pages(
        &self,
        client: &Client,
        peer: NodeId,
        vault: &Vault,
        want: &str,
        haves: Vec<String>,
        finish: bool,
    ) -> Result<(Incoming, bool), NodeError> {
        let haves = match self.inner.haves_set_aside(vault, peer, want) {
            Some(before) if before != haves => {
                let (id, kept) = (vault.id(), before.clone());
                let still_here = self
                    .with_vaults(move |s| {
                        let vault = Vaults::new(&s.db).open_any(&id)?;
                        only_edited_here_since(s, &vault, &kept)
                    })
                    .await?;
                if still_here {
                    before
                } else {
                    haves
                }
            }
            _ => haves,
        };
        let (mut progress, at, announced) =
            Progress::begin(&self.inner.resumes, vault, peer, want, &haves);
        let fetched = self
            .fetch_pages_from(
                client,
                vault,
                (want, haves),
                finish,
                &progress,
                (at, announced),
            )
            .await;
        if !matches!(&fetched, Err(e) if cut_off(e)) {
            progress.end();
        }
        drop(progress);
        self.sweep_parts().await;
        fetched
    }

    /// [`Node::fetch_pages`] from `at` (objects taken in whole, and bytes
    /// of the next), of a transfer that `announced` so many objects if it
    /// was set aside before; between pages its progress is set aside
    /// under `progress`, where the next page takes it back.
    async fn fetch_pages_from(
        &self,
        client: &Client,
        vault: &Vault,
        (want, haves): (&str, Vec<String>),
        finish: bool,
        progress: &Progress<'_>,
        (mut at, mut announced): ((usize, usize), Option<usize>),
    ) -> Result<(Incoming, bool), NodeError> {
        let (id, peer) = progress.key;
        // Ask for the page at `at`, as large as the peer's link carries:
        // its answer, the page asked for, and how long it took.
        let ask = |(skip, from): (usize, usize)| {
            let page = self.inner.peer_state().pace.page(&peer);
            let request = Request::Fetch {
                vault: id.to_string(),
                want: want.to_owned(),
                haves: haves.clone(),
                skip: u32::try_from(skip).unwrap_or(u32::MAX),
                from: from as u64,
                page: if page < PAGE_BYTES {
                    u32::try_from(page).unwrap_or(0)
                } else {
                    0
                },
            };
            async move {
                let asked = Instant::now();
                let answer = client.request(peer, request).await;
                (answer, page, asked.elapsed())
            }
        };
        let mut answer = ask(at).await;
        loop {
            let (result, page, took) = answer;
            let response = match result {
                Ok(response) => response,
                Err(e) => {
                    self.inner.peer_state().pace.failed(peer, took);
                    return Err(net_error(e));
                }
            };
            let (objects, total) = match response {
                Response::Objects { objects, total } => (objects, total as usize),
                other => return Err(refused(other)),
            };
            let bytes = objects.iter().map(|o| o.data.len()).sum();
            self.inner.peer_state().pace.took(peer, page, bytes, took);
            // The same version from the same copy is planned the same way
            // every time (also when set aside before).
            if announced.is_some_and(|before| before != total) {
                return Err(NodeError::BadPeerData("a transfer changed its size".into()));
            }
            // Announced before (set aside, or a page of this fetch stored):
            // what the pages took in waits in `progress`.
            let set_aside = announced.replace(total).is_some();
            let page = check_page(objects, total, at)?;
            let (mut skip, mut from) = at;
            match &page {
                Received::Objects(objects) => skip += objects.len(),
                Received::Part(part) => {
                    from = part.offset.saturating_add(part.data.len());
                    if from >= part.len {
                        (skip, from) = (skip + 1, 0);
                    }
                }
            }
            let carried = match progress.take() {
                Some(resume) => resume.incoming,
                None if !set_aside => Incoming::new(vault),
                None => {
                    return Err(NodeError::Network(
                        "too many transfers at once; this one begins again later".into(),
                    ))
                }
            };
            if skip >= total {
                let last = finish.then(|| want.to_owned());
                return self
                    .with_vaults(move |s| take_page(s, id, carried, page, last))
                    .await;
            }
            let inner = Arc::clone(&self.inner);
            let (deposit, version) = (progress.deposit(), (want.to_owned(), haves.clone()));
            // Put back in the page's own call: a fetch cancelled while it
            // runs (at the sync's deadline) loses nothing.
            let receive = self.with_vaults(move |s| {
                let (incoming, _) = take_page(s, id, carried, page, None)?;
                let resume = Resume::after_page(version, total, (skip, from), incoming);
                deposit.put(&inner.resumes, resume);
                Ok(())
            });
            // The next page is asked for while this one is checked and
            // stored, so the peer reads it meanwhile (two pages in memory
            // at most).
            let (stored, next) = tokio::join!(receive, ask((skip, from)));
            stored?;
            (at, answer) = ((skip, from), next);
        }
    }

    /// Take the peer's vault deletions, page by page, each verified and
    /// obeyed only where this node's copy is at the deleted version (an
    /// edit made after a deletion wins over it).
    async fn pull_deletions(&self, client: &Client, peer: NodeId) -> Result<bool, NodeError> {
        let mut after: Option<String> = None;
        let mut changed = false;
        for _ in 0..MAX_DELETION_PAGES {
            let (deletions, more) = match client
                .request(
                    peer,
                    Request::Deletions {
                        after: after.clone(),
                    },
                )
                .await
                .map_err(net_error)?
            {
                Response::Deletions { deletions, more } => (deletions, more),
                other => return Err(refused(other)),
            };
            if deletions.len() > MAX_DELETIONS_PAGE {
                return Err(NodeError::BadPeerData(
                    "too many deletions in a page".into(),
                ));
            }
            let last = deletions.last().map(|d| d.vault.clone());
            // Pages must move forward, or the peer is stalling us.
            if let (Some(last), Some(previous)) = (&last, &after) {
                if last <= previous {
                    return Err(NodeError::BadPeerData("deletion pages out of order".into()));
                }
            }
            changed |= self
                .with_vaults(move |s| {
                    let members = gestalt(s)?;
                    let vaults = Vaults::new(&s.db);
                    let mut changed = false;
                    for wire in deletions {
                        let Ok(vault) = wire.vault.parse::<VaultId>() else {
                            continue;
                        };
                        let deletion = Deletion {
                            vault,
                            head: wire.head,
                            deleted_at: wire.deleted_at,
                            by: wire.by,
                            signature: wire.signature,
                        };
                        // A bad record is skipped, not fatal: the others
                        // still count.
                        if let Ok(applied) =
                            vaults.apply_deletion(&deletion, &may_author(&members), now_ms())
                        {
                            changed |= applied;
                        }
                    }
                    Ok(changed)
                })
                .await?;
            if !more || last.is_none() {
                break;
            }
            after = last;
        }
        Ok(changed)
    }
}

/// Check and store one page of a transfer into vault `id`, carrying what
/// the transfer took in so far; with `last` (the version wanted) the page
/// ends the transfer and the vault fast-forwards to it when behind
/// (returned: whether it did).
fn take_page(
    s: &Session,
    id: VaultId,
    mut carried: Incoming,
    page: Received,
    last: Option<String>,
) -> Result<(Incoming, bool), NodeError> {
    let page = match page {
        Received::Objects(page) => page,
        Received::Part(part) => {
            if last.is_some() {
                return Err(NodeError::BadPeerData(
                    "a transfer ended with a secret, not a version".into(),
                ));
            }
            let vault = Vaults::new(&s.db).open_any(&id)?;
            vault.receive_part(&s.db, &mut carried, &part)?;
            return Ok((carried, false));
        }
    };
    // The removal that counts (its issuer stands): a fallen thief's removal
    // dates nothing.
    let Judgement {
        mut members,
        in_force,
        disputed,
    } = GestaltGraph::new(&s.db).judgement(s.keys.node_id())?;
    let mut removed: HashMap<NodeId, u64> = in_force.into_iter().map(|r| (r.node, r.at)).collect();
    let (others, others_removed) = super::share::extra_authors(s, &id)?;
    for (node, at) in others_removed {
        removed.entry(node).or_insert(at);
    }
    members.extend(others.into_iter().filter(|n| !removed.contains_key(n)));
    // A device in a dispute authors nothing new here, whatever its date,
    // until the user decides: the thief among them could otherwise date
    // commits before the removal that counts for it, and none would be
    // undone (a dispute's devices are held, see `settle_removed`).
    for node in disputed {
        removed.remove(&node);
        members.remove(&node);
    }
    let vault = Vaults::new(&s.db).open_any(&id)?;
    let may = may_author_at(&members, &removed);
    let moved = match last {
        Some(want) => vault.receive_last_page(&s.db, &mut carried, &page, &may, &want)?,
        None => {
            vault.receive_page(&s.db, &mut carried, &page, &may)?;
            false
        }
    };
    Ok((carried, moved))
}

impl Node {
    /// What transfers let go of (refused, cut off and not set aside, set
    /// aside and later dropped) had stored of secrets sent in parts, swept
    /// ([`Vaults::sweep_parts`]) when any transfer let go of its hold since
    /// the last look.
    pub(super) async fn sweep_parts(&self) {
        if self.inner.leases_given_back() {
            let _ = self
                .with_vaults(|s| Ok(Vaults::new(&s.db).sweep_parts()?))
                .await;
        }
    }
}

/// A page as received: whole objects, or a part of a blob sent in parts.
enum Received {
    Objects(Vec<(String, RawObject)>),
    Part(Part),
}

/// Whether every version of `kept` is here and every version made since
/// (walked back from the head to them) was made here: then a transfer
/// that named `kept` still lacks what it lacked. A version another device
/// brought may hold much of what the transfer had still to send; then
/// the versions here are named afresh. Versions past the newest
/// `2 * MAX_HAVES` are not looked for: named afresh too.
fn only_edited_here_since(s: &Session, vault: &Vault, kept: &[String]) -> Result<bool, NodeError> {
    for have in kept {
        if !vault.has_version(&s.db, have)? {
            return Ok(false);
        }
    }
    let me = s.keys.node_id().to_string();
    let log = vault.log(&s.db, Some(2 * MAX_HAVES))?;
    let by_id: HashMap<&str, &polykey_vaults::CommitInfo> =
        log.iter().map(|c| (c.id.as_str(), c)).collect();
    let head = vault.head(&s.db)?;
    let mut todo = vec![head.as_str()];
    let mut seen = HashSet::new();
    while let Some(id) = todo.pop() {
        if kept.iter().any(|k| k == id) || !seen.insert(id) {
            continue;
        }
        match by_id.get(id) {
            Some(commit) if commit.author == me => {
                todo.extend(commit.parents.iter().map(String::as_str));
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Check one page of a fetch against what an honest peer sends, and turn
/// it into objects, or a part of the blob at `skip` starting at `from`.
fn check_page(
    mut objects: Vec<polykey_network::WireObject>,
    total: usize,
    (skip, from): (usize, usize),
) -> Result<Received, NodeError> {
    if total > MAX_IMPORT_OBJECTS {
        return Err(NodeError::BadPeerData("too many objects offered".into()));
    }
    let bytes: usize = objects.iter().map(|o| o.data.len()).sum();
    if bytes > MAX_PAGE_BYTES {
        return Err(NodeError::BadPeerData(
            "a page larger than any device sends".into(),
        ));
    }
    if objects.len() > total.saturating_sub(skip) {
        return Err(NodeError::BadPeerData(
            "more objects than the transfer announced".into(),
        ));
    }
    if objects.is_empty() && skip < total {
        return Err(NodeError::BadPeerData("a transfer stopped short".into()));
    }
    if objects.iter().any(|o| o.part.is_some()) {
        // A part comes alone, in order (the rest is checked as it is
        // taken in: `Vault::receive_part`).
        let (Some(mut object), true) = (objects.pop(), objects.is_empty()) else {
            return Err(NodeError::BadPeerData(
                "a part of a secret came with other objects".into(),
            ));
        };
        let offset = object.part.map(|p| usize::try_from(p.offset));
        let len = object.part.map(|p| usize::try_from(p.len));
        let (Some(Ok(offset)), Some(Ok(len))) = (offset, len) else {
            return Err(NodeError::BadPeerData(
                "a malformed part of a secret".into(),
            ));
        };
        if offset != from || object.kind != Part::kind_tag() {
            return Err(NodeError::BadPeerData(
                "a part of a secret came out of order".into(),
            ));
        }
        return Ok(Received::Part(Part {
            id: std::mem::take(&mut object.id),
            offset,
            len,
            data: Plain::new(std::mem::take(&mut object.data)),
        }));
    }
    if from != 0 {
        return Err(NodeError::BadPeerData(
            "a secret sent in parts was left unfinished".into(),
        ));
    }
    let mut page = Vec::with_capacity(objects.len());
    for mut object in objects {
        let kind = kind_of_tag(object.kind)
            .ok_or_else(|| NodeError::BadPeerData("an unknown object kind".into()))?;
        page.push((
            std::mem::take(&mut object.id),
            RawObject {
                base: object.base.take(),
                kind,
                data: std::mem::take(&mut object.data),
            },
        ));
    }
    Ok(Received::Objects(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(kind: u8, part: Option<(u64, u64)>) -> polykey_network::WireObject {
        polykey_network::WireObject {
            id: "ab".repeat(20),
            kind,
            data: vec![7; 16],
            base: None,
            part: part.map(|(offset, len)| polykey_network::WirePart { offset, len }),
        }
    }

    /// A peer's part comes alone, of a blob, where the last one ended; a
    /// page of whole objects may not come while a blob is half received.
    #[test]
    fn a_part_out_of_place_is_refused_before_it_is_taken_in() {
        let blob = Part::kind_tag();
        let part = |offset| Some((offset, 3 << 20));
        let refusal = |objects, from| match check_page(objects, 5, (0, from)) {
            Err(NodeError::BadPeerData(reason)) => reason,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("taken"),
        };
        assert!(matches!(
            check_page(vec![wire(blob, part(0))], 5, (0, 0)),
            Ok(Received::Part(Part { offset: 0, .. }))
        ));
        let with_others = vec![wire(blob, part(0)), wire(blob, None)];
        assert!(refusal(with_others, 0).contains("with other objects"));
        assert!(refusal(vec![wire(blob, part(1 << 20))], 0).contains("out of order"));
        assert!(refusal(vec![wire(2, part(0))], 0).contains("out of order"));
        assert!(refusal(vec![wire(blob, None)], 1 << 20).contains("left unfinished"));
    }

    #[test]
    fn a_snapshot_line_splits_into_its_head_and_the_rest_whatever_the_name() {
        let head = "0123456789abcdef0123456789abcdef01234567";
        let line = format!("vid 17 My  work vault {head} false 42");
        let (found, rest) = head_and_rest(&line).unwrap();
        assert_eq!(found, head);
        assert_eq!(rest, "vid 17 My  work vault false 42");
        // Another head, same rest: the same vault moved, nothing else.
        let moved = format!("vid 17 My  work vault {} false 42", "f".repeat(40));
        assert_eq!(head_and_rest(&moved).unwrap().1, rest);
        // A rename is more than a move.
        let renamed = format!("vid 18 Work {head} false 42");
        assert_ne!(head_and_rest(&renamed).unwrap().1, rest);
        assert!(head_and_rest("chain 3").is_none());
        assert!(is_commit_id(head));
        assert!(!is_commit_id(&head.to_uppercase()));
        assert!(!is_commit_id(&head[1..]));
        assert!(!is_commit_id(&format!("{}g", &head[1..])));
    }

    #[test]
    fn a_removed_device_authors_only_before_its_removal() {
        let node = |seed: u8| polykey_keys::RootKeypair::from_seed(&[seed; 32]).node_id();
        let (member, removed, stranger) = (node(1), node(2), node(3));
        let members = BTreeSet::from([member]);
        let gone = HashMap::from([(removed, 1_000u64)]);
        let may = may_author_at(&members, &gone);
        assert!(may(&member, 5_000));
        assert!(may(&removed, 999) && may(&removed, 1_000));
        assert!(!may(&removed, 1_001));
        assert!(!may(&removed, -1));
        assert!(!may(&stranger, 0));
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        assert_eq!(retry_delay(0), RETRY_AFTER);
        assert_eq!(retry_delay(1), RETRY_AFTER * 2);
        assert_eq!(retry_delay(3), RETRY_AFTER * 8);
        assert_eq!(retry_delay(10), MAX_RETRY_AFTER);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_AFTER);
    }
}
