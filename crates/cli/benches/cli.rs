//! The `polykey` command against a running agent, as a script calls it:
//! one `secrets cat`, and `secrets create` one call after another. Each
//! iteration is a whole process: start, connect, token, answer, exit.
//!
//! Benches run a release binary, which ignores `POLYKEY_FAST_KDF_FOR_TESTS`:
//! the setup (bootstrap, the first commands, `agent start`) pays the default
//! Argon2id each time it unlocks, but the measured commands go to the
//! running agent with a session token and derive no key.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

const PASSWORD: &str = "bench password 1";

fn polykey(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_polykey"));
    command
        .args(args)
        .env("PK_NODE_PATH", dir.join("node"))
        .env("POLYKEY_PASSWORD_FILE", dir.join("password"))
        .env("POLYKEY_LISTEN", "/ip4/127.0.0.1/tcp/0")
        .env("POLYKEY_MDNS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

fn ok(dir: &std::path::Path, args: &[&str]) {
    let status = polykey(dir, args).status().expect("run polykey");
    assert!(status.success(), "polykey {args:?} failed");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).expect("password");
    ok(
        dir.path(),
        &[
            "bootstrap",
            "--recovery-code-out",
            dir.path().join("code").to_str().unwrap_or("code"),
        ],
    );
    ok(dir.path(), &["vaults", "create", "bench"]);
    let mut writer = polykey(dir.path(), &["secrets", "write", "bench:API_KEY"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("write");
    writer
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"k-123")
        .expect("value");
    assert!(writer.wait().expect("wait").success());
    ok(dir.path(), &["agent", "start"]);

    let mut group = c.benchmark_group("polykey against a running agent");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("secrets cat", |b| {
        b.iter(|| ok(dir.path(), &["secrets", "cat", "bench:API_KEY"]));
    });
    let file = dir.path().join("value");
    std::fs::write(&file, b"value").expect("value file");
    let file = file.to_str().unwrap_or("value").to_owned();
    let mut n = 0u64;
    group.bench_function("secrets create, one call after another", |b| {
        b.iter(|| {
            n += 1;
            ok(
                dir.path(),
                &[
                    "secrets",
                    "create",
                    &file,
                    &format!("bench:many/secret-{n}"),
                ],
            );
        });
    });
    group.finish();
    ok(dir.path(), &["agent", "stop"]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
