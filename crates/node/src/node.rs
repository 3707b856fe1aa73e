use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use polykey_db::{Db, RecordKey, Table};
use polykey_keys::{KdfParams, NodeId, Password, RecoveryCode, RootKeypair, WrappedRootKey};
use zeroize::Zeroizing;

use crate::api::{CreatedDto, NodeStateDto, StatusDto};
use crate::clock::Moment;
use crate::dir::NodeDir;
use crate::error::NodeError;

/// The shortest password a node accepts (NIST SP 800-63B's floor).
pub const MIN_PASSWORD_LEN: usize = 8;

/// Which Argon2id cost new key files get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KdfProfile {
    /// 64 MiB, 3 passes: for every real node.
    #[default]
    Default,
    /// Cheap parameters for tests only; offers no protection against guessing.
    FastForTests,
}

impl KdfProfile {
    fn params(self) -> KdfParams {
        match self {
            Self::Default => KdfParams::default_profile(),
            Self::FastForTests => KdfParams::fast_for_tests(),
        }
    }
}

/// How to open a node.
#[derive(Clone, Debug, Default)]
pub struct NodeOptions {
    /// Argon2id cost for key files this node writes.
    pub kdf: KdfProfile,
    /// Join the network while unlocked (`None`: stay offline).
    pub network: Option<crate::peers::NetworkOptions>,
}

/// Whether a node exists and whether it is unlocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// No node yet.
    Uninitialised,
    /// A node exists and is locked.
    Locked,
    /// The node is unlocked.
    Unlocked,
}

/// A node's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Uninitialised, locked or unlocked.
    pub state: NodeState,
    /// The NodeId, known even while locked.
    pub node_id: Option<NodeId>,
}

impl From<Status> for StatusDto {
    fn from(status: Status) -> Self {
        Self {
            state: match status.state {
                NodeState::Uninitialised => NodeStateDto::Uninitialised,
                NodeState::Locked => NodeStateDto::Locked,
                NodeState::Unlocked => NodeStateDto::Unlocked,
            },
            node_id: status.node_id.map(|id| id.to_string()),
        }
    }
}

/// A freshly created node: its id and the recovery code, returned this once.
#[derive(Debug)]
pub struct Created {
    /// The new node's id.
    pub node_id: NodeId,
    /// The recovery code. Show it to the user; it is never stored.
    pub recovery_code: RecoveryCode,
}

impl From<Created> for CreatedDto {
    fn from(created: Created) -> Self {
        Self {
            node_id: created.node_id.to_string(),
            recovery_code: created.recovery_code.expose_secret().to_string(),
        }
    }
}

/// Per-node settings kept in the encrypted store.
/// (A device's name now lives on its chain, see `names`; a name set before
/// that is still read from here.)
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Settings {
    pub(crate) device_name: Option<String>,
}

pub(crate) const SETTINGS: Table<Settings> = Table::new("node_settings");

/// What an unlocked node holds in memory.
pub(crate) struct Session {
    pub(crate) keys: RootKeypair,
    pub(crate) db: Db,
    /// Search summaries by blob id (see `quick`); dropped with the session.
    pub(crate) index: Mutex<crate::quick::Index>,
    /// The transfer each device is taking page by page, worked out once
    /// (see `peers::answer`); ids only, one per device.
    pub(crate) send_plans: Mutex<HashMap<NodeId, crate::peers::PlannedSend>>,
    /// Files attached in the editor and not saved yet, by vault file (see
    /// `attachments`); dropped, wiped, with the session.
    pub(crate) staged: Mutex<crate::attachments::Staged>,
    /// The export a preview parsed, for the import that follows (see
    /// `import::file`); dropped, wiped, with the session.
    pub(crate) import_parsed: Mutex<Option<crate::import::file::KeptParse>>,
    /// Set as the node locks: a long reader (a backup) stops at its next
    /// step rather than hold the keys and the store open past the lock.
    closing: AtomicBool,
    /// Locks asked for (Lock, the CLI's, the screen's) waiting for the
    /// state (the node's `locks_waiting`): a backup or restore holding it
    /// gives way to them rather than keep the person who locked waiting
    /// to its end. The auto-lock is not one: work a person started and
    /// watches, longer than the idle time, is not cut off, and the lock
    /// follows once it ends.
    locks_waiting: Arc<AtomicUsize>,
}

impl Session {
    fn new(keys: RootKeypair, db: Db, inner: &Inner) -> Arc<Self> {
        let commits = Arc::clone(&inner.commits);
        db.on_commit(move || commits.notify_one());
        Arc::new(Self {
            keys,
            db,
            index: Mutex::default(),
            send_plans: Mutex::default(),
            staged: Mutex::default(),
            import_parsed: Mutex::default(),
            closing: AtomicBool::new(false),
            locks_waiting: Arc::clone(&inner.locks_waiting),
        })
    }

    /// Whether the node is locking, or a lock waits for the state: a
    /// long piece of work holding the session should stop and let go
    /// ([`Session::go_on`]).
    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed) || self.locks_waiting.load(Ordering::Relaxed) > 0
    }

    /// Go on with long work (a backup's or restore's next page) unless
    /// the node is locking ([`Session::closing`]): then stop, `Locked`.
    pub(crate) fn go_on(&self) -> Result<(), NodeError> {
        if self.closing() {
            return Err(NodeError::Locked);
        }
        Ok(())
    }
}

enum State {
    Uninitialised,
    Locked(WrappedRootKey),
    /// Shared with the readers running outside the state lock
    /// ([`Node::with_vaults_read`]); a lock waits for them.
    Unlocked(WrappedRootKey, Arc<Session>),
}

/// A node created in `dir` with `password`, unlocked, with the cheap key
/// derivation of tests (the crate's own tests).
#[cfg(test)]
pub(crate) async fn test_node(dir: &Path, password: &str) -> Node {
    let options = crate::NodeOptions {
        kdf: crate::KdfProfile::FastForTests,
        ..Default::default()
    };
    let node = Node::open(dir, options).await.expect("a node directory");
    node.create(password.into()).await.expect("a new node");
    node
}

/// Session tokens of the client API issued by this process, with when each
/// was issued and last used (the client API issues and checks them; the
/// node keeps them with its state, so that a lock ends them all).
#[derive(Default)]
pub(crate) struct Tokens(pub(crate) HashMap<String, TokenTimes>);

/// When a session token was issued and last used.
pub(crate) struct TokenTimes {
    pub(crate) issued: Moment,
    pub(crate) used: Moment,
}

pub(crate) struct Inner {
    dir: NodeDir,
    pub(crate) options: NodeOptions,
    /// Exports read (parsed) for a preview or an import, so far.
    pub(crate) exports_read: AtomicU64,
    /// How long a backup file may take to answer (ms; 0: the default,
    /// see `backup::timed`).
    pub(crate) file_stall_ms: AtomicU64,
    state: Mutex<State>,
    /// When the person last did something: a front end's [`Node::touch`]
    /// (unlocking counts too). Time asleep counts towards the auto-lock.
    last_activity: Mutex<Moment>,
    /// Bumped when something a front end lists may have changed: lock state,
    /// favourites, recently used secrets, names.
    changes: tokio::sync::watch::Sender<u64>,
    /// Preferences, readable while locked.
    preferences: Mutex<crate::preferences::Preferences>,
    /// Session tokens of the client API.
    pub(crate) tokens: Mutex<Tokens>,
    /// Changes of password so far (a login checked against the password
    /// before a change gets no token after it).
    pub(crate) password_changes: AtomicU64,
    /// Woken after every commit to the unlocked store (the sync watcher).
    pub(crate) commits: Arc<tokio::sync::Notify>,
    /// The network while unlocked.
    pub(crate) net: Mutex<Option<crate::peers::Net>>,
    /// Pairing, online devices, sync status.
    pub(crate) peers: Mutex<crate::peers::PeerState>,
    /// One transfer at a time into each vault this node lacks, whichever
    /// device sends it (see `peers::pull`): two would share one unfinished
    /// copy, and one failing would drop it under the other. A held lock
    /// also keeps the copy from the sweep of unfinished copies
    /// (`Node::purge_deleted`). Locked only briefly, never while waiting.
    pub(crate) receiving: Mutex<HashMap<polykey_vaults::VaultId, Arc<tokio::sync::Mutex<()>>>>,
    /// Transfers cut off part way, to go on from where they stopped (see
    /// `peers::resume`).
    pub(crate) resumes: Mutex<crate::peers::Resumes>,
    /// Catch-ups of vaults here under way, from the choice of the versions
    /// they name to the merge (see [`Node::collect_if_quiet`]).
    pub(crate) catching_up: AtomicUsize,
    /// Since when a collection while unlocked was due but put off (not
    /// quiet, a transfer kept; see [`Node::collect_if_quiet`]): time the
    /// node ran unlocked, forgotten at a lock.
    collection_put_off: Mutex<Option<PutOff>>,
    /// Identity providers and logins under way.
    pub(crate) identities: Mutex<crate::identities::IdentityState>,
    /// Locks waiting for the state (see [`Session::closing`]).
    locks_waiting: Arc<AtomicUsize>,
}

/// A node: the one handle front ends hold. Cheap to clone; every clone
/// shares the same directory, lock and state.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.inner.dir.path().display())
    }
}

fn check_new_password(password: &Password) -> Result<(), NodeError> {
    if password.expose_secret().chars().count() < MIN_PASSWORD_LEN {
        return Err(NodeError::PasswordTooShort {
            min: MIN_PASSWORD_LEN,
        });
    }
    Ok(())
}

impl Node {
    /// Open the node directory at `path` (created if missing), taking its
    /// lock. Fails with [`NodeError::InUse`] if another process holds it.
    /// The node starts locked (or uninitialised); nothing is decrypted.
    pub async fn open(path: &Path, options: NodeOptions) -> Result<Self, NodeError> {
        let path = path.to_owned();
        blocking(move || Self::open_blocking(&path, options)).await
    }

    fn open_blocking(path: &Path, options: NodeOptions) -> Result<Self, NodeError> {
        let dir = NodeDir::acquire(path)?;
        let state = match dir.read_root_key()? {
            Some(wrapped) => {
                // A creation that wrote its key file is complete, whether
                // or not its mark was taken away then.
                dir.end_creation();
                State::Locked(wrapped)
            }
            None => State::Uninitialised,
        };
        let preferences = dir.read_preferences();
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                options,
                exports_read: AtomicU64::new(0),
                file_stall_ms: AtomicU64::new(0),
                state: Mutex::new(state),
                last_activity: Mutex::new(Moment::now()),
                changes: tokio::sync::watch::Sender::new(0),
                preferences: Mutex::new(preferences),
                tokens: Mutex::default(),
                password_changes: AtomicU64::new(0),
                commits: Arc::default(),
                net: Mutex::new(None),
                peers: Mutex::default(),
                receiving: Mutex::default(),
                resumes: Mutex::default(),
                catching_up: AtomicUsize::new(0),
                collection_put_off: Mutex::new(None),
                identities: Mutex::default(),
                locks_waiting: Arc::default(),
            }),
        })
    }

    /// The node directory.
    pub fn path(&self) -> &Path {
        self.inner.dir.path()
    }

    /// Whether a node exists and whether it is unlocked, with its NodeId.
    pub fn status(&self) -> Status {
        match &*self.inner.lock_state() {
            State::Uninitialised => Status {
                state: NodeState::Uninitialised,
                node_id: None,
            },
            State::Locked(wrapped) => Status {
                state: NodeState::Locked,
                node_id: Some(wrapped.node_id),
            },
            State::Unlocked(wrapped, _) => Status {
                state: NodeState::Unlocked,
                node_id: Some(wrapped.node_id),
            },
        }
    }

    /// Create a new node protected by `password` and leave it unlocked.
    /// Returns the recovery code, the only time it is ever available.
    pub async fn create(&self, password: Password) -> Result<Created, NodeError> {
        let created = self.run(move |inner| inner.create(&password)).await?;
        self.unlocked().await;
        Ok(created)
    }

    /// Unlock with `password`. A wrong password changes no file.
    pub async fn unlock(&self, password: Password) -> Result<(), NodeError> {
        self.run(move |inner| inner.unlock(&password)).await?;
        self.unlocked().await;
        Ok(())
    }

    /// After any unlock: join the network. A network that cannot start
    /// leaves the node usable offline; the sync status says why.
    async fn unlocked(&self) {
        if let Err(e) = self.start_network().await {
            self.inner.peer_state().set_error(e.to_string());
        }
    }

    /// Lock: close the store and forget every key.
    pub async fn lock(&self) -> Result<(), NodeError> {
        self.run(|inner| {
            let _waiting = inner.lock_waiting();
            inner.lock_held(&mut inner.lock_state());
            Ok(())
        })
        .await
    }

    /// Restore access with the recovery code and set `new_password`. On this
    /// device it reopens the existing data; in an empty directory it restores
    /// the same identity with an empty store. Leaves the node unlocked.
    pub async fn recover(&self, code: &str, new_password: Password) -> Result<(), NodeError> {
        let code: RecoveryCode = code.parse()?;
        self.run(move |inner| inner.recover(&code, &new_password))
            .await?;
        self.unlocked().await;
        Ok(())
    }

    /// The key-encryption key for `password`, after checking it opens the
    /// root key: what an opted-in OS keyring keeps instead of the password.
    pub async fn key_encryption_key(
        &self,
        password: Password,
    ) -> Result<Zeroizing<[u8; 32]>, NodeError> {
        self.run(move |inner| {
            let wrapped = inner.wrapped()?;
            let kek = wrapped
                .derive_kek(&password)
                .map_err(|_| NodeError::KeyFileCorrupt)?;
            wrapped.unwrap_with_kek(&kek)?;
            Ok(Zeroizing::new(*kek.expose_secret()))
        })
        .await
    }

    /// Unlock with a key-encryption key from the OS keyring. A key that no
    /// longer fits (the password changed since) gives [`NodeError::StaleKey`].
    pub async fn unlock_with_key(&self, kek: Zeroizing<[u8; 32]>) -> Result<(), NodeError> {
        self.run(move |inner| {
            let kek = polykey_keys::SymmetricKey::from_bytes(*kek);
            inner.unlock_with(|wrapped| {
                wrapped.unwrap_with_kek(&kek).map_err(|e| match e {
                    polykey_keys::UnwrapError::WrongPassword => NodeError::StaleKey,
                    other => other.into(),
                })
            })
        })
        .await?;
        self.unlocked().await;
        Ok(())
    }

    /// Replace the password. Only the key file is rewritten.
    pub async fn change_password(&self, old: Password, new: Password) -> Result<(), NodeError> {
        self.run(move |inner| inner.change_password(&old, &new))
            .await
    }

    /// Sign `message` with the root key (for claims and commits).
    /// Crate-only: a raw Ed25519 signature is what claims and notifications
    /// carry, so no front end may ask for one over chosen bytes (users'
    /// signatures are SSHSIG, see `keyops`).
    pub(crate) async fn sign(
        &self,
        message: Vec<u8>,
    ) -> Result<polykey_keys::Signature, NodeError> {
        self.run(move |inner| inner.with_session(|session| Ok(session.keys.sign(&message))))
            .await
    }

    /// Note what a person did (a key press or click in a window, a tray or
    /// palette use, a client-API call from the CLI) so auto-lock waits.
    /// Nothing else counts.
    pub fn touch(&self) {
        self.inner.touch();
    }

    /// Run `work` while the node is unlocked, with its state held: a lock
    /// cannot land in the middle of it ([`NodeError::Locked`] if locked).
    pub(crate) fn while_unlocked<T>(&self, work: impl FnOnce() -> T) -> Result<T, NodeError> {
        let state = self.inner.lock_state();
        match &*state {
            State::Unlocked(..) => Ok(work()),
            State::Uninitialised => Err(NodeError::NotInitialised),
            State::Locked(_) => Err(NodeError::Locked),
        }
    }

    /// As if the machine had slept for `time` since the last activity and
    /// every session token's issue and last use (tests: the monotonic
    /// clock stands still in sleep, the wall clock goes on).
    #[doc(hidden)]
    pub fn pretend_slept(&self, time: Duration) {
        if let Ok(mut last) = self.inner.last_activity.lock() {
            last.slept(time);
        }
        for times in self.inner.tokens().0.values_mut() {
            times.issued.slept(time);
            times.used.slept(time);
        }
    }

    /// Lock if the node is unlocked and nothing happened for `idle`.
    /// Returns whether it locked.
    pub async fn lock_if_idle(&self, idle: Duration) -> Result<bool, NodeError> {
        self.run(move |inner| {
            // Read the activity time under the state lock: an unlock holds
            // that lock while it derives the key and touches before letting
            // go, so a stale "quiet" cannot re-lock a node just unlocked.
            let mut state = inner.lock_state();
            let quiet = inner
                .last_activity
                .lock()
                .map(|last| last.elapsed() >= idle)
                .unwrap_or(true);
            Ok(quiet && inner.lock_held(&mut state))
        })
        .await
    }

    /// A receiver that sees a new value whenever the lock state, favourites,
    /// recently used secrets or names change: front ends refresh their
    /// menus from it.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Tell [`Node::changes`] subscribers that something changed.
    pub(crate) fn notify(&self) {
        self.inner.changed();
    }

    /// The preferences (readable while locked).
    pub fn preferences(&self) -> crate::preferences::Preferences {
        self.inner
            .preferences
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// Check and store new preferences.
    pub async fn set_preferences(
        &self,
        preferences: crate::preferences::Preferences,
    ) -> Result<(), NodeError> {
        preferences.check()?;
        self.run(move |inner| {
            inner.dir.write_preferences(&preferences)?;
            if let Ok(mut current) = inner.preferences.lock() {
                *current = preferences;
            }
            inner.changed();
            Ok(())
        })
        .await
    }

    /// Run `work` against the unlocked session on the blocking pool.
    /// [`Node::with_vaults`] for work that only reads (in its own read
    /// transactions): it runs without holding the node's state, so
    /// answering a peer's fetch does not hold up a write. A lock waits for
    /// such work to end before it returns.
    pub(crate) async fn with_vaults_read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Session) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.with_session_read(move |session| work(session)).await
    }

    /// [`Node::with_vaults_read`], given the session itself to hand on to
    /// a read that follows (which holds it only while it reads: a lock
    /// waits for it as for any reader).
    pub(crate) async fn with_session_read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Arc<Session>) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.run(move |inner| {
            let session = match &*inner.lock_state() {
                State::Unlocked(_, session) => Arc::clone(session),
                State::Locked(_) => return Err(NodeError::Locked),
                State::Uninitialised => return Err(NodeError::NotInitialised),
            };
            work(&session)
        })
        .await
    }

    /// Fresh Argon2id parameters of this node's cost (a new salt each
    /// call), for what it seals with a password of its own.
    pub(crate) fn kdf_params(&self) -> KdfParams {
        self.inner.options.kdf.params()
    }

    pub(crate) async fn with_vaults<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Session) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        self.run(move |inner| inner.with_session(work)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || work(&inner)).await
    }
}

pub(crate) fn settings_key(db: &Db) -> RecordKey {
    db.record_key("node_settings", b"settings")
}

/// Most time a lock waits for readers still using the session.
const READERS_WAIT: Duration = Duration::from_secs(30);

/// Free space in the store worth a compaction at a lock: at least this
/// much, and a quarter of the file.
const COMPACT_AT: u64 = 32 * 1024 * 1024;

/// Growth of the store's bytes since the last collection that makes a
/// lock, or a quiet moment, collect again, at least (see [`tidy`]).
const COLLECT_AFTER: u64 = 16 * 1024 * 1024;

/// How long a node unlocked must have been quiet (no client call, no
/// transfer under way or kept to go on with) before it collects what no
/// version needs, and how often it looks ([`Node::collect_if_quiet`]).
pub(crate) const COLLECT_QUIET: Duration = Duration::from_secs(10 * 60);

/// Most time a collection while unlocked waits for readers still using
/// the session (client calls wait meanwhile); past it, it tries again at
/// the next quiet moment.
const COLLECT_WAIT: Duration = Duration::from_secs(1);

/// With the store to itself (no transaction open): delete what no version
/// of a vault needs (`Vaults::collect_garbage`, after the parts transfers
/// let go of), once the store grew since the last collection by a quarter
/// and by [`COLLECT_AFTER`] (a writer's abandoned transfers are that; the
/// edits of a day are not), or at the first; then give back the space
/// deleted vaults and secrets left free when there is enough of it (see
/// [`COMPACT_AT`]). A failure loses nothing (each vault's collection is
/// all or nothing). Returns what was collected, if a collection was due.
fn tidy(db: &mut Db, stop: &dyn Fn() -> bool) -> Option<polykey_vaults::Collected> {
    let _ = polykey_vaults::Vaults::new(db).sweep_parts();
    let collected = polykey_vaults::Vaults::collect_garbage_after(db, COLLECT_AFTER, stop)
        .ok()
        .flatten();
    let worth = !stop()
        && db.space().is_ok_and(|space| {
            space.fragmented_bytes >= COMPACT_AT
                && space.fragmented_bytes >= space.allocated_bytes / 4
        });
    if worth {
        // A failed compaction leaves the store as it was.
        let _ = db.compact();
    }
    collected
}

/// Wait (bounded) until no reader holds `session`, then close it: the
/// store and the keys go when the last holder lets go. A lock is the quiet
/// moment to [`tidy`] the store.
fn wait_for_readers(session: Arc<Session>) {
    session.closing.store(true, Ordering::Relaxed);
    wait_for_sole(&session, READERS_WAIT);
    if let Ok(mut session) = Arc::try_unwrap(session) {
        tidy(&mut session.db, &|| false);
    }
}

/// Wait, at most `bound`, until no reader but the caller holds `session`.
fn wait_for_sole(session: &Arc<Session>, bound: Duration) {
    let started = Instant::now();
    while Arc::strong_count(session) > 1 && started.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Since when a collection was put off, on the monotonic clock (on Linux
/// and macOS time asleep is not a chance to collect missed), and
/// `earlier`: put off for that long before (tests).
#[derive(Clone, Copy)]
struct PutOff {
    since: Instant,
    earlier: Duration,
}

impl PutOff {
    fn now() -> Self {
        Self {
            since: Instant::now(),
            earlier: Duration::ZERO,
        }
    }

    fn waited(&self) -> Duration {
        self.earlier + self.since.elapsed()
    }
}

/// How long a collection while unlocked may be put off for want of a
/// quiet moment, or by transfers kept that no longer go on (a writer
/// could keep one set aside for good), before it runs anyway.
pub(crate) const COLLECT_PUT_OFF: Duration = Duration::from_secs(60 * 60);

/// How long transfers that still go on may put it off: a large vault over
/// a slow link takes hours, and a collection makes a transfer begin
/// again; past this, a writer trickling pages no longer holds it off.
pub(crate) const COLLECT_PUT_OFF_MOST: Duration = Duration::from_secs(24 * 60 * 60);

impl Node {
    /// While unlocked: what a lock does to the store ([`tidy`]), for a
    /// node that never locks (an agent on a server), where a writer's
    /// abandoned transfers would otherwise stay until one. It waits for a
    /// moment quiet for `idle` (no client call) with no transfer under
    /// way or kept to go on with; put off for [`COLLECT_PUT_OFF`], only
    /// for transfers that took a page in the last [`COLLECT_QUIET`], a
    /// catch-up under way or a new vault arriving (those kept and not
    /// going on begin again); put off for [`COLLECT_PUT_OFF_MOST`], for no
    /// transfer (a lock waiting, or readers holding the session past
    /// [`COLLECT_WAIT`], still put it off). Client calls (and anything
    /// else that waits for the node's state) wait while it runs (100,000
    /// commits: about 6 s), and a transfer that took in anything before
    /// it is refused at its next page and begins again. Returns what was
    /// collected, if anything was due and the session could be had to
    /// itself within [`COLLECT_WAIT`] with no lock waiting.
    pub async fn collect_if_quiet(
        &self,
        idle: Duration,
    ) -> Result<Option<polykey_vaults::Collected>, NodeError> {
        self.run(move |inner| {
            // The state held: no call begins on the session meanwhile.
            let mut state = inner.lock_state();
            let State::Unlocked(_, session) = &mut *state else {
                return Ok(None);
            };
            let mut put_off = inner
                .collection_put_off
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if !polykey_vaults::Vaults::collection_due(&session.db, COLLECT_AFTER)? {
                *put_off = None;
                return Ok(None);
            }
            let waited = put_off.map_or(Duration::ZERO, |p| p.waited());
            let quiet = waited >= COLLECT_PUT_OFF
                || inner
                    .last_activity
                    .lock()
                    .map(|last| last.elapsed() >= idle)
                    .unwrap_or(false);
            if !quiet {
                put_off.get_or_insert_with(PutOff::now);
                return Ok(None);
            }
            wait_for_sole(session, COLLECT_WAIT);
            // Looked at once no call runs: a page's call puts its
            // transfer's progress back before it ends, and a catch-up is
            // counted from the versions it names to its merge.
            let kept = match waited {
                w if w >= COLLECT_PUT_OFF_MOST => false,
                w if w >= COLLECT_PUT_OFF => inner.transfers_kept(Some(COLLECT_QUIET)),
                _ => inner.transfers_kept(None),
            };
            let session = match Arc::get_mut(session) {
                Some(session) if !kept && inner.locks_waiting() == 0 => session,
                // Readers still at it, a lock waiting, a transfer kept.
                _ => {
                    put_off.get_or_insert_with(PutOff::now);
                    return Ok(None);
                }
            };
            *put_off = None;
            // A lock asked for meanwhile stops it before the next vault
            // (and the compaction): the lock's own tidying goes on.
            let handle = session.db.handle();
            let collected = tidy(&mut session.db, &|| inner.locks_waiting() > 0);
            if session.db.handle() != handle {
                // Something went: those set aside would be refused at
                // their next page.
                inner.forget_resumes();
            }
            Ok(collected)
        })
        .await
    }
}

/// While the network runs (what no version needs comes from it): every
/// [`COLLECT_QUIET`], [`Node::collect_if_quiet`].
pub(crate) async fn collect_periodically(weak: std::sync::Weak<Inner>) {
    let mut ticks = tokio::time::interval(COLLECT_QUIET);
    // The first tick is at once: not quiet yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let _ = Node { inner }.collect_if_quiet(COLLECT_QUIET).await;
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, NodeError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        if e.is_panic() {
            // The storage engine can panic on a damaged file; whatever
            // the cause, the person gets a sentence, not the panic.
            NodeError::Damaged
        } else {
            NodeError::Internal("background work was cancelled".into())
        }
    })?
}

/// A lock waiting for the state, counted while it waits.
struct LockWaiting<'a>(&'a AtomicUsize);

impl Drop for LockWaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inner {
    /// Count a lock as waiting for the state until the guard goes.
    fn lock_waiting(&self) -> LockWaiting<'_> {
        self.locks_waiting.fetch_add(1, Ordering::Relaxed);
        LockWaiting(&self.locks_waiting)
    }

    /// How many locks wait for the state now.
    pub(crate) fn locks_waiting(&self) -> usize {
        self.locks_waiting.load(Ordering::Relaxed)
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as it was before the
        // failed transition, which is still a valid state.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lock, with the state held: client sessions end, the network stops,
    /// and the session closes once the readers using it are done. Returns
    /// whether the node was unlocked.
    fn lock_held(&self, state: &mut State) -> bool {
        let State::Unlocked(wrapped, _) = &*state else {
            return false;
        };
        let locked = State::Locked(wrapped.clone());
        if let State::Unlocked(_, session) = std::mem::replace(state, locked) {
            self.end_client_sessions();
            self.stop_network();
            self.changed();
            wait_for_readers(session);
            // The lock collected, if it was due.
            *self
                .collection_put_off
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
        }
        true
    }

    /// The store's write generation while unlocked.
    pub(crate) fn generation(&self) -> Option<u64> {
        match &*self.lock_state() {
            State::Unlocked(_, session) => Some(session.db.generation()),
            _ => None,
        }
    }

    /// Whether a transfer let go of a hold on the store since the last
    /// look ([`polykey_db::Db::leases_given_back`]); false while locked.
    pub(crate) fn leases_given_back(&self) -> bool {
        match &*self.lock_state() {
            State::Unlocked(_, session) => session.db.leases_given_back(),
            _ => false,
        }
    }

    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Every client-API session ends at a lock, while the state is held,
    /// so no token outlives a lock and works again after the next unlock.
    pub(crate) fn end_client_sessions(&self) {
        self.tokens().0.clear();
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last_activity.lock() {
            *last = Moment::now();
        }
    }

    /// Run `work` with the unlocked session. Not activity: sync, redials,
    /// peers' requests and timers use the session too, and must not keep
    /// the node unlocked; front ends report what a person does with
    /// [`Node::touch`].
    fn with_session<T>(
        &self,
        work: impl FnOnce(&Session) -> Result<T, NodeError>,
    ) -> Result<T, NodeError> {
        match &*self.lock_state() {
            State::Unlocked(_, session) => work(session),
            State::Locked(_) => Err(NodeError::Locked),
            State::Uninitialised => Err(NodeError::NotInitialised),
        }
    }

    fn create(&self, password: &Password) -> Result<Created, NodeError> {
        check_new_password(password)?;
        let mut state = self.lock_state();
        if !matches!(*state, State::Uninitialised) {
            return Err(NodeError::AlreadyExists);
        }
        if self.dir.db_path().exists() {
            // A store without a key file: left by a creation cut off before
            // its key file was written (nothing in it, no recovery code
            // shown), else kept for the recovery code to open.
            if !self.dir.creation_cut_off() {
                return Err(NodeError::AlreadyExists);
            }
            self.dir.discard_cut_off_creation()?;
        }
        let recovery_code = RecoveryCode::generate();
        let keys = recovery_code.root_keypair();
        let wrapped = WrappedRootKey::wrap(&keys, password, self.options.kdf.params())
            .map_err(|_| NodeError::KeyFileCorrupt)?;
        self.dir.begin_creation()?;
        let db = Db::create(&self.dir.db_path(), &keys)?;
        // The key file is written last: its presence marks a complete node.
        self.dir.write_root_key(&wrapped)?;
        self.dir.end_creation();
        let node_id = keys.node_id();
        *state = State::Unlocked(wrapped, Session::new(keys, db, self));
        self.touch();
        self.changed();
        Ok(Created {
            node_id,
            recovery_code,
        })
    }

    fn wrapped(&self) -> Result<WrappedRootKey, NodeError> {
        match &*self.lock_state() {
            State::Uninitialised => Err(NodeError::NotInitialised),
            State::Locked(wrapped) | State::Unlocked(wrapped, _) => Ok(wrapped.clone()),
        }
    }

    fn unlock(&self, password: &Password) -> Result<(), NodeError> {
        self.unlock_with(|wrapped| Ok(wrapped.unwrap(password)?))
    }

    /// Unlock with whatever `open` makes of the wrapped root key.
    fn unlock_with(
        &self,
        open: impl FnOnce(&WrappedRootKey) -> Result<RootKeypair, NodeError>,
    ) -> Result<(), NodeError> {
        let mut state = self.lock_state();
        let wrapped = match &*state {
            State::Uninitialised => return Err(NodeError::NotInitialised),
            State::Unlocked(..) => return Err(NodeError::AlreadyUnlocked),
            State::Locked(wrapped) => wrapped.clone(),
        };
        // The key is checked before the store is touched, so a wrong
        // password leaves every file exactly as it was.
        let keys = open(&wrapped)?;
        let db = Db::open(&self.dir.db_path(), &keys).map_err(at_unlock)?;
        *state = State::Unlocked(wrapped, Session::new(keys, db, self));
        self.touch();
        self.changed();
        Ok(())
    }

    fn recover(&self, code: &RecoveryCode, new_password: &Password) -> Result<(), NodeError> {
        check_new_password(new_password)?;
        let mut state = self.lock_state();
        let keys = code.root_keypair();
        match &*state {
            State::Unlocked(..) => return Err(NodeError::AlreadyUnlocked),
            State::Locked(wrapped) if wrapped.node_id != keys.node_id() => {
                return Err(NodeError::RecoveryCodeMismatch)
            }
            _ => {}
        }
        let db_path = self.dir.db_path();
        let db = if db_path.exists() {
            Db::open(&db_path, &keys).map_err(|e| match e {
                polykey_db::DbError::WrongKey => NodeError::RecoveryCodeMismatch,
                other => at_unlock(other),
            })?
        } else {
            Db::create(&db_path, &keys)?
        };
        let wrapped = WrappedRootKey::wrap(&keys, new_password, self.options.kdf.params())
            .map_err(|_| NodeError::KeyFileCorrupt)?;
        self.dir.write_root_key(&wrapped)?;
        // A new password: a login checked against the old one gets no
        // token (see `change_password`).
        self.password_changes.fetch_add(1, Ordering::SeqCst);
        *state = State::Unlocked(wrapped, Session::new(keys, db, self));
        self.touch();
        self.changed();
        Ok(())
    }

    fn change_password(&self, old: &Password, new: &Password) -> Result<(), NodeError> {
        check_new_password(new)?;
        let mut state = self.lock_state();
        let wrapped = match &*state {
            State::Uninitialised => return Err(NodeError::NotInitialised),
            State::Locked(wrapped) | State::Unlocked(wrapped, _) => wrapped,
        };
        let keys = wrapped.unwrap(old)?;
        // New key files get the current profile, so a password change also
        // upgrades an old file's Argon2id cost.
        let rewrapped = WrappedRootKey::wrap(&keys, new, self.options.kdf.params())
            .map_err(|_| NodeError::KeyFileCorrupt)?;
        self.dir.write_root_key(&rewrapped)?;
        match &mut *state {
            State::Locked(w) | State::Unlocked(w, _) => *w = rewrapped,
            State::Uninitialised => {}
        }
        // A new password is what someone does who fears the old one known:
        // a session opened with it (a copied token file) ends too, and so
        // does a login with it under way.
        self.password_changes.fetch_add(1, Ordering::SeqCst);
        self.end_client_sessions();
        Ok(())
    }
}

/// The store's refusal as the person unlocking sees it: a store that fails
/// its checks at open was changed behind the node's back.
fn at_unlock(error: polykey_db::DbError) -> NodeError {
    match error {
        polykey_db::DbError::Tampered { .. } => NodeError::StoreTampered,
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use polykey_vaults::{kind_of_tag, RawObject, Vaults};

    use super::*;

    /// Store `megabytes` MiB of objects no version reaches in vault `v`,
    /// as a transfer let go would have left them: a blob of another
    /// device's, stored in chunks.
    async fn leave_garbage(node: &Node, megabytes: usize, seed: u8) {
        node.with_vaults(move |s| {
            let blob = RawObject {
                kind: kind_of_tag(1).expect("the blob's tag"),
                data: vec![seed; megabytes << 20],
                base: None,
            };
            Vaults::new(&s.db).open("v")?.import(&s.db, &[blob])?;
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn stored(node: &Node) -> u64 {
        node.store_space().await.unwrap().stored_bytes
    }

    /// A node with vault `v` holding secret `kept`, and 3 MiB no version
    /// needs; and the store's bytes then.
    async fn with_kept_and_garbage(dir: &Path) -> (Node, u64) {
        let node = test_node(dir, "a password").await;
        node.create_vault("v".into()).await.unwrap();
        node.write_secret("v".into(), "kept".into(), b"secret".to_vec().into())
            .await
            .unwrap();
        leave_garbage(&node, 3, 1).await;
        let before = stored(&node).await;
        (node, before)
    }

    async fn lock_and_unlock(node: &Node) {
        node.lock().await.unwrap();
        node.unlock("a password".into()).await.unwrap();
    }

    #[tokio::test]
    async fn a_lock_collects_what_no_version_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (node, before) = with_kept_and_garbage(dir.path()).await;
        lock_and_unlock(&node).await;
        let after = stored(&node).await;
        assert!(
            before - after >= 3 << 20,
            "the first lock collected {} of 3 MiB",
            before - after
        );

        // Then a lock collects again once the store grew by a good deal,
        // not for every little.
        leave_garbage(&node, 2, 2).await;
        let grown = stored(&node).await;
        lock_and_unlock(&node).await;
        assert!(
            stored(&node).await + (1 << 20) > grown,
            "collected again at once"
        );
        leave_garbage(&node, 15, 3).await;
        lock_and_unlock(&node).await;
        assert!(stored(&node).await <= after + (64 << 10));
        let secret = node
            .get_secret("v".into(), "kept".into(), None)
            .await
            .unwrap();
        assert_eq!(secret.as_slice(), b"secret");
    }

    /// A node that never locks (an agent on a server) collects at a quiet
    /// moment, and stays unlocked and usable.
    #[tokio::test]
    async fn an_unlocked_node_collects_what_no_version_needs_at_a_quiet_moment() {
        let dir = tempfile::tempdir().unwrap();
        let (node, before) = with_kept_and_garbage(dir.path()).await;
        // Used a moment ago: not quiet.
        assert_eq!(node.collect_if_quiet(COLLECT_QUIET).await.unwrap(), None);
        // A new vault arriving: its transfer would begin again.
        let arriving = node.inner.new_vault_lock(polykey_vaults::VaultId::random());
        let held = arriving.try_lock().unwrap();
        assert_eq!(node.collect_if_quiet(Duration::ZERO).await.unwrap(), None);
        assert_eq!(stored(&node).await, before);
        drop(held);
        // A lock waiting for the state: it goes first.
        let waiting = node.inner.lock_waiting();
        assert_eq!(node.collect_if_quiet(Duration::ZERO).await.unwrap(), None);
        drop(waiting);

        let collected = node.collect_if_quiet(Duration::ZERO).await.unwrap();
        let collected = collected.expect("a collection");
        assert!(collected.bytes >= 3 << 20, "{collected:?}");
        assert!(before - stored(&node).await >= 3 << 20);
        assert_eq!(node.status().state, crate::NodeState::Unlocked);
        node.write_secret("v".into(), "more".into(), b"later".to_vec().into())
            .await
            .unwrap();
        let secret = node
            .get_secret("v".into(), "kept".into(), None)
            .await
            .unwrap();
        assert_eq!(secret.as_slice(), b"secret");
        // Not again until the store grows by a good deal.
        leave_garbage(&node, 2, 2).await;
        assert_eq!(node.collect_if_quiet(Duration::ZERO).await.unwrap(), None);
    }

    /// Put off as if for `time` more (tests).
    fn put_off_for(node: &Node, time: Duration) {
        let mut put_off = node.inner.collection_put_off.lock().unwrap();
        put_off.as_mut().expect("put off").earlier += time;
    }

    /// A catch-up under way, or a transfer kept, puts a collection off;
    /// put off for an hour, only transfers still going on do (a writer
    /// keeping one set aside would hold it off for good, as would a node
    /// never quiet); put off for a day, nothing does. A lock forgets it.
    #[tokio::test]
    async fn a_collection_put_off_for_an_hour_runs_unless_a_transfer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let node = test_node(dir.path(), "a password").await;
        node.create_vault("v".into()).await.unwrap();
        leave_garbage(&node, 3, 1).await;
        let before = stored(&node).await;
        let catching_up = node.inner.catching_up();
        assert_eq!(node.collect_if_quiet(Duration::ZERO).await.unwrap(), None);
        // Past an hour, one still going on puts it off, quiet or not.
        put_off_for(&node, COLLECT_PUT_OFF);
        assert_eq!(node.collect_if_quiet(COLLECT_QUIET).await.unwrap(), None);
        assert_eq!(stored(&node).await, before);
        drop(catching_up);
        // A lock (which collected) forgets it: after the unlock, the node
        // not quiet, it is put off again from now.
        lock_and_unlock(&node).await;
        leave_garbage(&node, 9, 2).await;
        leave_garbage(&node, 9, 4).await;
        let before = stored(&node).await;
        assert_eq!(node.collect_if_quiet(COLLECT_QUIET).await.unwrap(), None);
        put_off_for(&node, COLLECT_PUT_OFF / 2);
        assert_eq!(node.collect_if_quiet(COLLECT_QUIET).await.unwrap(), None);
        // Past a day, nothing puts it off.
        let catching_up = node.inner.catching_up();
        put_off_for(&node, COLLECT_PUT_OFF);
        assert_eq!(node.collect_if_quiet(COLLECT_QUIET).await.unwrap(), None);
        put_off_for(&node, COLLECT_PUT_OFF_MOST);
        let collected = node.collect_if_quiet(COLLECT_QUIET).await.unwrap();
        assert!(collected.expect("a collection").bytes >= 17 << 20);
        assert!(before - stored(&node).await >= 17 << 20);
        drop(catching_up);
    }
}
