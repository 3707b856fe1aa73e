//! The local client API's named pipe on Windows.

use std::io::{self, BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use polykey_os::pipe::{connect_client, create_server, current_user_sid, PIPE_BUSY_TIMEOUT};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// A name no other test (nor another run) uses.
fn unique_name(what: &str) -> String {
    format!(r"\\.\pipe\polykey-os-test-{what}-{}", std::process::id())
}

async fn connect(name: &str) -> io::Result<std::fs::File> {
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || connect_client(&name))
        .await
        .expect("join")
}

#[test]
fn current_user_sid_is_a_string_sid() {
    let sid = current_user_sid().expect("sid");
    assert!(sid.starts_with("S-1-5-"), "{sid}");
    assert!(
        sid[2..].split('-').all(|part| part.parse::<u64>().is_ok()),
        "{sid}"
    );
}

#[tokio::test]
async fn a_first_server_refuses_a_second_first_server_of_the_same_name() {
    let name = unique_name("first");
    let _server = create_server(&name, true).expect("first server");
    let second = create_server(&name, true);
    if let (Ok(_), Some(wine)) = (&second, polykey_os::wine::version()) {
        // Wine's CreateNamedPipeW ignores FILE_FLAG_FIRST_PIPE_INSTANCE.
        eprintln!("not checked under Wine {wine}: FILE_FLAG_FIRST_PIPE_INSTANCE is ignored");
        return;
    }
    let e = second.expect_err("the name is taken");
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    // Another instance of our own server is fine.
    create_server(&name, false).expect("second instance");
}

#[tokio::test]
async fn a_client_exchanges_a_line_with_our_server() {
    let name = unique_name("line");
    let server = create_server(&name, true).expect("server");
    let serve = tokio::spawn(async move {
        server.connect().await.expect("accept");
        let mut server = tokio::io::BufReader::new(server);
        let mut line = String::new();
        server.read_line(&mut line).await.expect("read request");
        server
            .get_mut()
            .write_all(format!("echo {line}").as_bytes())
            .await
            .expect("write answer");
        line
    });
    let client = connect(&name).await.expect("connect to our own pipe");
    let answer = tokio::task::spawn_blocking(move || {
        let mut client = client;
        client.write_all(b"ping\n").expect("write");
        let mut answer = String::new();
        BufReader::new(client)
            .read_line(&mut answer)
            .expect("read answer");
        answer
    })
    .await
    .expect("join");
    assert_eq!(serve.await.expect("server task"), "ping\n");
    assert_eq!(answer, "echo ping\n");
}

#[tokio::test]
async fn connecting_to_a_name_nobody_serves_fails_clearly() {
    let name = unique_name("nobody");
    let e = connect(&name).await.expect_err("nobody serves it");
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let message = e.to_string();
    assert!(message.contains(&name), "{message}");
    assert!(message.contains("nothing serves"), "{message}");
}

#[tokio::test]
async fn a_busy_pipe_is_given_up_on_after_the_bounded_wait() {
    let name = unique_name("busy");
    let server = create_server(&name, true).expect("server");
    let accepted = tokio::spawn(async move {
        server.connect().await.expect("accept");
        server
    });
    let _first = connect(&name).await.expect("first client");
    let _server = accepted.await.expect("server task");
    // The only instance is taken and no new one is made.
    let started = Instant::now();
    let e = connect(&name).await.expect_err("busy");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(
        started.elapsed() >= PIPE_BUSY_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
    assert!(started.elapsed() < PIPE_BUSY_TIMEOUT + Duration::from_secs(5));
}

#[tokio::test]
async fn a_name_that_is_not_a_local_pipe_is_refused() {
    let e = create_server(r"C:\not-a-pipe", true).expect_err("not a pipe");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    let e = connect(r"\\server\pipe\remote").await.expect_err("remote");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
}
