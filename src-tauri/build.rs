fn main() {
    // tauri.conf.json lives at the repository root (see ARCHITECTURE.md).
    let attributes = tauri_build::Attributes::new().config_path("../tauri.conf.json");
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri build configuration failed: {error:#}");
    }
}
