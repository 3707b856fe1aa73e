//! Transfers set aside: a fetch cut off part way (the sync's deadline, a
//! dropped connection, a busy peer) keeps what it took in, so the next pull
//! of the same version from the same device goes on from there instead of
//! from the first object. Without it a vault larger than one sync's worth
//! of transfer (a slow link, a relay) would begin again at every try and
//! never arrive.
//!
//! What is kept is small: the transfer's counts and where it stopped,
//! beside the objects it stored, which are complete and verified (see
//! [`Incoming`]); a blob half received in parts is kept only within
//! [`MAX_PART_BYTES`] in all and one per device, else sent again from its
//! first part ([`Incoming::set_aside`]). A device holds at most
//! [`MAX_RESUMES_PER_DEVICE`] of them and all at most [`MAX_RESUMES`], so
//! one device setting aside many transfers lets go of its own oldest, and
//! a transfer taking pages now is never let go. A new vault's unfinished
//! copy stays while any transfer of it is set aside, for at most
//! [`RESUME_FOR`]; then the sweep of unfinished copies
//! (`Node::purge_deleted`) takes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use polykey_keys::NodeId;
use polykey_network::limits::BUSY;
use polykey_vaults::{Incoming, Vault, VaultId, MAX_SECRET_SIZE};

use crate::error::NodeError;
use crate::node::Inner;

/// Transfers set aside at once; past it the oldest set aside is let go
/// (and begins again at its next try).
pub(crate) const MAX_RESUMES: usize = 32;
/// Transfers set aside from one device at once; past it that device's
/// oldest is let go.
pub(crate) const MAX_RESUMES_PER_DEVICE: usize = 4;
/// Bytes of blobs half received in parts that transfers set aside keep in
/// memory, in all (one blob per device): two of the largest secrets. Most
/// blobs keep none: their parts are stored as they come, held in memory
/// only when another transfer stores the same blob's.
pub(crate) const MAX_PART_BYTES: usize = 2 * MAX_SECRET_SIZE;
/// How long a transfer set aside waits for its next try.
pub(crate) const RESUME_FOR: Duration = Duration::from_secs(60 * 60);

/// Each fetch's own mark on its progress (see [`Resume::owner`]).
static NEXT_FETCH: AtomicU64 = AtomicU64::new(1);

/// A transfer's progress, under its vault and the device sending it.
pub(crate) struct Resume {
    pub(super) want: String,
    pub(super) haves: Vec<String>,
    /// Objects the transfer announced.
    pub(super) total: usize,
    /// Objects taken in whole, and bytes of the next (a blob sent in parts).
    pub(super) at: (usize, usize),
    pub(super) incoming: Incoming,
    saved: Instant,
    /// When it last took a page (being set aside is not one).
    paged: Instant,
    /// The fetch taking pages into it now; none: set aside.
    owner: Option<u64>,
}

impl Resume {
    /// The progress of a transfer after a page (see [`Deposit::put`]).
    pub(super) fn after_page(
        (want, haves): (String, Vec<String>),
        total: usize,
        at: (usize, usize),
        incoming: Incoming,
    ) -> Self {
        Self {
            want,
            haves,
            total,
            at,
            incoming,
            saved: Instant::now(),
            paged: Instant::now(),
            owner: None,
        }
    }
}

/// Transfers set aside (or between two pages), by vault and sending
/// device.
pub(crate) type Resumes = HashMap<(VaultId, NodeId), Resume>;

/// Whether a failed transfer may go on later: the connection failed or
/// the peer was busy, not what it sent (a refused transfer stays refused).
pub(super) fn cut_off(error: &NodeError) -> bool {
    match error {
        NodeError::Network(_) => true,
        NodeError::PeerRefused(reason) => reason == BUSY,
        _ => false,
    }
}

/// Set the progress at `key` aside: no fetch owns it; it keeps its blob
/// half received in parts only when no other transfer of that device set
/// aside keeps one, and within [`MAX_PART_BYTES`] in all of those held in
/// memory (a blob whose parts were stored as they came holds none).
fn set_aside(resumes: &mut Resumes, key: (VaultId, NodeId)) {
    let (mut bytes, mut of_device) = (0, false);
    for (other, resume) in resumes.iter() {
        if *other != key && resume.owner.is_none() {
            bytes += resume.incoming.part_bytes();
            of_device |= resume.incoming.part_received() > 0 && other.1 == key.1;
        }
    }
    let Some(resume) = resumes.get_mut(&key) else {
        return;
    };
    resume.owner = None;
    resume.saved = Instant::now();
    let held = resume.incoming.part_bytes();
    let keep_part = !of_device && bytes.saturating_add(held) <= MAX_PART_BYTES;
    if resume.incoming.set_aside(keep_part) {
        resume.at.1 = 0;
    }
}

/// Make room for one more transfer of `peer` set aside: let go of its own
/// oldest past [`MAX_RESUMES_PER_DEVICE`], then of the oldest of all past
/// [`MAX_RESUMES`]; never of one a fetch owns.
fn make_room(resumes: &mut Resumes, peer: NodeId) {
    let oldest = |resumes: &Resumes, of: Option<NodeId>| {
        resumes
            .iter()
            .filter(|((_, from), r)| r.owner.is_none() && of.is_none_or(|of| *from == of))
            .min_by_key(|(_, r)| r.saved)
            .map(|(key, _)| *key)
    };
    let of_peer = resumes.keys().filter(|(_, from)| *from == peer).count();
    if of_peer >= MAX_RESUMES_PER_DEVICE {
        if let Some(key) = oldest(resumes, Some(peer)) {
            resumes.remove(&key);
        }
    }
    if resumes.len() >= MAX_RESUMES {
        if let Some(key) = oldest(resumes, None) {
            resumes.remove(&key);
        }
    }
}

fn lock(resumes: &Mutex<Resumes>) -> MutexGuard<'_, Resumes> {
    resumes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    fn resumes(&self) -> MutexGuard<'_, Resumes> {
        lock(&self.resumes)
    }

    /// Whether a transfer from `peer` was set aside since `since` (a sync
    /// cut off that got somewhere).
    pub(crate) fn resume_saved_since(&self, peer: NodeId, since: Instant) -> bool {
        self.resumes().iter().any(|((_, from), resume)| {
            *from == peer && resume.owner.is_none() && resume.saved >= since
        })
    }

    /// The versions a transfer of `want` into vault `id` from `peer` that
    /// waits to go on said it had, if one does: a catch-up cut off before
    /// an edit here still goes on with them (what it lacks, it lacks still,
    /// as long as they are all here), instead of beginning again.
    pub(crate) fn haves_set_aside(
        &self,
        vault: &Vault,
        peer: NodeId,
        want: &str,
    ) -> Option<Vec<String>> {
        self.resumes()
            .get(&(vault.id(), peer))
            .filter(|r| {
                r.owner.is_none()
                    && r.want == want
                    && !r.haves.is_empty()
                    && r.saved.elapsed() < RESUME_FOR
                    && r.incoming.is_into(vault)
            })
            .map(|r| r.haves.clone())
    }

    /// Whether a transfer of vault `id`, from any device, waits to go on
    /// (its copy stays).
    pub(crate) fn copy_awaited(&self, id: VaultId) -> bool {
        self.resumes().keys().any(|(vault, _)| *vault == id)
    }

    /// The vaults with a transfer set aside or under way (their unfinished
    /// copies stay), once those set aside longer than [`RESUME_FOR`] are
    /// let go.
    pub(crate) fn vaults_resuming(&self) -> BTreeSet<VaultId> {
        let mut resumes = self.resumes();
        resumes.retain(|_, r| r.owner.is_some() || r.saved.elapsed() < RESUME_FOR);
        resumes.keys().map(|(id, _)| *id).collect()
    }

    /// Whether a transfer is kept between its pages or set aside (those
    /// set aside longer than [`RESUME_FOR`] let go), or a new vault is
    /// arriving, or a catch-up is under way: a collection now would make
    /// it begin again. With `within`, only transfers under way, and those
    /// kept that took a page within it, count (one kept but not going on
    /// may be a writer's, to put collections off for good).
    pub(crate) fn transfers_kept(&self, within: Option<Duration>) -> bool {
        let resuming = match within {
            None => !self.vaults_resuming().is_empty(),
            Some(within) => self.resumes().values().any(|r| r.paged.elapsed() < within),
        };
        resuming
            || !self.vaults_arriving().is_empty()
            || self.catching_up.load(Ordering::SeqCst) > 0
    }

    /// Count a catch-up as under way until the guard goes.
    pub(crate) fn catching_up(&self) -> CatchingUp<'_> {
        self.catching_up.fetch_add(1, Ordering::SeqCst);
        CatchingUp(&self.catching_up)
    }

    /// Let go of every transfer set aside (the network stopped).
    pub(crate) fn forget_resumes(&self) {
        self.resumes().clear();
    }
}

/// A catch-up under way ([`Inner::catching_up`]).
pub(crate) struct CatchingUp<'a>(&'a AtomicUsize);

impl Drop for CatchingUp<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One fetch's hold on its transfer's progress: between pages the
/// progress is in [`Inner::resumes`], where a page's own store call puts
/// it ([`Deposit::put`]) and the next page takes it back
/// ([`Progress::take`]). Dropped before [`Progress::end`] (the fetch was
/// cancelled at the sync's deadline, or failed with [`cut_off`]), it sets
/// the progress aside; ended, it takes the progress away.
pub(super) struct Progress<'a> {
    resumes: &'a Mutex<Resumes>,
    pub(super) key: (VaultId, NodeId),
    token: u64,
    /// Cleared (under the resumes' lock) when this is dropped: a page's
    /// store call that ends after sets its progress aside itself.
    alive: Arc<AtomicBool>,
    keep: bool,
}

/// What a page's store call needs to put the transfer's progress back.
pub(super) struct Deposit {
    key: (VaultId, NodeId),
    token: u64,
    alive: Arc<AtomicBool>,
}

impl Deposit {
    /// Put the transfer's progress after this page where the fetch takes
    /// it back, or set it aside if the fetch is gone (cancelled while this
    /// page was stored).
    pub(super) fn put(self, resumes: &Mutex<Resumes>, mut resume: Resume) {
        let mut resumes = lock(resumes);
        let alive = self.alive.load(Ordering::SeqCst);
        resume.owner = alive.then_some(self.token);
        if !resumes.contains_key(&self.key) {
            make_room(&mut resumes, self.key.1);
        }
        resumes.insert(self.key, resume);
        if !alive {
            set_aside(&mut resumes, self.key);
        }
    }
}

impl<'a> Progress<'a> {
    /// A fetch of `want` (with `haves`) into `vault` from `peer`, and where
    /// it begins: where a transfer set aside of the same version from the
    /// same device into this copy of the vault stopped (and how many
    /// objects it announced), or at the first object.
    pub(super) fn begin(
        resumes: &'a Mutex<Resumes>,
        vault: &Vault,
        peer: NodeId,
        want: &str,
        haves: &[String],
    ) -> (Self, (usize, usize), Option<usize>) {
        let key = (vault.id(), peer);
        let token = NEXT_FETCH.fetch_add(1, Ordering::Relaxed);
        let held = resumes;
        let mut resumes = lock(held);
        let mut from = ((0, 0), None);
        match resumes.get_mut(&key) {
            // Another fetch of it is under way: this one begins afresh.
            Some(resume) if resume.owner.is_some() => {}
            Some(resume)
                if resume.want == want
                    && resume.haves == haves
                    && resume.saved.elapsed() < RESUME_FOR
                    && resume.incoming.is_into(vault) =>
            {
                resume.owner = Some(token);
                from = (resume.at, Some(resume.total));
            }
            Some(_) => {
                resumes.remove(&key);
            }
            None => {}
        }
        drop(resumes);
        let progress = Self {
            resumes: held,
            key,
            token,
            alive: Arc::new(AtomicBool::new(true)),
            keep: true,
        };
        (progress, from.0, from.1)
    }

    /// Take this fetch's progress back for the next page (none: the first
    /// page, or it was let go meanwhile).
    pub(super) fn take(&self) -> Option<Resume> {
        let mut resumes = lock(self.resumes);
        match resumes.get(&self.key) {
            Some(resume) if resume.owner == Some(self.token) => resumes.remove(&self.key),
            _ => None,
        }
    }

    /// For the call storing the next page.
    pub(super) fn deposit(&self) -> Deposit {
        Deposit {
            key: self.key,
            token: self.token,
            alive: Arc::clone(&self.alive),
        }
    }

    /// The fetch ended: set nothing aside (it finished, or what it was
    /// sent was refused).
    pub(super) fn end(&mut self) {
        self.keep = false;
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        let mut resumes = lock(self.resumes);
        self.alive.store(false, Ordering::SeqCst);
        let owned = resumes
            .get(&self.key)
            .is_some_and(|resume| resume.owner == Some(self.token));
        if !owned {
            return;
        }
        if self.keep {
            set_aside(&mut resumes, self.key);
        } else {
            resumes.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polykey_db::Db;
    use polykey_keys::RootKeypair;
    use polykey_vaults::{Page, Vaults};
    use tempfile::TempDir;

    /// Stores with `n` vaults made here (`made`), and copies of them being
    /// received in another store (`copies`), each holding a secret large
    /// enough to go in parts.
    struct Scratch {
        _dir: TempDir,
        source: Db,
        made: Vec<Vault>,
        copy: Db,
        copies: Vec<Vault>,
    }

    fn scratch(n: usize, large: bool) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let keys = RootKeypair::from_seed(&[3; 32]);
        let source = Db::create(&dir.path().join("source.redb"), &keys).unwrap();
        let copy = Db::create(&dir.path().join("copy.redb"), &keys).unwrap();
        let mut made = Vec::new();
        let mut copies = Vec::new();
        for i in 0..n {
            let vault = Vaults::new(&source)
                .create(&format!("v{i}"), &keys)
                .unwrap();
            if large {
                let value = vec![b'x'; 3 << 20];
                vault.write_secret(&source, &keys, "large", &value).unwrap();
            }
            let id = vault.id().to_string();
            copies.push(Vaults::new(&copy).begin_receive_vault("v", &id, 0).unwrap());
            made.push(vault);
        }
        Scratch {
            _dir: dir,
            source,
            made,
            copy,
            copies,
        }
    }

    /// A transfer set aside counts as going on only while it took a page
    /// lately: set aside again after a try that took none (a writer
    /// stalling its first page at every pull) is not taking one.
    #[tokio::test]
    async fn a_transfer_kept_goes_on_only_while_it_takes_pages() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::node::test_node(dir.path(), "a password").await;
        let (s, peer) = (scratch(1, false), device(1));
        assert!(!node.inner.transfers_kept(None));
        cut_off_after_a_page(&node.inner.resumes, &s, 0, peer, false);
        let lately = Duration::from_millis(50);
        assert!(node.inner.transfers_kept(None));
        assert!(node.inner.transfers_kept(Some(crate::node::COLLECT_QUIET)));
        std::thread::sleep(lately * 2);
        let (progress, at, _) =
            Progress::begin(&node.inner.resumes, &s.copies[0], peer, "want", &[]);
        assert!(at.0 > 0, "went on where it stopped");
        drop(progress);
        assert!(node.inner.transfers_kept(None), "set aside again");
        assert!(!node.inner.transfers_kept(Some(lately)));
    }

    fn device(seed: u8) -> NodeId {
        RootKeypair::from_seed(&[seed; 32]).node_id()
    }

    fn after_page(at: (usize, usize), incoming: Incoming) -> Resume {
        Resume::after_page(("want".into(), Vec::new()), 10, at, incoming)
    }

    /// A fetch of copy `i` from `peer` that took a page in (a first part
    /// of its large secret, with `part`) and was cut off.
    fn cut_off_after_a_page(
        resumes: &Mutex<Resumes>,
        s: &Scratch,
        i: usize,
        peer: NodeId,
        part: bool,
    ) {
        let copy = &s.copies[i];
        let (progress, at, _) = Progress::begin(resumes, copy, peer, "want", &[]);
        let mut incoming = progress
            .take()
            .map_or_else(|| Incoming::new(copy), |r| r.incoming);
        let mut at = (at.0 + 1, 0);
        if part {
            let made = &s.made[i];
            let head = made.head(&s.source).unwrap();
            let plan = made.send_plan(&s.source, &head, &[]).unwrap();
            let blob = (0..plan.total())
                .find_map(|skip| {
                    match made.planned_part_page(&s.source, &plan, (skip, 0), 8 << 20) {
                        Ok(Page::Part(part)) => Some((skip, part)),
                        _ => None,
                    }
                })
                .unwrap();
            copy.receive_part(&s.copy, &mut incoming, &blob.1).unwrap();
            at = (blob.0, blob.1.data.len());
        }
        progress.deposit().put(resumes, after_page(at, incoming));
        std::thread::sleep(Duration::from_millis(2));
    }

    #[test]
    fn one_device_setting_many_transfers_aside_lets_go_of_its_own_oldest_never_of_one_under_way() {
        let s = scratch(MAX_RESUMES_PER_DEVICE + 2, false);
        let resumes = Mutex::default();
        let (honest, hostile) = (device(1), device(2));
        cut_off_after_a_page(&resumes, &s, 0, honest, false);
        // A fetch of the hostile device under way, between two pages.
        let (under_way, _, _) = Progress::begin(&resumes, &s.copies[1], hostile, "want", &[]);
        let incoming = Incoming::new(&s.copies[1]);
        under_way
            .deposit()
            .put(&resumes, after_page((1, 0), incoming));
        for i in 2..s.copies.len() {
            cut_off_after_a_page(&resumes, &s, i, hostile, false);
        }
        let key = |i: usize, peer| (s.copies[i].id(), peer);
        let held = lock(&resumes);
        assert!(held.contains_key(&key(0, honest)), "another device's stays");
        assert!(
            held.contains_key(&key(1, hostile)),
            "the one under way stays"
        );
        assert!(!held.contains_key(&key(2, hostile)), "its own oldest went");
        let of_hostile = held.keys().filter(|(_, peer)| *peer == hostile).count();
        assert_eq!(of_hostile, MAX_RESUMES_PER_DEVICE);
        drop(held);
        assert!(under_way.take().is_some(), "still handed to its fetch");
    }

    #[test]
    fn a_page_stored_after_its_fetch_was_cut_off_goes_to_the_next_fetch_only_once_set_aside() {
        let s = scratch(1, false);
        let resumes = Mutex::default();
        let (copy, peer) = (&s.copies[0], device(1));
        // Cut off while its page was being stored.
        let (first, _, _) = Progress::begin(&resumes, copy, peer, "want", &[]);
        let deposit = first.deposit();
        drop(first);
        // A fetch begun before that page's call ended begins afresh, and is
        // not handed what that call puts back: it is set aside.
        let (second, at, total) = Progress::begin(&resumes, copy, peer, "want", &[]);
        assert_eq!((at, total), ((0, 0), None));
        deposit.put(&resumes, after_page((3, 0), Incoming::new(copy)));
        assert!(second.take().is_none());
        drop(second);
        // The next goes on from it; one of another version does not.
        let (other, at, _) = Progress::begin(&resumes, copy, peer, "other", &[]);
        assert_eq!(at, (0, 0));
        drop(other);
        deposit_again(&resumes, copy, peer);
        let (next, at, total) = Progress::begin(&resumes, copy, peer, "want", &[]);
        assert_eq!((at, total), ((3, 0), Some(10)));
        assert!(next.take().is_some());
    }

    /// Set aside the progress of a fetch of `copy` from `peer` at (3, 0).
    fn deposit_again(resumes: &Mutex<Resumes>, copy: &Vault, peer: NodeId) {
        let (fetch, _, _) = Progress::begin(resumes, copy, peer, "want", &[]);
        let deposit = fetch.deposit();
        drop(fetch);
        deposit.put(resumes, after_page((3, 0), Incoming::new(copy)));
    }

    #[test]
    fn a_secret_half_received_is_kept_aside_once_per_device_and_within_the_bound() {
        let s = scratch(3, true);
        let resumes = Mutex::default();
        let (one, two) = (device(1), device(2));
        cut_off_after_a_page(&resumes, &s, 0, one, true);
        cut_off_after_a_page(&resumes, &s, 1, one, true);
        cut_off_after_a_page(&resumes, &s, 2, two, true);
        let held = lock(&resumes);
        let part = |i: usize, peer| {
            let resume = &held[&(s.copies[i].id(), peer)];
            (resume.at.1 > 0, resume.incoming.part_received() > 0)
        };
        assert_eq!(
            part(0, one),
            (true, true),
            "the first of a device keeps its part"
        );
        assert_eq!(
            part(1, one),
            (false, false),
            "its second goes on from the first part"
        );
        assert_eq!(part(2, two), (true, true), "another device's keeps its own");
        drop(held);
        // The parts were stored as they came; the one let go holds its
        // chunks no more, and only it is swept.
        assert!(s.copy.leases_given_back());
        assert_eq!(Vaults::new(&s.copy).sweep_parts().unwrap(), 1);
        assert_eq!(Vaults::new(&s.copy).sweep_parts().unwrap(), 0);
        lock(&resumes).clear();
        assert_eq!(Vaults::new(&s.copy).sweep_parts().unwrap(), 2);
    }
}
