//! The fuzz targets on the stable toolchain, in every test run: each
//! replays its committed seed corpus (`fuzz/corpus/TARGET/`, where
//! `scripts/fuzz.sh` also keeps what libFuzzer found) and then random
//! mutations of it (flips, cuts, insertions, splices) for a few seconds
//! (`POLYKEY_FUZZ_SMOKE_SECONDS`, 2 by default). Not coverage-guided, so no
//! substitute for the libFuzzer runs; it catches a decoder that panics on
//! what those runs already found, and on near misses of its seeds.
#![allow(clippy::unwrap_used)]

#[path = "../fuzz/src/targets.rs"]
mod targets;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    seeds.push(Vec::new());
    seeds
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input`, with `other` for splices.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !out.is_empty() => {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let at = rng.below(out.len());
                out[at] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b',', b'\n'][rng.below(8)];
            }
            2 => out.truncate(rng.below(out.len() + 1)),
            3 => {
                let at = rng.below(out.len() + 1);
                let len = rng.below(16);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            _ => {
                let at = rng.below(out.len() + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

#[test]
fn every_fuzz_target_survives_its_corpus_and_mutations_of_it() {
    let seconds: u64 = std::env::var("POLYKEY_FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("fuzz smoke seed {seed}");
    // Every panic counts, as under libFuzzer (whose hook aborts on it):
    // one a decoder catches and turns into an error is still a finding.
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        report(info);
    }));
    let survives = |target: &targets::Target, input: &[u8]| {
        let before = PANICS.load(Ordering::SeqCst);
        std::panic::catch_unwind(|| target(input)).is_ok()
            && PANICS.load(Ordering::SeqCst) == before
    };
    for (name, target) in targets::TARGETS {
        let seeds = corpus(name);
        for input in &seeds {
            assert!(
                survives(target, input),
                "{name} panicked on a seed of its corpus"
            );
        }
        let mut rng = Rng(seed);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut runs = 0u64;
        while Instant::now() < deadline {
            let input = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            let mutated = mutate(&mut rng, input, other);
            if !survives(target, &mutated) {
                let path = std::env::temp_dir().join(format!("polykey-fuzz-{name}-{seed}"));
                std::fs::write(&path, &mutated).unwrap();
                panic!("{name} panicked on the input saved at {}", path.display());
            }
            runs += 1;
        }
        eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
    }
}
