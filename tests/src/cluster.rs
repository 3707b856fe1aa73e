//! Many real nodes of one gestalt, each in its own process on 127.0.0.1,
//! editing one vault while the harness drops their connections and kills
//! them with SIGKILL; then it heals and checks that they converge and lost
//! no acknowledged change.
//!
//! A node process is the calling test executable started again with
//! [`CHILD_ENV`] set: it calls [`serve_if_child`] first thing, opens (or
//! creates) its node directory, listens on the port it is given, and
//! answers one command per line on stdin. Connections are cut from outside
//! the process with `ss -K` (the kernel aborts the sockets and the peer sees
//! a reset), as a dropped network would; nothing in the node knows it is
//! under test.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

/// Set in a node process: `DIR|PORT`.
pub const CHILD_ENV: &str = "POLYKEY_CLUSTER_NODE";
/// The password every node of the cluster is created with.
const PASSWORD: &str = "correct horse battery";
/// The vault every node edits.
const VAULT: &str = "Shared";
/// The longest any one command may take before the node counts as hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// If this process was started as a cluster node, serve commands on stdin
/// until it closes, then exit. Call it first in `main` (or in a test that
/// the harness starts with `--exact`).
pub fn serve_if_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let code = match serve(&spec) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cluster node: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn serve(spec: &str) -> Result<(), String> {
    let (dir, port) = spec.rsplit_once('|').ok_or("bad spec")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(serve_node(Path::new(dir), port))
}

async fn serve_node(dir: &Path, port: &str) -> Result<(), String> {
    use polykey_node::{KdfProfile, NetworkOptions, Node, NodeOptions, NodeState, Password};
    let options = NodeOptions {
        // Release builds refuse the test profile's cheap key file.
        kdf: if cfg!(debug_assertions) {
            KdfProfile::FastForTests
        } else {
            KdfProfile::Default
        },
        network: Some(NetworkOptions {
            listen: vec![format!("/ip4/127.0.0.1/tcp/{port}")],
            ..NetworkOptions::loopback()
        }),
    };
    let node = Node::open(dir, options).await.map_err(|e| e.to_string())?;
    let password = || Password::new(PASSWORD.into());
    match node.status().state {
        NodeState::Uninitialised => node.create(password()).await.map(|_| ()),
        _ => node.unlock(password()).await,
    }
    .map_err(|e| e.to_string())?;
    let listening = node.addresses().await.map_err(|e| e.to_string())?;
    if !listening
        .iter()
        .any(|a| a.ends_with(&format!("/tcp/{port}")))
    {
        return Err(format!("not listening on port {port}: {listening:?}"));
    }
    let id = node.status().node_id.ok_or("no node id")?;
    let mut out = tokio::io::stdout();
    let say = |line: String| format!("{}\n", line.replace('\n', " "));
    out.write_all(say(format!("ready {id}")).as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    out.flush().await.map_err(|e| e.to_string())?;

    let joining: Joining = Arc::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match answer(&node, &joining, &line).await {
            Ok(text) => format!("ok {text}"),
            Err(text) => format!("err {text}"),
        };
        out.write_all(say(answer).as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        out.flush().await.map_err(|e| e.to_string())?;
    }
    node.lock().await.map_err(|e| e.to_string())
}

/// The device's side of a pairing, confirmed while the inviter decides.
type Joining = Arc<StdMutex<Option<tokio::task::JoinHandle<Result<(), String>>>>>;

async fn answer(
    node: &polykey_node::Node,
    joining: &Joining,
    line: &str,
) -> Result<String, String> {
    use polykey_node::PairingState;
    // The last word takes the rest of the line (the digits have spaces).
    let words: Vec<&str> = match line.split_once(' ') {
        Some(("confirm", digits)) => vec!["confirm", digits],
        _ => line.split(' ').collect(),
    };
    let text = |e: polykey_node::NodeError| e.to_string();
    let value = |v: &str| zeroize::Zeroizing::new(v.as_bytes().to_vec());
    match words.as_slice() {
        ["invite"] => Ok(node.invite().await.map_err(text)?.to_code()),
        ["join", code] => {
            let (_, fingerprint) = node.join(code).await.map_err(text)?;
            let node = node.clone();
            let task = tokio::spawn(async move { node.confirm_join(true).await.map_err(text) });
            *joining.lock().map_err(|_| "poisoned")? = Some(task);
            Ok(fingerprint)
        }
        ["joined"] => {
            let finished = joining
                .lock()
                .map_err(|_| "poisoned")?
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished);
            if !finished {
                return Ok("no".into());
            }
            let task = joining.lock().map_err(|_| "poisoned")?.take();
            match task {
                Some(task) => task
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|()| "yes".into()),
                None => Ok("no".into()),
            }
        }
        ["confirming"] => Ok(match node.pairing_state() {
            PairingState::Confirming { fingerprint, .. } => fingerprint,
            _ => "-".into(),
        }),
        ["confirm", fingerprint] => node
            .confirm_pairing_of(true, Some(fingerprint))
            .map(|()| String::new())
            .map_err(text),
        ["paired"] => Ok(match node.pairing_state() {
            PairingState::Paired { .. } => "yes".into(),
            _ => "no".into(),
        }),
        // Another person's node: where it listens, trusting it (and its
        // notifications, so its offer arrives), sharing with it, and
        // taking what it offered.
        ["connect", peer, address] => {
            let peer = peer.parse().map_err(|_| "bad node id")?;
            node.connect(peer, (*address).into())
                .await
                .map(|()| String::new())
                .map_err(text)
        }
        ["trust", peer] => {
            node.trust(peer).await.map_err(text)?;
            node.set_permission(peer, polykey_node::people::Permission::Notify, true)
                .await
                .map(|_| String::new())
                .map_err(text)
        }
        ["share", vault, peer] => node
            .share_vault(vault, peer, true)
            .await
            .map(|shared| shared.offered.to_string())
            .map_err(text),
        ["offer"] => Ok(node
            .read_notifications(false)
            .await
            .map_err(text)?
            .into_iter()
            .find_map(|n| n.share)
            .map_or_else(|| "-".into(), |offer| offer.vault)),
        ["accept", vault] => node.accept_share(vault).await.map(|v| v.name).map_err(text),
        // Whether this node may write `vault`: its own person's, or shared
        // to write with this node among those the owner serves.
        ["writable", vault] => {
            let me = node.status().node_id.ok_or("locked")?;
            let access = node.vault_access(vault).await.map_err(text)?.access;
            let writable = access
                .remote
                .is_none_or(|r| r.write && !r.ended && r.served.contains(&me));
            Ok(if writable { "yes" } else { "no" }.into())
        }
        ["create-vault", name] => node
            .create_vault((*name).into())
            .await
            .map(|v| v.id.to_string())
            .map_err(text),
        ["vaults"] => Ok(node
            .vaults()
            .await
            .map_err(text)?
            .into_iter()
            .map(|v| v.name)
            .collect::<Vec<_>>()
            .join(",")),
        ["write", vault, path, v] => node
            .write_secret((*vault).into(), (*path).into(), value(v))
            .await
            .map_err(text),
        ["rename", vault, from, to] => node
            .rename_secret((*vault).into(), (*from).into(), (*to).into())
            .await
            .map_err(text),
        ["remove", vault, path] => node
            .remove_secret((*vault).into(), (*path).into(), false)
            .await
            .map_err(text),
        ["bulk", vault, prefix, per, commits] => {
            let per: usize = per.parse().map_err(|_| "bad count")?;
            let commits: usize = commits.parse().map_err(|_| "bad count")?;
            let mut last = String::new();
            for c in 0..commits {
                let secrets = (0..per)
                    .map(|i| {
                        let path = format!("{prefix}/{c:04}-{i:04}");
                        let v = format!("{path} {}", "x".repeat(96));
                        (path, value(&v))
                    })
                    .collect();
                last = node
                    .write_secrets((*vault).into(), secrets)
                    .await
                    .map_err(text)?;
            }
            Ok(last)
        }
        ["verify", vault] => node
            .verify_vault((*vault).into())
            .await
            .map(|signers| signers.to_string())
            .map_err(text),
        ["head", vault] => Ok(node
            .vault_log((*vault).into(), Some(1))
            .await
            .map_err(text)?
            .first()
            .map_or_else(|| "-".into(), |c| c.id.clone())),
        ["log", vault] => Ok(node
            .vault_log((*vault).into(), None)
            .await
            .map_err(text)?
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
            .join(",")),
        ["list", vault] => Ok(node
            .list_secrets((*vault).into(), None)
            .await
            .map_err(text)?
            .join(",")),
        _ => Err(format!("unknown command {line:?}")),
    }
}

/// A deterministic generator (xorshift64), so a failing run repeats from
/// its printed seed.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded; zero is replaced.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Nodes in all.
    pub nodes: usize,
    /// People they belong to (gestalts, each a run of nodes): the first
    /// person's first node makes the vault and shares it, to write, with
    /// each other person's first node.
    pub people: usize,
    /// How long they edit under faults.
    pub edit_for: Duration,
    /// Nodes killed with SIGKILL (one after another) and started again.
    pub kills: usize,
    /// The mean pause between two connection drops.
    pub drop_every: Duration,
    /// Secret names edited (half at the root, half in a folder).
    pub names: usize,
    /// The longest convergence may take once faults stop.
    pub converge_within: Duration,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Plan {
    /// A seed from `POLYKEY_FAULT_SEED`, or the clock.
    pub fn seed_from_env() -> u64 {
        std::env::var("POLYKEY_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// Changes acknowledged (writes, renames, removals that returned a
    /// version).
    pub acknowledged: usize,
    /// Acknowledged changes per second while editing.
    pub ops_per_second: f64,
    /// Changes that failed because their node was killed or cut off.
    pub interrupted: usize,
    /// Connection drops made.
    pub drops: usize,
    /// Sockets the kernel aborted in those drops (both ends count).
    pub sockets_cut: usize,
    /// Nodes killed and restarted.
    pub kills: usize,
    /// From the end of the faults until every node held the same head.
    pub convergence: Duration,
    /// The largest resident memory of one node process once converged
    /// (KiB).
    pub rss_kib: u64,
    /// Commits in the converged history.
    pub commits: usize,
    /// Secrets in the converged vault.
    pub secrets: usize,
}

struct Link {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// One node process.
struct Member {
    index: usize,
    dir: PathBuf,
    port: u16,
    stderr: PathBuf,
    pid: AtomicU32,
    link: Mutex<Option<Link>>,
    starts: AtomicU32,
}

impl Member {
    async fn start(&self, exe: &Path, child_args: &[String]) -> Result<String, String> {
        let starts = self.starts.fetch_add(1, Ordering::SeqCst);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args(child_args)
            .env(CHILD_ENV, format!("{}|{}", self.dir.display(), self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("node {}: {e}", self.index))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        self.pid.store(child.id().unwrap_or(0), Ordering::SeqCst);
        let mut lines = BufReader::new(stdout).lines();
        // The test harness may print its own lines first ("running 1 test").
        let ready = tokio::time::timeout(COMMAND_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(id) = line.strip_prefix("ready ") {
                    return Some(id.to_owned());
                }
            }
            None
        })
        .await;
        let Ok(Some(id)) = ready else {
            let _ = child.kill().await;
            return Err(format!(
                "node {} (start {starts}) failed to start: {}",
                self.index,
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            ));
        };
        *self.link.lock().await = Some(Link {
            child,
            stdin,
            lines,
        });
        Ok(id)
    }

    /// One command and its answer; `Err` for an `err` answer or a node
    /// that is gone.
    async fn ask(&self, command: &str) -> Result<String, String> {
        let mut slot = self.link.lock().await;
        let link = slot.as_mut().ok_or("gone")?;
        let exchange = async {
            link.stdin
                .write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(|_| "gone".to_owned())?;
            link.stdin.flush().await.map_err(|_| "gone".to_owned())?;
            loop {
                let line = link
                    .lines
                    .next_line()
                    .await
                    .map_err(|_| "gone".to_owned())?
                    .ok_or_else(|| "gone".to_owned())?;
                // What the test runner around a node says (under plain
                // `cargo test`, "has been running for over 60 seconds")
                // is no answer.
                if line == "ok" || line.starts_with("ok ") || line.starts_with("err ") {
                    return Ok::<_, String>(line);
                }
            }
        };
        let line = tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("node {} hung on {command:?}", self.index))??;
        match line.split_once(' ') {
            Some(("ok", rest)) => Ok(rest.to_owned()),
            Some(("err", rest)) => Err(rest.to_owned()),
            _ if line == "ok" => Ok(String::new()),
            _ => Err(format!("odd answer {line:?}")),
        }
    }

    /// Every version in the vault's history.
    async fn history(&self) -> Result<HashSet<String>, String> {
        Ok(self
            .ask(&format!("log {VAULT}"))
            .await?
            .split(',')
            .map(str::to_owned)
            .collect())
    }

    /// SIGKILL, without waiting for a command in flight.
    fn kill(&self) {
        let pid = self.pid.swap(0, Ordering::SeqCst);
        if pid != 0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    /// Reap a killed process.
    async fn reap(&self) {
        if let Some(mut link) = self.link.lock().await.take() {
            let _ = link.child.wait().await;
        }
    }

    /// Close stdin and wait for a clean exit; the exit status.
    async fn stop(&self) -> Result<(), String> {
        let Some(link) = self.link.lock().await.take() else {
            return Ok(());
        };
        let Link {
            mut child, stdin, ..
        } = link;
        drop(stdin);
        let status = tokio::time::timeout(COMMAND_TIMEOUT, child.wait())
            .await
            .map_err(|_| format!("node {} did not stop", self.index))?
            .map_err(|e| e.to_string())?;
        self.pid.store(0, Ordering::SeqCst);
        if status.success() {
            Ok(())
        } else {
            Err(format!("node {} exited with {status}", self.index))
        }
    }

    /// Resident memory now (KiB).
    fn rss_kib(&self) -> u64 {
        let pid = self.pid.load(Ordering::SeqCst);
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Abort every established TCP connection of this node's process; how
    /// many sockets the kernel aborted (the peers see a reset).
    fn drop_connections(&self) -> Result<usize, String> {
        let ss = |args: &[&str]| -> Result<String, String> {
            let output = std::process::Command::new("ss")
                .args(args)
                .stderr(Stdio::null())
                .output()
                .map_err(|e| format!("ss: {e}"))?;
            if !output.status.success() {
                return Err(format!("ss {args:?} failed: {}", output.status));
            }
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let pid = self.pid.load(Ordering::SeqCst);
        let owner = format!("pid={pid},");
        // Columns: Recv-Q Send-Q Local:Port Peer:Port Process.
        let ports: Vec<String> = ss(&["-H", "-t", "-n", "-p", "state", "established"])?
            .lines()
            .filter(|line| pid != 0 && line.contains(&owner))
            .filter_map(|line| line.split_whitespace().nth(2)?.rsplit_once(':'))
            .map(|(_, port)| format!("sport = :{port}"))
            .collect();
        if ports.is_empty() {
            // Still proves `ss -K` works here, as the first call must.
            ss(&["-K", "-H", "state", "established", "sport = :1"])?;
            return Ok(0);
        }
        let filter = format!("( {} )", ports.join(" or "));
        Ok(ss(&["-K", "-H", "-t", "state", "established", &filter])?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count())
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("timed out waiting until {what}"))
}

/// Runs `plan`: the nodes are the current executable started again with
/// `child_args` and [`CHILD_ENV`]. Returns what it measured, or what went
/// wrong (with the seed to repeat it).
pub async fn run(plan: &Plan, child_args: &[String]) -> Result<Report, String> {
    let seed = plan.seed;
    run_inner(plan, child_args)
        .await
        .map_err(|e| format!("{e} (repeat with POLYKEY_FAULT_SEED={seed})"))
}

async fn run_inner(plan: &Plan, child_args: &[String]) -> Result<Report, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let members = members(root.path(), plan.nodes)?;
    let result = exercise(plan, &exe, child_args, &members).await;
    end_all(&members, result).await
}

/// `count` nodes, not started yet, each with its directory, port and log
/// under `root`.
fn members(root: &Path, count: usize) -> Result<Vec<Arc<Member>>, String> {
    (0..count)
        .map(|index| {
            Ok(Arc::new(Member {
                index,
                dir: root.join(format!("node-{index}")),
                port: free_port()?,
                stderr: root.join(format!("node-{index}.log")),
                pid: AtomicU32::new(0),
                link: Mutex::new(None),
                starts: AtomicU32::new(0),
            }))
        })
        .collect()
}

/// Whatever happened, no node outlives the run; a node that panicked fails
/// it, before anything else `result` says.
async fn end_all<T>(members: &[Arc<Member>], result: Result<T, String>) -> Result<T, String> {
    for member in members {
        member.kill();
        member.reap().await;
    }
    let mut panics = Vec::new();
    for member in members {
        let log = std::fs::read_to_string(&member.stderr).unwrap_or_default();
        if log.contains("panicked") {
            panics.push(format!("node {}: {log}", member.index));
        }
    }
    if !panics.is_empty() {
        return Err(format!("a node panicked:\n{}", panics.join("\n")));
    }
    result
}

async fn exercise(
    plan: &Plan,
    exe: &Path,
    child_args: &[String],
    members: &[Arc<Member>],
) -> Result<Report, String> {
    // The check that faults can be made at all, before anything else.
    members[0].drop_connections()?;
    let mut ids = Vec::new();
    for member in members {
        ids.push(member.start(exe, child_args).await?);
    }
    members[0].ask(&format!("create-vault {VAULT}")).await?;
    // Each node joins its person's first node's gestalt.
    let people = plan.people.clamp(1, members.len());
    let person = |index: usize| index * people / members.len();
    let first_of = |p: usize| (0..members.len()).find(|i| person(*i) == p).unwrap_or(0);
    for (index, joiner) in members.iter().enumerate() {
        let first = first_of(person(index));
        if index != first {
            pair(&members[first], joiner).await?;
        }
    }
    // The first person shares the vault with each other person.
    for p in 1..people {
        let (owner, other) = (&members[0], &members[first_of(p)]);
        let address = |m: &Member| format!("/ip4/127.0.0.1/tcp/{}", m.port);
        other
            .ask(&format!("connect {} {}", ids[0], address(owner)))
            .await?;
        owner
            .ask(&format!("connect {} {}", ids[other.index], address(other)))
            .await?;
        other.ask(&format!("trust {}", ids[0])).await?;
        owner
            .ask(&format!("share {VAULT} {}", ids[other.index]))
            .await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let offered = loop {
            let vault = other.ask("offer").await?;
            if vault != "-" {
                break vault;
            }
            if Instant::now() > deadline {
                return Err("no share offer arrived".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let name = other.ask(&format!("accept {offered}")).await?;
        if name != VAULT {
            return Err(format!("the shared vault arrived as {name:?}"));
        }
    }
    // Every node of every person may write it: the owner serves all of a
    // person's devices, named or not (it follows their gestalt).
    eventually(
        "every node has the vault and may write it",
        Duration::from_secs(60),
        || async {
            for member in members {
                if member.ask("vaults").await.as_deref() != Ok(VAULT)
                    || member.ask(&format!("writable {VAULT}")).await.as_deref() != Ok("yes")
                {
                    return false;
                }
            }
            true
        },
    )
    .await?;

    // Edit under faults.
    let stop = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut drivers = Vec::new();
    for member in members {
        let member = Arc::clone(member);
        let stop = Arc::clone(&stop);
        let interrupted = Arc::clone(&interrupted);
        let mut rng = Rng::new(plan.seed ^ ((member.index as u64 + 1) * 0x9e37_79b9));
        let names = plan.names;
        drivers.push(tokio::spawn(async move {
            drive(&member, &stop, &interrupted, &mut rng, names).await
        }));
    }
    let faults = inject_faults(plan, exe, child_args, members, &stop);
    let (drops, sockets_cut, kills) = faults.await?;
    let edited_for = started.elapsed();
    let mut acknowledged = Vec::new();
    let mut surprises = Vec::new();
    for driver in drivers {
        let (acks, odd) = driver.await.map_err(|e| e.to_string())?;
        acknowledged.extend(acks);
        surprises.extend(odd);
    }
    if !surprises.is_empty() {
        return Err(format!("changes failed unexpectedly: {surprises:?}"));
    }

    // Heal: no more faults; every node runs. Converged when every head is
    // the same three looks in a row.
    let healed = Instant::now();
    let mut same = 0;
    let mut heads = Vec::new();
    while same < 3 {
        if healed.elapsed() > plan.converge_within {
            return Err(format!(
                "no convergence within {:?}: heads {heads:?}",
                plan.converge_within
            ));
        }
        heads.clear();
        for member in members {
            heads.push(member.ask(&format!("head {VAULT}")).await?);
        }
        if heads.iter().all(|h| *h == heads[0]) {
            same += 1;
        } else {
            same = 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let convergence = healed.elapsed().saturating_sub(Duration::from_millis(200));

    let history = members[0].history().await?;
    let lost: Vec<&(usize, String)> = acknowledged
        .iter()
        .filter(|(_, version)| !history.contains(version))
        .collect();
    if !lost.is_empty() {
        return Err(format!("acknowledged changes lost: {lost:?}"));
    }
    let listing = members[0].ask(&format!("list {VAULT}")).await?;
    for member in &members[1..] {
        if member.ask(&format!("list {VAULT}")).await? != listing {
            return Err(format!("node {} lists other secrets", member.index));
        }
    }
    let rss_kib = members.iter().map(|m| m.rss_kib()).max().unwrap_or(0);
    for member in members {
        member.stop().await?;
    }
    Ok(Report {
        acknowledged: acknowledged.len(),
        ops_per_second: acknowledged.len() as f64 / edited_for.as_secs_f64(),
        interrupted: interrupted.load(Ordering::SeqCst) as usize,
        drops,
        sockets_cut,
        kills,
        convergence,
        rss_kib,
        commits: history.len(),
        secrets: listing.split(',').filter(|s| !s.is_empty()).count(),
    })
}

async fn pair(inviter: &Member, joiner: &Member) -> Result<(), String> {
    let code = inviter.ask("invite").await?;
    let fingerprint = joiner.ask(&format!("join {code}")).await?;
    eventually(
        "the inviter shows the digits",
        Duration::from_secs(30),
        || async { inviter.ask("confirming").await.as_deref() == Ok(fingerprint.as_str()) },
    )
    .await?;
    inviter.ask(&format!("confirm {fingerprint}")).await?;
    eventually("the joiner joined", Duration::from_secs(30), || async {
        joiner.ask("joined").await.as_deref() == Ok("yes")
    })
    .await?;
    eventually("the inviter paired", Duration::from_secs(30), || async {
        inviter.ask("paired").await.as_deref() == Ok("yes")
    })
    .await
}

/// Random changes to one node until `stop`: the versions acknowledged,
/// and failures that are not "no such secret" or an interrupted node.
async fn drive(
    member: &Member,
    stop: &AtomicBool,
    interrupted: &AtomicU64,
    rng: &mut Rng,
    names: usize,
) -> (Vec<(usize, String)>, Vec<String>) {
    let name = |rng: &mut Rng| {
        let n = rng.below(names as u64);
        if n.is_multiple_of(2) {
            format!("site-{n:03}")
        } else {
            format!("work/site-{n:03}")
        }
    };
    let mut acknowledged = Vec::new();
    let mut odd = Vec::new();
    let mut step = 0u64;
    while !stop.load(Ordering::SeqCst) {
        step += 1;
        let roll = rng.below(10);
        let command = match roll {
            0..=5 => format!(
                "write {VAULT} {} v{}-{step}-{}",
                name(rng),
                member.index,
                rng.below(1 << 30)
            ),
            6 | 7 => format!("rename {VAULT} {} {}", name(rng), name(rng)),
            _ => format!("remove {VAULT} {}", name(rng)),
        };
        match member.ask(&command).await {
            Ok(version) => acknowledged.push((member.index, version)),
            Err(e) if e == "gone" || e.contains("hung") => {
                interrupted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Renaming or removing a secret that another change moved or
            // removed, or renaming onto one that exists: the user's own
            // mistake, told plainly.
            Err(_) if roll >= 6 => {}
            Err(e) => odd.push(format!("node {}: {command}: {e}", member.index)),
        }
        tokio::time::sleep(Duration::from_millis(5 + rng.below(20))).await;
    }
    (acknowledged, odd)
}

/// Drops connections at random and kills `plan.kills` nodes one after
/// another until `plan.edit_for` has passed, then sets `stop` once every
/// node runs again. Returns the drops made, the sockets they cut and the
/// kills made.
async fn inject_faults(
    plan: &Plan,
    exe: &Path,
    child_args: &[String],
    members: &[Arc<Member>],
    stop: &AtomicBool,
) -> Result<(usize, usize, usize), String> {
    let mut rng = Rng::new(plan.seed);
    let started = Instant::now();
    // Kill times spread over the middle of the run.
    let mut kill_at: BTreeMap<u64, usize> = BTreeMap::new();
    for k in 0..plan.kills {
        let at = plan.edit_for.as_millis() as u64 * (k as u64 + 1) / (plan.kills as u64 + 2);
        kill_at.insert(at, rng.below(plan.nodes as u64) as usize);
    }
    let (mut drops, mut cut, mut kills) = (0, 0, 0);
    while started.elapsed() < plan.edit_for {
        let mean = plan.drop_every.as_millis() as u64;
        tokio::time::sleep(Duration::from_millis(mean / 2 + rng.below(mean + 1))).await;
        let victim = &members[rng.below(plan.nodes as u64) as usize];
        cut += victim.drop_connections()?;
        drops += 1;
        let now = started.elapsed().as_millis() as u64;
        let due: Vec<u64> = kill_at.range(..=now).map(|(at, _)| *at).collect();
        for at in due {
            if let Some(index) = kill_at.remove(&at) {
                let member = &members[index];
                member.kill();
                member.reap().await;
                kills += 1;
                tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
                member.start(exe, child_args).await?;
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    Ok((drops, cut, kills))
}

/// What [`kill_while_syncing`] saw.
#[derive(Clone, Debug)]
pub struct SyncKills {
    /// Kills made while the returning device caught up.
    pub kills: usize,
    /// Kills after which that device's head had not moved yet: it was still
    /// fetching (or about to merge) what it lacked.
    pub mid_sync: usize,
    /// Versions the returning device lacked when it came back.
    pub lacked: usize,
    /// From its last start until both held the same head.
    pub last_catch_up: Duration,
    /// A whole catch-up measured first, from the start: the kills land
    /// within it.
    pub window: Duration,
}

/// Two devices of one gestalt diverge while apart: the first writes
/// `commits` commits of `per` secrets, the second 20 of its own. When the
/// second comes back it fetches the first's history page by page and the
/// two merge; it is killed with SIGKILL `kills` times at random moments
/// while it does, and started again each time. After every start its store
/// opens, its history verifies and every version it acknowledged is there;
/// at the end both hold the same head with every acknowledged version of
/// both in history.
pub async fn kill_while_syncing(
    child_args: &[String],
    per: usize,
    commits: usize,
    kills: usize,
    seed: u64,
) -> Result<SyncKills, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let root = tempfile::tempdir().map_err(|e| e.to_string())?;
    let members = members(root.path(), 2)?;
    let result = sync_under_kills(&exe, child_args, &members, per, commits, kills, seed).await;
    end_all(&members, result)
        .await
        .map_err(|e| format!("{e} (repeat with POLYKEY_FAULT_SEED={seed})"))
}

/// Wait until the two nodes hold the same head of the test vault.
async fn same_head(first: &Member, second: &Member) -> Result<(), String> {
    eventually(
        "both hold the same head",
        Duration::from_secs(120),
        || async {
            let a = first.ask(&format!("head {VAULT}")).await;
            a.is_ok() && a == second.ask(&format!("head {VAULT}")).await
        },
    )
    .await
}

/// Copy a stopped node's directory (files and subdirectories).
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| e.to_string())?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn sync_under_kills(
    exe: &Path,
    args: &[String],
    members: &[Arc<Member>],
    per: usize,
    commits: usize,
    kills: usize,
    seed: u64,
) -> Result<SyncKills, String> {
    let (first, second) = (&members[0], &members[1]);
    first.start(exe, args).await?;
    second.start(exe, args).await?;
    first.ask(&format!("create-vault {VAULT}")).await?;
    pair(first, second).await?;
    eventually(
        "the second has the vault",
        Duration::from_secs(60),
        || async { second.ask("vaults").await.as_deref() == Ok(VAULT) },
    )
    .await?;

    // Apart: each writes its own.
    second.stop().await?;
    first
        .ask(&format!("bulk {VAULT} bulk {per} {commits}"))
        .await?;
    let firsts = first.history().await?;
    first.stop().await?;
    second.start(exe, args).await?;
    for i in 0..20 {
        second
            .ask(&format!("write {VAULT} own/secret-{i} mine-{i}"))
            .await?;
    }
    let seconds = second.history().await?;
    let own_head = second.ask(&format!("head {VAULT}")).await?;
    second.stop().await?;
    let lacked = firsts.difference(&seconds).count();

    // How long the catch-up takes on this machine, measured on copies of
    // both nodes (then put back): the kills land within it. Fixed delays
    // (50-650 ms) all fell after a catch-up that took 30-40 ms here.
    let saved = members
        .iter()
        .map(|m| {
            let copy = m.dir.with_extension("saved");
            copy_dir(&m.dir, &copy).map(|()| copy)
        })
        .collect::<Result<Vec<_>, String>>()?;
    first.start(exe, args).await?;
    second.start(exe, args).await?;
    let started = Instant::now();
    same_head(first, second).await?;
    let window = started.elapsed();
    for (member, copy) in members.iter().zip(&saved) {
        member.stop().await?;
        std::fs::remove_dir_all(&member.dir).map_err(|e| e.to_string())?;
        copy_dir(copy, &member.dir)?;
    }
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);

    // Together again, the second killed at random moments as it catches up.
    first.start(exe, args).await?;
    let mut rng = Rng::new(seed);
    let mut mid_sync = 0;
    for kill in 0..kills {
        second.start(exe, args).await?;
        // In its first half: most land before the merge.
        tokio::time::sleep(Duration::from_millis(rng.below(window_ms / 2 + 1))).await;
        second.kill();
        second.reap().await;
        second.start(exe, args).await?;
        let after = format!("after kill {kill}");
        let head = second.ask(&format!("head {VAULT}")).await?;
        if head == own_head {
            mid_sync += 1;
        }
        second
            .ask(&format!("verify {VAULT}"))
            .await
            .map_err(|e| format!("{after}: history does not verify: {e}"))?;
        let now = second.history().await?;
        if let Some(lost) = seconds.difference(&now).next() {
            return Err(format!("{after}: version {lost} lost"));
        }
        second.stop().await?;
    }
    let started = Instant::now();
    second.start(exe, args).await?;
    same_head(first, second).await?;
    let last_catch_up = started.elapsed();
    for member in members {
        let history = member.history().await?;
        if let Some(lost) = firsts.union(&seconds).find(|v| !history.contains(*v)) {
            return Err(format!("node {}: version {lost} lost", member.index));
        }
        member.ask(&format!("verify {VAULT}")).await?;
    }
    if first.ask(&format!("list {VAULT}")).await? != second.ask(&format!("list {VAULT}")).await? {
        return Err("the two list different secrets".into());
    }
    for member in members {
        member.stop().await?;
    }
    Ok(SyncKills {
        kills,
        mid_sync,
        lacked,
        last_catch_up,
        window,
    })
}
