//! Memory given back after the window's requests. A list of 10,000
//! entries is built, serialized and sent to the window, then freed; the
//! allocator keeps what was freed for reuse, so without this the app
//! stays as large as its largest moment. Each request (re)starts a short
//! quiet period, after which the free memory goes back to the system once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tauri::ipc::Invoke;
use tauri::Runtime;

/// How long after the last request the free memory is given back.
const QUIET: Duration = Duration::from_secs(2);

/// Requests so far: a trim waits until none came during its quiet period.
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// `handler` (the app's commands), each request followed, once the
/// window has been quiet for [`QUIET`], by giving free memory back.
pub fn trimmed<R: Runtime>(
    handler: impl Fn(Invoke<R>) -> bool + Send + Sync + 'static,
) -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
    move |invoke| {
        let seen = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(QUIET).await;
            if REQUESTS.load(Ordering::Relaxed) == seen {
                // Off the async threads: it walks the whole heap.
                let _ = tokio::task::spawn_blocking(polykey_os::memory::release_free).await;
            }
        });
        handler(invoke)
    }
}
