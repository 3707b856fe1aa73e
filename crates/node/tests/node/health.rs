//! Password health over real vaults: weak, reused and old passwords are
//! listed (never the passwords), read-only shares left out, and a fix
//! takes a login off the list.

use polykey_node::api::{HealthItemDto, ItemDto, SecretDto};

use crate::open_with_vault;

const STRONG_A: &str = "v9#Lq2!mZ7@pW4$tR8";
const STRONG_B: &str = "K3&xN6*yB1^hJ5%cF0";

fn login(path: &str, password: &str) -> SecretDto {
    SecretDto {
        path: path.into(),
        title: path.to_uppercase(),
        item: ItemDto::Login {
            username: "ada".into(),
            password: password.into(),
            urls: Vec::new(),
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

fn listed(report: &[HealthItemDto]) -> Vec<(String, bool, u32, bool)> {
    report
        .iter()
        .map(|i| (format!("{}:{}", i.vault, i.path), i.weak, i.reused, i.old))
        .collect()
}

#[tokio::test]
async fn weak_reused_and_old_passwords_are_listed_and_a_fix_clears_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    node.create_vault("Work".into()).await.unwrap();
    for (vault, secret) in [
        ("Personal", login("forum", "hunter2")),
        ("Personal", login("bank", STRONG_A)),
        ("Work", login("vpn", STRONG_A)),
        ("Work", login("wiki", STRONG_B)),
        ("Personal", login("empty", "")),
    ] {
        node.save_secret(vault.into(), secret, true).await.unwrap();
    }
    node.write_secret(
        "Personal".into(),
        "note".into(),
        zeroize::Zeroizing::new(b"hunter2".to_vec()),
    )
    .await
    .unwrap();

    let report = node.password_health().await.unwrap();
    assert_eq!(
        listed(&report),
        [
            ("Personal:forum".to_owned(), true, 0, false),
            ("Personal:bank".to_owned(), false, 1, false),
            ("Work:vpn".to_owned(), false, 1, false),
        ],
        "weakest first; the unique strong one, the empty one and plain text left out"
    );
    assert!(report.iter().all(|i| i.changed > 0 && i.username == "ada"));
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains("hunter2") && !json.contains(STRONG_A),
        "{json}"
    );

    // A year and a bit later, nothing having changed: every login is old.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let later = now + 400 * 86_400;
    let aged = node.password_health_at(later).await.unwrap();
    assert_eq!(aged.len(), 4, "{:?}", listed(&aged));
    assert!(aged.iter().all(|i| i.old && i.changed == 0));

    // Fixed: a new password for the bank login; the VPN's is unique now.
    node.save_secret("Personal".into(), login("bank", STRONG_B), false)
        .await
        .unwrap();
    node.save_secret("Work".into(), login("wiki", "Zq8!rT5@wE2#yU7$iO"), false)
        .await
        .unwrap();
    let report = node.password_health().await.unwrap();
    assert_eq!(
        listed(&report),
        [("Personal:forum".to_owned(), true, 0, false)]
    );
}

/// A Pwned Passwords range API on loopback: answers each `/range/PREFIX`
/// with the suffixes it knows under that prefix plus padding, and keeps
/// every request it was sent, whole.
struct RangeServer {
    url: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RangeServer {
    async fn start(breached: &'static [(&'static str, u64)]) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/range/", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            // At most 100 requests, then it stops by itself.
            for _ in 0..100 {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") && request.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let prefix = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/range/").or(p.strip_prefix('/')))
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push(text);
                let mut body = String::new();
                for (password, count) in breached {
                    let hash = sha1_hex(password);
                    if hash.starts_with(&prefix) {
                        body.push_str(&format!("{}:{count}\r\n", &hash[5..]));
                    }
                }
                // Padding, as the real service sends with Add-Padding.
                body.push_str("0000000000000000000000000000000000A:0\r\nnot a line\r\n");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn sha1_hex(password: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[tokio::test]
async fn the_breach_check_is_opt_in_and_sends_only_five_characters_of_each_hash() {
    let dir = tempfile::tempdir().unwrap();
    let node = open_with_vault(dir.path(), "Personal").await;
    for secret in [
        login("forum", "password123"),
        login("shop", "password123"),
        login("bank", STRONG_A),
        login("mail", "letmein"),
    ] {
        node.save_secret("Personal".into(), secret, true)
            .await
            .unwrap();
    }
    let server = RangeServer::start(&[("password123", 251_682), ("letmein", 9)]).await;

    // Off until turned on: nothing is asked.
    let err = node.breached_logins().await.unwrap_err();
    assert!(err.to_string().contains("turn it on"), "{err}");
    assert!(server.requests.lock().unwrap().is_empty());

    // Only https, or http to this computer.
    let mut prefs = node.preferences();
    prefs.breach_check = true;
    for bad in ["http://example.com/range/", "ftp://127.0.0.1/", "not a url"] {
        prefs.breach_endpoint = bad.into();
        assert!(node.set_preferences(prefs.clone()).await.is_err(), "{bad}");
    }
    prefs.breach_endpoint = server.url.clone();
    node.set_preferences(prefs).await.unwrap();

    let found = node.breached_logins().await.unwrap();
    let listed: Vec<(&str, u64)> = found
        .iter()
        .map(|i| (i.path.as_str(), i.breached))
        .collect();
    assert_eq!(
        listed,
        [("forum", 251_682), ("shop", 251_682), ("mail", 9)],
        "most seen first; the strong one not listed"
    );

    // One request per distinct prefix, each carrying 5 hex characters and
    // nothing else of a password or its hash.
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for request in &requests {
        let path = request.split_whitespace().nth(1).unwrap();
        let prefix = path.strip_prefix("/range/").unwrap();
        assert_eq!(prefix.len(), 5, "{path}");
        assert!(prefix.bytes().all(|b| b.is_ascii_hexdigit()), "{path}");
        assert!(
            request.to_ascii_lowercase().contains("add-padding: true"),
            "{request}"
        );
        for password in ["password123", "letmein", STRONG_A] {
            let hash = sha1_hex(password);
            assert!(!request.contains(password), "{request}");
            assert!(!request.to_uppercase().contains(&hash[5..]), "{request}");
        }
    }

    // An endpoint without a trailing `/`, or without a path: the prefix
    // is the path's last part, never glued to the host name or port
    // (`http://localhost` + prefix would name another host).
    let root = server.url.trim_end_matches("/range/").to_owned();
    for (endpoint, path) in [(root.clone(), "/"), (format!("{root}/range"), "/range/")] {
        let mut prefs = node.preferences();
        prefs.breach_endpoint = endpoint.clone();
        node.set_preferences(prefs).await.unwrap();
        let asked = server.requests.lock().unwrap().len();
        let found = node.breached_logins().await.unwrap();
        assert_eq!(found.len(), 3, "{endpoint}");
        let requests = server.requests.lock().unwrap().clone();
        for request in &requests[asked..] {
            let target = request.split_whitespace().nth(1).unwrap();
            let prefix = target.strip_prefix(path).unwrap_or_default();
            assert!(
                prefix.len() == 5 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
                "{endpoint}: {target}"
            );
        }
    }
    for unchecked in [
        "http://localhost",
        "http://localhost:1/range",
        "https://api.pwnedpasswords.com/range",
    ] {
        let url = polykey_node::preferences::breach_range_url(unchecked, "ABCDE").unwrap();
        assert!(url.path().ends_with("/ABCDE"), "{unchecked}: {url}");
        assert_eq!(
            url.host_str(),
            reqwest::Url::parse(unchecked).unwrap().host_str(),
            "{unchecked}"
        );
    }
    assert!(polykey_node::preferences::breach_range_url("http://localhost/", "../x1").is_none());

    // The service gone: a clear error, no panic.
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let err = node.breached_logins().await.unwrap_err();
    assert!(err.to_string().contains("could not be reached"), "{err}");
}
