//! The Polykey desktop app's entry point; everything lives in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
#![forbid(unsafe_code)]

fn main() {
    // Few malloc arenas: each keeps its own free memory, and the app's
    // work is not allocation-bound.
    polykey_os::memory::limit_arenas(2);
    // The unlocked node's keys and secrets never reach a crash dump.
    let _ = polykey_os::process::keep_out_of_core_dumps();
    if let Err(error) = polykey_desktop::run() {
        eprintln!("Polykey could not start: {error:#}");
        std::process::exit(1);
    }
}
