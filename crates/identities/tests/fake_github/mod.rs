//! A fake GitHub on 127.0.0.1: a small HTTP/1.1 server (one request per
//! connection) implementing the endpoints the provider uses, with GitHub's
//! documented JSON shapes: the OAuth device flow (`/login/device/code`,
//! `/login/oauth/access_token`), the REST API under `/api` (`/user`,
//! `/users/{login}`, `/users/{login}/gists`, `/gists`, `/search/users`) and
//! gists' raw files under `/raw`. It checks the headers GitHub requires and
//! records every request. Misbehaviours on demand: oversized answers and a
//! path that never answers.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const CLIENT_ID: &str = "Iv1.fakeclientid";
pub const DEVICE_CODE: &str = "3584d83530557fdd1f46af8289938c8ef79f9dc5";
pub const USER_CODE: &str = "WDJB-MJHT";
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;
/// The size of an oversized answer.
pub const HUGE: usize = 4 * 1024 * 1024;

/// One answer of the token endpoint, in order.
#[derive(Clone, Debug)]
pub enum Answer {
    Pending,
    SlowDown(u64),
    Denied,
    Expired,
    Token(String),
}

/// How an oversized answer is sent.
#[derive(Clone, Copy, Debug)]
pub enum Oversize {
    /// With its (large) Content-Length.
    Declared,
    /// Without a length: streamed until the connection closes.
    Streamed,
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub at: Instant,
}

#[derive(Clone, Debug)]
pub struct GistRec {
    pub id: String,
    pub owner: String,
    pub public: bool,
    pub files: BTreeMap<String, String>,
    /// Listed as every file's `raw_url` instead of this server's own.
    pub raw_url: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub base: String,
    /// token → login
    pub tokens: HashMap<String, String>,
    /// logins
    pub users: Vec<String>,
    pub gists: Vec<GistRec>,
    pub answers: VecDeque<Answer>,
    pub interval: u64,
    pub expires_in: u64,
    pub polls: Vec<Instant>,
    pub requests: Vec<Recorded>,
    /// path (without query) → how to send a huge answer
    pub oversize: HashMap<String, Oversize>,
    /// paths (without query, or a prefix ending in `*`) never answered
    pub hang: Vec<String>,
    /// `/search/users` answers 401 without a token (as a provider may).
    pub search_needs_token: bool,
    next_id: u64,
}

pub struct FakeGitHub {
    pub base: String,
    pub state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            base: base.clone(),
            interval: 1,
            expires_in: 900,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let state = shared.clone();
                conns.push(AbortOnDrop(tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                })));
                conns.retain(|c| !c.0.is_finished());
            }
        });
        Self { base, state, task }
    }

    pub fn add_user(&self, login: &str, token: &str) {
        let mut s = self.state.lock().unwrap();
        s.users.push(login.into());
        s.tokens.insert(token.into(), login.into());
    }

    pub fn add_gist(&self, owner: &str, public: bool, files: &[(&str, &str)]) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = format!("{:032x}", s.next_id);
        s.gists.push(GistRec {
            id: id.clone(),
            owner: owner.into(),
            public,
            files: files
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect(),
            raw_url: None,
        });
        id
    }

    /// Delete gist `id`: it is listed nowhere and its raw files are gone.
    pub fn delete_gist(&self, id: &str) {
        self.state.lock().unwrap().gists.retain(|g| g.id != id);
    }

    /// Move gist `id` under `owner`'s account, as it is (a copy of someone
    /// else's claim under another account).
    pub fn move_gist(&self, id: &str, owner: &str) {
        let mut s = self.state.lock().unwrap();
        let g = s.gists.iter_mut().find(|g| g.id == id).unwrap();
        g.owner = owner.into();
    }

    /// The ids of `owner`'s gists, oldest first.
    pub fn gists_of(&self, owner: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.gists
            .iter()
            .filter(|g| g.owner == owner)
            .map(|g| g.id.clone())
            .collect()
    }

    /// List gist `id`'s files with `raw_url` (a hostile listing).
    pub fn set_raw_url(&self, id: &str, raw_url: &str) {
        let mut s = self.state.lock().unwrap();
        let g = s.gists.iter_mut().find(|g| g.id == id).unwrap();
        g.raw_url = Some(raw_url.into());
    }

    pub fn script(&self, answers: Vec<Answer>) {
        self.state.lock().unwrap().answers = answers.into();
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

struct AbortOnDrop(JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return None;
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn json_reply(status: u16, value: Value) -> Reply {
    Reply {
        status,
        content_type: "application/json; charset=utf-8",
        body: serde_json::to_vec(&value).unwrap(),
    }
}

fn message(status: u16, text: &str) -> Reply {
    json_reply(
        status,
        json!({"message": text, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        _ => "Other",
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut stream).await else {
        return Ok(());
    };
    let (hang, oversize) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            at: Instant::now(),
        });
        let hang = s.hang.iter().any(|h| match h.strip_suffix('*') {
            Some(prefix) => req.path.starts_with(prefix),
            None => *h == req.path,
        });
        (hang, s.oversize.get(&req.path).copied())
    };
    if hang {
        // Hold the connection and never answer.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    }
    if let Some(how) = oversize {
        let head = match how {
            Oversize::Declared => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\nConnection: close\r\n\r\n"
            ),
            Oversize::Streamed => {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                    .to_owned()
            }
        };
        stream.write_all(head.as_bytes()).await?;
        let block = vec![b' '; 64 * 1024];
        for _ in 0..HUGE / block.len() {
            // The client hangs up once it has seen enough.
            stream.write_all(&block).await?;
        }
        return stream.shutdown().await;
    }
    let reply = route(&req, &state);
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&reply.body).await?;
    stream.shutdown().await
}

fn user_json(base: &str, login: &str, id: usize) -> Value {
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("{base}/avatars/{login}"),
        "url": format!("{base}/api/users/{login}"),
        "html_url": format!("{base}/{login}"),
        "type": "User",
        "site_admin": false,
        "name": format!("{login} (test)"),
        "public_gists": 1,
    })
}

fn gist_json(base: &str, g: &GistRec, with_content: bool, owner_id: usize) -> Value {
    let files: serde_json::Map<String, Value> = g
        .files
        .iter()
        .map(|(name, content)| {
            let mut f = json!({
                "filename": name,
                "type": "text/plain",
                "language": "Text",
                "raw_url": g.raw_url.clone().unwrap_or_else(|| {
                    format!("{base}/raw/{}/{}/raw/{}", g.owner, g.id, name)
                }),
                "size": content.len(),
            });
            if with_content {
                f["truncated"] = json!(false);
                f["content"] = json!(content);
            }
            (name.clone(), f)
        })
        .collect();
    json!({
        "url": format!("{base}/api/gists/{}", g.id),
        "id": g.id,
        "node_id": format!("G_{}", g.id),
        "git_pull_url": format!("{base}/gist/{}.git", g.id),
        "html_url": format!("{base}/gist/{}", g.id),
        "files": files,
        "public": g.public,
        "created_at": "2026-11-30T10:00:00Z",
        "updated_at": "2026-11-30T10:00:00Z",
        "description": "",
        "comments": 0,
        "user": null,
        "owner": {"login": g.owner, "id": owner_id, "type": "User",
                  "html_url": format!("{base}/{}", g.owner)},
        "truncated": false,
    })
}

fn route(req: &Request, state: &Arc<Mutex<State>>) -> Reply {
    let mut s = state.lock().unwrap();
    let base = s.base.clone();
    let path = req.path.as_str();
    let header = |name: &str| req.headers.get(name).map(String::as_str);

    // The OAuth device flow: form in, JSON out (asked for by Accept).
    if path.starts_with("/login/") {
        if req.method != "POST" || header("accept") != Some("application/json") {
            return message(400, "bad OAuth request");
        }
        let fields = form(std::str::from_utf8(&req.body).unwrap_or(""));
        if fields.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
            return json_reply(
                200,
                json!({"error": "incorrect_client_credentials",
                "error_description": "The client_id is not valid."}),
            );
        }
        return match path {
            "/login/device/code" => json_reply(
                200,
                json!({
                    "device_code": DEVICE_CODE,
                    "user_code": USER_CODE,
                    "verification_uri": format!("{base}/login/device"),
                    "expires_in": s.expires_in,
                    "interval": s.interval,
                }),
            ),
            "/login/oauth/access_token" => {
                if fields.get("device_code").map(String::as_str) != Some(DEVICE_CODE) {
                    return json_reply(200, json!({"error": "incorrect_device_code"}));
                }
                if fields.get("grant_type").map(String::as_str)
                    != Some("urn:ietf:params:oauth:grant-type:device_code")
                {
                    return json_reply(200, json!({"error": "unsupported_grant_type"}));
                }
                s.polls.push(Instant::now());
                let error = |code: &str| {
                    json!({"error": code, "error_description": format!("{code} (fake)"),
                           "error_uri": "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"})
                };
                match s.answers.pop_front().unwrap_or(Answer::Pending) {
                    Answer::Pending => json_reply(200, error("authorization_pending")),
                    Answer::SlowDown(interval) => {
                        let mut e = error("slow_down");
                        e["interval"] = json!(interval);
                        json_reply(200, e)
                    }
                    Answer::Denied => json_reply(200, error("access_denied")),
                    Answer::Expired => json_reply(200, error("expired_token")),
                    Answer::Token(token) => json_reply(
                        200,
                        json!({"access_token": token, "token_type": "bearer", "scope": "gist,read:user"}),
                    ),
                }
            }
            _ => message(404, "Not Found"),
        };
    }

    // Raw gist files: plain text, no authentication.
    if let Some(rest) = path.strip_prefix("/raw/") {
        let parts: Vec<&str> = rest.split('/').collect();
        if let [owner, id, "raw", name] = parts[..] {
            if let Some(g) = s.gists.iter().find(|g| g.id == id && g.owner == owner) {
                if let Some(content) = g.files.get(name) {
                    return Reply {
                        status: 200,
                        content_type: "text/plain; charset=utf-8",
                        body: content.clone().into_bytes(),
                    };
                }
            }
        }
        return Reply {
            status: 404,
            content_type: "text/plain",
            body: b"404: Not Found".to_vec(),
        };
    }

    let Some(api) = path.strip_prefix("/api") else {
        return message(404, "Not Found");
    };
    // GitHub refuses requests without a User-Agent; this fake also insists
    // on the documented media type and API version.
    if header("user-agent").is_none_or(str::is_empty) {
        return message(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header");
    }
    if header("accept") != Some("application/vnd.github+json")
        || header("x-github-api-version") != Some("2022-11-28")
    {
        return message(400, "missing GitHub API headers");
    }
    let authed: Option<String> = match header("authorization") {
        Some(value) => match value.strip_prefix("Bearer ") {
            Some(token) => match s.tokens.get(token) {
                Some(login) => Some(login.clone()),
                None => return message(401, "Bad credentials"),
            },
            None => return message(401, "Bad credentials"),
        },
        None => None,
    };
    let user_index =
        |s: &State, login: &str| s.users.iter().position(|u| u.eq_ignore_ascii_case(login));
    let segments: Vec<&str> = api.trim_start_matches('/').split('/').collect();
    match (req.method.as_str(), &segments[..]) {
        ("GET", ["user"]) => match authed {
            Some(login) => {
                let id = user_index(&s, &login).unwrap_or(0) + 1;
                json_reply(200, user_json(&base, &login, id))
            }
            None => message(401, "Requires authentication"),
        },
        ("GET", ["users", login]) => match user_index(&s, login) {
            Some(i) => json_reply(200, user_json(&base, &s.users[i], i + 1)),
            None => message(404, "Not Found"),
        },
        ("GET", ["users", login, "gists"]) => {
            let Some(i) = user_index(&s, login) else {
                return message(404, "Not Found");
            };
            let owner = s.users[i].clone();
            let per_page: usize = form(&req.query)
                .get("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30)
                .min(100);
            // Newest first, public ones only, as GitHub lists them.
            let gists: Vec<Value> = s
                .gists
                .iter()
                .rev()
                .filter(|g| g.owner == owner && g.public)
                .take(per_page)
                .map(|g| gist_json(&base, g, false, i + 1))
                .collect();
            json_reply(200, Value::Array(gists))
        }
        ("POST", ["gists"]) => {
            let Some(login) = authed else {
                return message(401, "Requires authentication");
            };
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                return message(400, "Problems parsing JSON");
            };
            let Some(files) = body["files"].as_object() else {
                return message(422, "Validation Failed");
            };
            let files: Vec<(String, String)> = files
                .iter()
                .filter_map(|(n, f)| Some((n.clone(), f["content"].as_str()?.to_owned())))
                .collect();
            s.next_id += 1;
            let g = GistRec {
                id: format!("{:032x}", s.next_id),
                owner: login.clone(),
                public: body["public"].as_bool().unwrap_or(false),
                files: files.into_iter().collect(),
                raw_url: None,
            };
            let id = user_index(&s, &login).unwrap_or(0) + 1;
            let reply = gist_json(&base, &g, true, id);
            s.gists.push(g);
            json_reply(201, reply)
        }
        ("GET", ["search", "users"]) => {
            if s.search_needs_token && authed.is_none() {
                return message(401, "Requires authentication");
            }
            let q = form(&req.query).get("q").cloned().unwrap_or_default();
            let term = q.trim_end_matches(" in:login").to_ascii_lowercase();
            let items: Vec<Value> = s
                .users
                .iter()
                .enumerate()
                .filter(|(_, u)| u.to_ascii_lowercase().contains(&term))
                .map(|(i, u)| {
                    let mut v = user_json(&base, u, i + 1);
                    v["score"] = json!(1.0);
                    v
                })
                .collect();
            json_reply(
                200,
                json!({"total_count": items.len(), "incomplete_results": false, "items": items}),
            )
        }
        _ => message(404, "Not Found"),
    }
}
