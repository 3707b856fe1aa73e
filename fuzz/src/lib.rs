//! libFuzzer targets for every decoder input from outside reaches; see
//! `targets.rs` and `scripts/fuzz.sh`.

mod targets;

pub use targets::*;
