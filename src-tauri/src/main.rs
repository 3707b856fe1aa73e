//! The Polykey desktop app's entry point; everything lives in the library.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]
#![forbid(unsafe_code)]

fn main() {
    if let Err(error) = polykey_desktop::run() {
        eprintln!("Polykey could not start: {error:#}");
        std::process::exit(1);
    }
}
