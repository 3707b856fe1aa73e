//! Web view tuning. On Linux, WebKitGTK's accelerated compositing (software
//! GL when there is no GPU) and its browser-sized caches cost about 90 MiB
//! for a UI of forms and lists; a password manager needs neither, so the
//! app's web views render without GPU compositing and with the smallest
//! cache model. Elsewhere the system web view is left as it is.

use tauri::{Runtime, WebviewWindow};

/// Apply the app's web view settings to `window`.
#[cfg(target_os = "linux")]
pub fn tune<R: Runtime>(window: &WebviewWindow<R>) {
    let _ = window.with_webview(|webview| {
        use webkit2gtk::{
            CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
        };
        let view = webview.inner();
        if let Some(settings) = WebViewExt::settings(&view) {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
        if let Some(context) = view.context() {
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    });
}

/// Apply the app's web view settings to `window`.
#[cfg(not(target_os = "linux"))]
pub fn tune<R: Runtime>(_window: &WebviewWindow<R>) {}
