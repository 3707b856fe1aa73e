//! Desktop figures, measured on the real app under Xvfb through WebDriver:
//! cold start to the unlock screen, unlock (with the real Argon2id cost),
//! whole-app memory (and each process's) after opening a vault of 1,000
//! secrets and after searching one of 10,000, and search latency over
//! 10,000 secrets (keystroke to the updated list on screen).
//!
//! ```sh
//! cargo build --release -p polykey-desktop
//! POLYKEY_DESKTOP_BIN=target/release/polykey-desktop cargo bench -p polykey-tests --bench desktop
//! ```
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use polykey_node::api::{ItemDto, SecretDto};
use polykey_node::{Node, NodeOptions};
use polykey_tests::gui::{App, Driver};

const PASSWORD: &str = "measure-desktop-password-1";

fn login(i: usize) -> SecretDto {
    SecretDto {
        path: format!("group{:03}/site-{i:05}", i / 100),
        title: format!("Site {i:05}"),
        item: ItemDto::Login {
            username: format!("user-{i:05}@example.org"),
            password: format!("password-{i:05}-Xq!"),
            urls: vec![format!("https://site-{i:05}.example.org/login")],
            totp: None,
            notes: String::new(),
        },
        fields: Vec::new(),
        attachments: Vec::new(),
    }
}

/// A node with the real KDF, a vault of 1,000 logins and one of 10,000.
async fn prepare(dir: &Path) {
    let node = Node::open(dir, NodeOptions::default()).await.unwrap();
    node.create(PASSWORD.into()).await.unwrap();
    for (vault, count) in [("A thousand", 1_000), ("Ten thousand", 10_000)] {
        node.create_vault(vault.into()).await.unwrap();
        let all: Vec<SecretDto> = (0..count).map(login).collect();
        for chunk in all.chunks(1_000) {
            node.save_secrets(vault.into(), chunk.to_vec())
                .await
                .unwrap();
        }
    }
    node.lock().await.unwrap();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The app's process (found by its node directory) and its descendants
/// (WebKit's web and network processes).
fn app_processes(node_dir: &Path) -> Vec<u32> {
    let needle = format!("PK_NODE_PATH={}", node_dir.display());
    let mut parents = Vec::new();
    let mut roots = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(") ")
            .next()
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if exe.ends_with("polykey-desktop")
            && environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
        {
            roots.push(pid);
        }
    }
    let mut all = roots.clone();
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    all
}

/// Each process's name with its RSS and PSS in MiB.
fn breakdown(pids: &[u32]) -> String {
    pids.iter()
        .map(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let (rss, pss) = memory(&[*pid]);
            let rollup =
                std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            let anon = rollup
                .lines()
                .find(|l| l.starts_with("Anonymous:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0;
            format!("{} {rss:.0}/{pss:.0} (anonymous {anon:.0})", name.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// When the process started, in milliseconds since the Unix epoch (to the
/// kernel's 10 ms clock tick).
fn process_started_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ticks: f64 = stat
        .rsplit(") ")
        .next()
        .and_then(|rest| rest.split(' ').nth(19))
        .and_then(|t| t.parse().ok())
        .unwrap();
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // CLK_TCK is 100 on Linux.
    (now - (uptime - ticks / 100.0)) * 1000.0
}

/// (RSS, PSS) in MiB summed over the processes.
fn memory(pids: &[u32]) -> (f64, f64) {
    let field = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    pids.iter().fold((0.0, 0.0), |(rss, pss), pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        (rss + field(&status, "VmRSS:"), pss + field(&rollup, "Pss:"))
    })
}

/// Milliseconds from clicking the vault to its list drawn (the "Showing
/// 200 of N" line with its count).
async fn open_vault(app: &App, name: &str, count: usize) -> f64 {
    let script = r#"
        const [name, count, done] = arguments;
        const start = performance.now();
        [...document.querySelectorAll('[data-testid=vault-item]')].find(b => b.textContent.trim() === name).click();
        const check = () => {
            const more = document.querySelector('[data-testid=more-results]');
            if (more && more.textContent.includes(`of ${count}`)) done(performance.now() - start);
            else requestAnimationFrame(check);
        };
        check();
    "#;
    app.execute_async(script, vec![name.into(), count.into()])
        .await
        .as_f64()
        .unwrap()
}

/// Milliseconds from a keystroke's input event to the list repainted.
async fn search_latency(app: &App, query: &str) -> f64 {
    let script = r#"
        const [query, done] = arguments;
        const input = document.querySelector('[data-testid=search]');
        const start = performance.now();
        input.value = query;
        input.dispatchEvent(new Event('input', { bubbles: true }));
        requestAnimationFrame(() => setTimeout(() => done(performance.now() - start), 0));
    "#;
    app.execute_async(script, vec![query.into()])
        .await
        .as_f64()
        .unwrap()
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("node");
    let started = Instant::now();
    prepare(&node_dir).await;
    println!(
        "prepared 11,000 secrets in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let driver = Driver::start(&node_dir).await;

    // Process start (from /proc) to the unlock screen in the page (the
    // page's clock, polled every frame): no WebDriver polling in between.
    let shown_script = r#"
        const [done] = arguments;
        const check = () => document.querySelector('[data-testid=unlock-password]')
            ? done([Date.now(), performance.timeOrigin]) : requestAnimationFrame(check);
        check();
    "#;
    let mut cold = Vec::new();
    let mut page = Vec::new();
    let mut session = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let app = driver.launch().await;
        let times = app.execute_async(shown_script, vec![]).await;
        let shown = times[0].as_f64().unwrap();
        let navigation = times[1].as_f64().unwrap();
        session.push(started.elapsed().as_secs_f64() * 1000.0);
        let pid = app_processes(&node_dir)[0];
        let process = process_started_ms(pid);
        cold.push(shown - process);
        page.push(navigation - process);
        app.quit().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "cold start, process start to the unlock screen: median {:.0} ms, runs {:?} (page navigation began at {:.0} ms; with WebDriver's session set-up: median {:.0} ms)",
        median(cold.clone()),
        cold.iter().map(|c| c.round()).collect::<Vec<_>>(),
        median(page),
        median(session)
    );

    let app = driver.launch().await;
    app.type_into("unlock-password", PASSWORD).await;
    let started = Instant::now();
    app.click("unlock-submit").await;
    app.find("vault-item").await;
    println!(
        "unlock with the default Argon2id (64 MiB, t=3) to the main window: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // The first vault ("A thousand") opens by itself after unlocking.
    app.find("more-results").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = app_processes(&node_dir);
    let (rss, pss) = memory(&pids);
    println!(
        "vault of 1,000 open; whole app ({} processes): RSS {rss:.0} MiB, PSS {pss:.0} MiB [name RSS/PSS in MiB: {}]",
        pids.len(),
        breakdown(&pids)
    );

    let opened = open_vault(&app, "Ten thousand", 10_000).await;
    println!("vault of 10,000 opened (list of entries loaded and drawn) in {opened:.0} ms");
    let queries = [
        "s",
        "si",
        "site 07",
        "user-0042",
        "example.org/login 9",
        "no-such-thing",
        "",
    ];
    let mut latencies = Vec::new();
    for _ in 0..5 {
        for query in queries {
            latencies.push(search_latency(&app, query).await);
        }
    }
    let max = latencies.iter().copied().fold(0.0, f64::max);
    println!(
        "search over 10,000 secrets, keystroke to repainted list: median {:.1} ms, max {max:.1} ms ({} searches)",
        median(latencies.clone()),
        latencies.len()
    );
    // Settled, as the app is between uses (it gives free memory back
    // after two quiet seconds).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pids = app_processes(&node_dir);
    let (rss, pss) = memory(&pids);
    println!(
        "after the 10,000 vault: RSS {rss:.0} MiB, PSS {pss:.0} MiB [name RSS/PSS in MiB: {}]",
        breakdown(&pids)
    );
    app.quit().await;
}
