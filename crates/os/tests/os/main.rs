//! polykey-os through its public API, on the OS the tests run on (under
//! Wine for Windows: `CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine cargo
//! test --target x86_64-pc-windows-gnu -p polykey-os`).

mod fs;
#[cfg(windows)]
mod pipe;
