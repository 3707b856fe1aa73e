//! Unlock cost under each KDF profile, and AEAD throughput on 1 MiB.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polykey_keys::{KdfParams, RootKeypair, SymmetricKey, WrappedRootKey};

fn unlock(c: &mut Criterion) {
    let keys = RootKeypair::from_seed(&[7; 32]);
    let password = "correct horse battery staple".into();
    let mut group = c.benchmark_group("unlock");
    group.sample_size(10);
    for (name, params) in [
        ("default_profile", KdfParams::default_profile()),
        ("test_profile", KdfParams::fast_for_tests()),
    ] {
        // A release build (as benches are) refuses the test profile: it is
        // below the floor there.
        if params.check(polykey_keys::kdf::FLOOR).is_err() {
            continue;
        }
        let wrapped = WrappedRootKey::wrap(&keys, &password, params).expect("wrap");
        group.bench_function(name, |b| {
            b.iter(|| wrapped.unwrap(&password).expect("unwrap"));
        });
    }
    group.finish();
}

fn seal_open(c: &mut Criterion) {
    let key = SymmetricKey::generate();
    let data = vec![0x5au8; 1024 * 1024];
    let sealed = key.seal(&data, b"bench");
    let mut group = c.benchmark_group("aead_1mib");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.bench_function("seal", |b| b.iter(|| key.seal(&data, b"bench")));
    group.bench_function("open", |b| {
        b.iter(|| key.open(&sealed, b"bench").expect("open"))
    });
    group.finish();
}

criterion_group!(benches, unlock, seal_open);
criterion_main!(benches);
