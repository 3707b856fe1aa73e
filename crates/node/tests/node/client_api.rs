//! The client API over its real socket: sessions end at every lock and
//! after an idle time, connections that have not logged in are kept small
//! and few, and the socket is private.

use std::path::Path;
use std::time::Duration;

use polykey_node::client_api::{
    ClientApiOptions, MAX_CONNECTIONS, MAX_UNAUTHENTICATED_CONNECTIONS, MAX_UNAUTHENTICATED_LINE,
    SESSION_IDLE, UNAUTHORISED,
};
use polykey_node::Node;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use crate::{open, PASSWORD};

/// A node created and served, and the switch that stops its server.
struct Served {
    node: Node,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<(), polykey_node::NodeError>>,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start(options: ClientApiOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path()).await;
        node.create(PASSWORD.into()).await.unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn({
            let node = node.clone();
            async move { node.serve_client_api_with(stopped, options).await }
        });
        while !node.socket_path().exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            node,
            stop,
            server,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Client {
        Client::connect(&self.node.socket_path()).await
    }

    async fn finish(self) {
        self.stop.send(true).unwrap();
        self.server.await.unwrap().unwrap();
    }
}

struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Client {
    async fn connect(path: &Path) -> Self {
        let (read, write) = UnixStream::connect(path).await.unwrap().into_split();
        Self {
            read: BufReader::new(read),
            write,
        }
    }

    async fn send(&mut self, request: &Value) {
        let mut line = serde_json::to_vec(request).unwrap();
        line.push(b'\n');
        self.write.write_all(&line).await.unwrap();
    }

    /// The next answer, or `None` at the end of the connection.
    async fn answer(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.read.read_line(&mut line))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        (n > 0).then(|| serde_json::from_str(&line).unwrap())
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
            .await;
        self.answer().await.expect("the connection stays open")
    }

    async fn log_in(&mut self) -> String {
        let answer = self
            .call("session.unlock", json!({ "password": PASSWORD }))
            .await;
        answer["result"]["token"].as_str().unwrap().to_owned()
    }

    async fn status(&mut self, token: &str) -> Value {
        self.call("status", json!({ "token": token })).await
    }
}

fn refused(answer: &Value) -> bool {
    answer.pointer("/error/data/code") == Some(&json!(UNAUTHORISED))
}

#[tokio::test]
async fn a_token_ends_at_every_lock_and_not_comes_back_after_unlock() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut client = served.connect().await;

    let token = client.log_in().await;
    assert_eq!(client.status(&token).await["result"]["state"], "unlocked");
    // Locked by the app (or a tray click) and unlocked again there.
    served.node.lock().await.unwrap();
    served.node.unlock(PASSWORD.into()).await.unwrap();
    let answer = client.status(&token).await;
    assert!(refused(&answer), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("log in again"), "{message}");

    // Auto-lock ends sessions too.
    let token = client.log_in().await;
    assert!(served.node.lock_if_idle(Duration::ZERO).await.unwrap());
    served.node.unlock(PASSWORD.into()).await.unwrap();
    assert!(refused(&client.status(&token).await));

    // Used while still locked: refused as well, and it stays refused.
    let token = client.log_in().await;
    served.node.lock().await.unwrap();
    assert!(refused(&client.status(&token).await));
    served.node.unlock(PASSWORD.into()).await.unwrap();
    assert!(refused(&client.status(&token).await));

    // Logging in again gives a working session.
    let token = client.log_in().await;
    assert_eq!(client.status(&token).await["result"]["state"], "unlocked");
    served.finish().await;
}

#[tokio::test]
async fn a_token_outlives_changes_that_are_not_locks() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    served.node.create_vault("notes".into()).await.unwrap();
    served
        .node
        .rename_vault("notes".into(), "journal".into())
        .await
        .unwrap();
    let answer = client.status(&token).await;
    assert_eq!(answer["result"]["state"], "unlocked", "{answer}");
    served.finish().await;
}

#[tokio::test]
async fn a_call_from_the_cli_counts_as_activity() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    let idle = Duration::from_millis(400);
    tokio::time::sleep(idle).await;
    assert!(client.status(&token).await.get("result").is_some());
    assert!(
        !served.node.lock_if_idle(idle).await.unwrap(),
        "the call just made keeps the node unlocked"
    );
    tokio::time::sleep(idle).await;
    assert!(served.node.lock_if_idle(idle).await.unwrap());
    served.finish().await;
}

#[tokio::test]
async fn a_token_ends_after_its_idle_time() {
    let idle = Duration::from_millis(600);
    let served = Served::start(ClientApiOptions {
        session_idle: idle,
        ..Default::default()
    })
    .await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    // Calls keep the session alive past its idle time in total.
    for _ in 0..3 {
        tokio::time::sleep(idle / 3).await;
        assert!(client.status(&token).await.get("result").is_some());
    }
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    let answer = client.status(&token).await;
    assert!(refused(&answer), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("idle") && message.contains("log in again"),
        "{message}"
    );
    // It does not come back, and the node itself stays unlocked.
    assert!(refused(&client.status(&token).await));
    let token = client.log_in().await;
    assert!(client.status(&token).await.get("result").is_some());
    served.finish().await;
}

#[tokio::test]
async fn a_token_ends_at_its_lifetime_however_much_it_is_used() {
    let lifetime = Duration::from_millis(800);
    let served = Served::start(ClientApiOptions {
        session_lifetime: lifetime,
        ..Default::default()
    })
    .await;
    let mut client = served.connect().await;
    let started = std::time::Instant::now();
    let token = client.log_in().await;
    // Used all along, it works until its lifetime and not after.
    let answer = loop {
        let answer = client.status(&token).await;
        if answer.get("result").is_none() {
            break answer;
        }
        assert!(started.elapsed() < lifetime * 3, "still served: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(started.elapsed() >= lifetime, "ended early: {answer}");
    assert!(refused(&answer), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limit") && message.contains("log in again"),
        "{message}"
    );
    // The node stays unlocked; a new login gets a new session.
    let token = client.log_in().await;
    assert!(client.status(&token).await.get("result").is_some());
    served.finish().await;
}

#[tokio::test]
async fn time_asleep_counts_towards_the_idle_time_and_the_auto_lock() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    // A laptop closed for longer than the idle time: the monotonic clock
    // stood still, the wall clock went on.
    served
        .node
        .pretend_slept(SESSION_IDLE + Duration::from_secs(60));
    let answer = client.status(&token).await;
    assert!(refused(&answer), "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("idle"));

    let mut client = served.connect().await;
    client.log_in().await;
    served.node.pretend_slept(Duration::from_secs(10 * 60));
    assert!(
        served
            .node
            .lock_if_idle(Duration::from_secs(5 * 60))
            .await
            .unwrap(),
        "ten minutes asleep lock a node that locks after five idle"
    );
    served.finish().await;
}

#[tokio::test]
async fn a_new_password_ends_every_session() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut copied = served.connect().await;
    let stolen = copied.log_in().await;
    let mut owner = served.connect().await;
    let token = owner.log_in().await;
    let answer = owner
        .call(
            "keys.password",
            json!({ "token": token, "password": PASSWORD, "newPassword": "a new and longer password" }),
        )
        .await;
    assert!(answer.get("result").is_some(), "{answer}");
    let answer = copied.status(&stolen).await;
    assert!(refused(&answer), "a token from before the change: {answer}");
    assert!(refused(&owner.status(&token).await));
    served.finish().await;
}

#[tokio::test]
async fn the_desktop_apps_server_is_not_stopped_by_a_client() {
    let served = Served::start(ClientApiOptions {
        stoppable: false,
        ..Default::default()
    })
    .await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    let answer = client.call("agent.stop", json!({ "token": token })).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("quit the app"), "{answer}");
    // Still served, to this client and to a new one.
    assert!(client.status(&token).await.get("result").is_some());
    let mut newcomer = served.connect().await;
    let token = newcomer.log_in().await;
    assert!(newcomer.status(&token).await.get("result").is_some());
    served.finish().await;
}

#[tokio::test]
async fn a_silent_connection_stays_while_its_token_is_used_on_another() {
    let idle = Duration::from_millis(600);
    let served = Served::start(ClientApiOptions {
        session_idle: idle,
        ..Default::default()
    })
    .await;
    // A long `secrets edit` holds one connection while a shell hook reads
    // secrets on others with the same token.
    let mut editing = served.connect().await;
    let token = editing.log_in().await;
    for _ in 0..8 {
        tokio::time::sleep(idle / 4).await;
        let mut hook = served.connect().await;
        assert!(hook.status(&token).await.get("result").is_some());
    }
    let answer = editing.status(&token).await;
    assert_eq!(answer["result"]["state"], "unlocked", "{answer}");
    served.finish().await;
}

/// A request line of `size` bytes asking for the status.
fn padded_status(token: &str, size: usize) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "status",
        "params": { "token": token, "pad": "x".repeat(size) }
    }))
    .unwrap();
    line.push(b'\n');
    line
}

#[tokio::test]
async fn a_long_line_before_login_is_refused_and_the_connection_closed() {
    let served = Served::start(ClientApiOptions::default()).await;
    let client = served.connect().await;
    let line = padded_status("", 100 * 1024);
    assert!(line.len() > MAX_UNAUTHENTICATED_LINE);
    // The server stops reading after the limit, so the write may fail.
    let Client { read, mut write } = client;
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&line).await;
        write
    });
    let mut read = BufReader::new(read.into_inner());
    let mut answer = String::new();
    read.read_line(&mut answer).await.unwrap();
    let answer: Value = serde_json::from_str(&answer).expect("an answer before the close");
    assert_eq!(answer["error"]["message"], "request too large", "{answer}");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection is closed");
    drop(writer.await.unwrap());

    // After login the larger limit applies on the same kind of line.
    let mut client = served.connect().await;
    let token = client.log_in().await;
    client
        .write
        .write_all(&padded_status(&token, 100 * 1024))
        .await
        .unwrap();
    let answer = client.answer().await.unwrap();
    assert_eq!(answer["result"]["state"], "unlocked", "{answer}");
    served.finish().await;
}

#[tokio::test]
async fn connections_before_login_are_bounded_and_logged_in_clients_still_served() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut logged_in = served.connect().await;
    let token = logged_in.log_in().await;

    let mut waiting = Vec::new();
    for _ in 0..MAX_UNAUTHENTICATED_CONNECTIONS {
        waiting.push(served.connect().await);
    }
    let mut one_more = served.connect().await;
    assert!(turned_away(&mut one_more).await);

    // Meanwhile the logged-in client is served.
    assert_eq!(
        logged_in.status(&token).await["result"]["state"],
        "unlocked"
    );

    // One waiting connection logs in: its place frees up for a newcomer.
    let first = waiting.first_mut().unwrap();
    first.log_in().await;
    let mut newcomer = served.connect().await;
    let answer = newcomer.status("").await;
    assert!(refused(&answer), "served, not turned away: {answer}");
    served.finish().await;
}

#[tokio::test]
async fn connections_that_never_log_in_are_closed_and_their_places_freed() {
    let within = Duration::from_millis(400);
    let served = Served::start(ClientApiOptions {
        login_within: within,
        ..Default::default()
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..MAX_UNAUTHENTICATED_CONNECTIONS {
        idle.push(served.connect().await);
    }
    assert!(turned_away(&mut served.connect().await).await);
    tokio::time::sleep(within + Duration::from_millis(300)).await;
    for client in &mut idle {
        assert!(client.answer().await.is_none(), "closed");
    }
    let mut newcomer = served.connect().await;
    let answer = newcomer.status("").await;
    assert!(refused(&answer), "served, not turned away: {answer}");
    let token = newcomer.log_in().await;
    // Logged in, it is not bound by the time to log in.
    tokio::time::sleep(within + Duration::from_millis(300)).await;
    assert!(newcomer.status(&token).await.get("result").is_some());
    served.finish().await;
}

#[tokio::test]
async fn clients_that_never_read_their_answers_lose_their_places_in_time() {
    let within = Duration::from_millis(400);
    let served = Served::start(ClientApiOptions {
        login_within: within,
        ..Default::default()
    })
    .await;
    // Each sends lines it never reads the answers to, until the server's
    // answers fill the socket and its writes wait.
    let mut flooders = Vec::new();
    for _ in 0..MAX_UNAUTHENTICATED_CONNECTIONS {
        let Client { read, mut write } = served.connect().await;
        flooders.push(tokio::spawn(async move {
            let lines = b"x\n".repeat(128 * 1024);
            let _ = write.write_all(&lines).await;
            (read, write)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(turned_away(&mut served.connect().await).await);
    let mut served_again = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut newcomer = served.connect().await;
        if !turned_away(&mut newcomer).await {
            served_again = true;
            break;
        }
    }
    assert!(
        served_again,
        "a place freed once their time to log in ran out"
    );
    for flooder in flooders {
        flooder.abort();
    }
    served.finish().await;
}

#[tokio::test]
async fn a_connection_whose_session_ended_must_log_in_again_in_time() {
    let within = Duration::from_millis(400);
    let served = Served::start(ClientApiOptions {
        login_within: within,
        ..Default::default()
    })
    .await;
    let mut client = served.connect().await;
    let token = client.log_in().await;
    served.node.lock().await.unwrap();
    served.node.unlock(PASSWORD.into()).await.unwrap();
    assert!(refused(&client.status(&token).await));
    // It waits as a connection that has not logged in: closed in time.
    tokio::time::sleep(within + Duration::from_millis(300)).await;
    assert!(client.answer().await.is_none(), "closed");
    served.finish().await;
}

/// Whether `client` was turned away: a "busy" answer or none, then the end.
async fn turned_away(client: &mut Client) -> bool {
    client
        .send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "status", "params": {} }))
        .await;
    let answer = client.answer().await;
    answer
        .as_ref()
        .is_none_or(|a| a.pointer("/error/data/code") == Some(&json!("busy")))
        && client.answer().await.is_none()
}

#[tokio::test]
async fn connections_in_all_are_bounded() {
    let served = Served::start(ClientApiOptions::default()).await;
    let mut open = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut client = served.connect().await;
        client.log_in().await;
        open.push(client);
    }
    let mut one_more = served.connect().await;
    assert!(turned_away(&mut one_more).await);
    // A place frees up when a connection closes.
    drop(open.pop());
    let mut retried = None;
    for _ in 0..100 {
        let mut client = served.connect().await;
        if !turned_away(&mut client).await {
            retried = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(retried.is_some(), "served once a place is free");
    served.finish().await;
}

#[tokio::test]
async fn the_socket_is_private() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let served = Served::start(ClientApiOptions::default()).await;
    let meta = std::fs::symlink_metadata(served.node.socket_path()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o600);
    // Nothing is left of the private directory it was bound in.
    let names: Vec<_> = std::fs::read_dir(served.node.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().contains(".sock.")),
        "{names:?}"
    );
    served.finish().await;
}
