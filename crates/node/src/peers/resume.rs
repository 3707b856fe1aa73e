//! Transfers set aside: a fetch cut off part way (the sync's deadline, a
//! dropped connection, a busy peer) keeps what it took in, so the next pull
//! of the same version from the same device goes on from there instead of
//! from the first object. Without it a vault larger than one sync's worth
//! of transfer (a slow link, a relay) would begin again at every try and
//! never arrive.
//!
//! What is kept is small: the transfer's counts and where it stopped (a
//! blob half received in parts is let go, and sent again from its first
//! part; see [`Incoming::set_aside`]), beside the objects it stored, which
//! are complete and verified (see [`Incoming`]). A new vault's unfinished copy stays while its
//! transfer is set aside, for at most [`RESUME_FOR`]; then the sweep of
//! unfinished copies (`Node::purge_deleted`) takes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use polykey_keys::NodeId;
use polykey_vaults::{Incoming, Vault, VaultId};

use crate::error::NodeError;
use crate::node::Inner;

/// Transfers set aside (or under way between two pages) at once; past it
/// the oldest is let go (and begins again at its next try).
pub(crate) const MAX_RESUMES: usize = 32;
/// How long a transfer set aside waits for its next try.
pub(crate) const RESUME_FOR: Duration = Duration::from_secs(60 * 60);

/// One transfer set aside, under its vault and the device sending it.
pub(crate) struct Resume {
    pub(super) want: String,
    pub(super) haves: Vec<String>,
    /// Objects the transfer announced.
    pub(super) total: usize,
    /// Objects taken in whole, and bytes of the next (a blob sent in parts).
    pub(super) at: (usize, usize),
    pub(super) incoming: Incoming,
    pub(super) saved: Instant,
}

/// Transfers set aside, by vault and sending device.
pub(crate) type Resumes = HashMap<(VaultId, NodeId), Resume>;

/// Whether a failed transfer may go on later: the connection or the peer
/// failed, not what it sent (a refused transfer stays refused).
pub(super) fn cut_off(error: &NodeError) -> bool {
    matches!(error, NodeError::Network(_) | NodeError::PeerRefused(_))
}

impl Inner {
    fn resumes(&self) -> MutexGuard<'_, Resumes> {
        self.resumes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Set a transfer's progress aside after a page is stored (in the
    /// page's own call, so a fetch cancelled meanwhile loses nothing): the
    /// fetch takes it back for its next page ([`Progress::take`]).
    pub(super) fn put_resume(&self, key: (VaultId, NodeId), resume: Resume) {
        let mut resumes = self.resumes();
        if !resumes.contains_key(&key) && resumes.len() >= MAX_RESUMES {
            let oldest = resumes
                .iter()
                .min_by_key(|(_, resume)| resume.saved)
                .map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                resumes.remove(&oldest);
            }
        }
        resumes.insert(key, resume);
    }

    /// Whether a transfer from `peer` was set aside since `since` (a sync
    /// cut off that got somewhere).
    pub(crate) fn resume_saved_since(&self, peer: NodeId, since: Instant) -> bool {
        self.resumes()
            .iter()
            .any(|((_, from), resume)| *from == peer && resume.saved >= since)
    }

    /// Whether a transfer of vault `id` from `peer` is set aside.
    pub(crate) fn has_resume(&self, id: VaultId, peer: NodeId) -> bool {
        self.resumes().contains_key(&(id, peer))
    }

    /// The vaults with a transfer set aside (their unfinished copies stay),
    /// once those older than [`RESUME_FOR`] are let go.
    pub(crate) fn vaults_resuming(&self) -> BTreeSet<VaultId> {
        let mut resumes = self.resumes();
        resumes.retain(|_, resume| resume.saved.elapsed() < RESUME_FOR);
        resumes.keys().map(|(id, _)| *id).collect()
    }

    /// Let go of every transfer set aside (the network stopped).
    pub(crate) fn forget_resumes(&self) {
        self.resumes().clear();
    }
}

/// One fetch's claim on its transfer set aside: between pages the
/// transfer's progress is in [`Inner::resumes`], where a page's call puts
/// it ([`Inner::put_resume`]) and the next page takes it back. Dropped
/// before [`Progress::end`] (the fetch was cancelled at the sync's
/// deadline, or failed with [`cut_off`]), it leaves the progress there,
/// set aside ([`Incoming::set_aside`]); ended, it takes the progress away.
pub(super) struct Progress<'a> {
    inner: &'a Inner,
    pub(super) key: (VaultId, NodeId),
    keep: bool,
}

impl<'a> Progress<'a> {
    /// A fetch of `want` (with `haves`) into `vault` from `peer`, and where
    /// it begins: where a transfer set aside of the same version from the
    /// same device into this copy of the vault stopped (and how many
    /// objects it announced), or at the first object.
    pub(super) fn begin(
        inner: &'a Inner,
        vault: &Vault,
        peer: NodeId,
        want: &str,
        haves: &[String],
    ) -> (Self, (usize, usize), Option<usize>) {
        let key = (vault.id(), peer);
        let mut resumes = inner.resumes();
        let fits = resumes
            .get(&key)
            .is_some_and(|r| r.want == want && r.haves == haves && r.incoming.is_into(vault));
        let (at, total) = match resumes.get(&key) {
            Some(resume) if fits => (resume.at, Some(resume.total)),
            _ => {
                resumes.remove(&key);
                ((0, 0), None)
            }
        };
        drop(resumes);
        let progress = Self {
            inner,
            key,
            keep: true,
        };
        (progress, at, total)
    }

    /// Take the progress back for the next page (none: the first page, or
    /// it was let go meanwhile).
    pub(super) fn take(&self) -> Option<Resume> {
        self.inner.resumes().remove(&self.key)
    }

    /// The fetch ended: set nothing aside (it finished, or what it was
    /// sent was refused).
    pub(super) fn end(&mut self) {
        self.keep = false;
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        let mut resumes = self.inner.resumes();
        if !self.keep {
            resumes.remove(&self.key);
        } else if let Some(resume) = resumes.get_mut(&self.key) {
            if resume.incoming.set_aside() {
                resume.at.1 = 0;
            }
        }
    }
}
