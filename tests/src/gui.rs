use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long any one wait for the UI may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(30);

/// The built desktop app: `$POLYKEY_DESKTOP_BIN` (a relative path is from
/// the workspace root, where the README's commands run, not from `tests/`,
/// where cargo runs a bench), else `target/debug/polykey-desktop`.
pub fn desktop_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("POLYKEY_DESKTOP_BIN") {
        return crate::workspace_root().join(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target"));
    target.join("debug").join("polykey-desktop")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// The display the test process started with, if any: read once, before
/// any test points `$DISPLAY` at its own Xvfb (for the clipboard), so a
/// later test never takes another's display, gone with it, for the
/// environment's.
fn environment_display() -> Option<String> {
    static DISPLAY: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()));
    DISPLAY.clone()
}

/// Whose turn it is at the GUI in this process: a thread and how many
/// displays it holds. Under plain `cargo test` a binary's tests share one
/// process (its `$DISPLAY`, read by the clipboard) and two WebKit apps at
/// once starve two cores; nextest runs each test in a process of its own,
/// one GUI test at a time (`.config/nextest.toml`). A test holds the turn
/// from its first display to its last; one test may start several (two
/// apps pairing), on its one thread.
static TURN: std::sync::Mutex<(Option<std::thread::ThreadId>, usize)> =
    std::sync::Mutex::new((None, 0));
static TURN_FREED: std::sync::Condvar = std::sync::Condvar::new();

/// A held turn at the GUI (see [`TURN`]); given back when dropped.
struct Turn;

impl Turn {
    /// Wait for this thread's turn (a test's runtime runs on its thread:
    /// blocking it holds up nothing else of that test).
    fn take() -> Self {
        let me = std::thread::current().id();
        let mut turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match turn.0 {
                None => *turn = (Some(me), 1),
                Some(holder) if holder == me => turn.1 += 1,
                Some(_) => {
                    turn = TURN_FREED.wait(turn).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
            }
            return Self;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        turn.1 = turn.1.saturating_sub(1);
        if turn.1 == 0 {
            turn.0 = None;
            TURN_FREED.notify_all();
        }
    }
}

/// A virtual X display, started only if the environment has none. Holds
/// this test's turn at the GUI (see [`TURN`]).
pub struct Display {
    name: String,
    _xvfb: Option<Child>,
    _turn: Turn,
}

impl Display {
    /// The environment's display, or a fresh Xvfb.
    pub async fn ensure() -> Self {
        let turn = Turn::take();
        if let Some(name) = environment_display() {
            return Self {
                name,
                _xvfb: None,
                _turn: turn,
            };
        }
        // -displayfd makes Xvfb pick a free display and print its number once
        // it accepts connections, so there is no race and no fixed number.
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Xvfb (apt-get install xvfb): {e}"));
        let stdout = xvfb.stdout.take().unwrap_or_else(|| unreachable!("piped"));
        let mut line = String::new();
        tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("Xvfb did not start within {WAIT:?}"))
            .unwrap_or_else(|e| panic!("reading Xvfb's display number: {e}"));
        Self {
            name: format!(":{}", line.trim()),
            _xvfb: Some(xvfb),
            _turn: turn,
        }
    }
}

impl Display {
    /// The display's name, for `$DISPLAY`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A private D-Bus session bus with an unlocked gnome-keyring on it: the real
/// Secret Service, isolated from any desktop session.
pub struct KeyringSession {
    address: String,
    _bus: Child,
    /// Kept open: the bus may write again.
    _bus_out: BufReader<tokio::process::ChildStdout>,
    _keyring: Child,
    _dir: tempfile::TempDir,
}

impl KeyringSession {
    /// Start the bus and the keyring daemon.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let bus = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--nopidfile",
                "--address",
                &address,
                "--print-address",
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dbus-daemon (apt-get install dbus): {e}"));
        // It prints its address once it listens (the socket file appears
        // before that: a connection in between is refused).
        let mut bus = bus;
        let mut bus_out = BufReader::new(bus.stdout.take().expect("piped"));
        let mut printed = String::new();
        let _ = tokio::time::timeout(WAIT, bus_out.read_line(&mut printed)).await;
        assert!(printed.starts_with("unix:"), "dbus-daemon did not start");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start gnome-keyring-daemon (apt-get install gnome-keyring): {e}")
            });
        // The login keyring's password, on stdin, then end of input.
        if let Some(mut stdin) = keyring.stdin.take() {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(b"keyring-test-password").await;
        }
        // Give the daemon a moment to claim org.freedesktop.secrets.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Self {
            address,
            _bus: bus,
            _bus_out: bus_out,
            _keyring: keyring,
            _dir: dir,
        }
    }

    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Emit what a desktop's screensaver emits when the screen locks
    /// (`org.freedesktop.ScreenSaver.ActiveChanged(true)`), with dbus-send.
    pub async fn emit_screen_locked(&self) {
        let status = Command::new("dbus-send")
            .args([
                &format!("--bus={}", self.address),
                "--type=signal",
                "/org/freedesktop/ScreenSaver",
                "org.freedesktop.ScreenSaver.ActiveChanged",
                "boolean:true",
            ])
            .status()
            .await
            .unwrap_or_else(|e| panic!("cannot run dbus-send (apt-get install dbus): {e}"));
        assert!(status.success(), "dbus-send failed");
    }
}

/// tauri-driver, serving WebDriver sessions of the desktop app whose node
/// directory is `node_path`. Dropping it stops the driver and the display.
pub struct Driver {
    port: u16,
    _driver: Child,
    display: Display,
    /// tauri-driver's output (and the app's, which it passes on).
    log: tempfile::NamedTempFile,
    /// The app's node directory.
    node_path: std::path::PathBuf,
}

impl Driver {
    /// Start tauri-driver on free loopback ports.
    pub async fn start(node_path: &Path) -> Self {
        Self::start_with_env(node_path, &[]).await
    }

    /// As [`Driver::start`], with extra environment for the app.
    pub async fn start_with_env(node_path: &Path, env: &[(&str, &str)]) -> Self {
        let display = Display::ensure().await;
        let port = free_port();
        let native_port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("log file: {e}"));
        let log_for = || {
            log.reopen()
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null())
        };
        // The app inherits this environment through WebKitWebDriver.
        let driver = Command::new("tauri-driver")
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native_port.to_string(),
            ])
            .env("DISPLAY", &display.name)
            .env(polykey_node::NODE_PATH_ENV, node_path)
            // Window size and position are remembered per test, not shared.
            .env("XDG_CONFIG_HOME", node_path.with_extension("config"))
            // The app's node listens on loopback only and sends no mDNS.
            .env("POLYKEY_LISTEN", "/ip4/127.0.0.1/tcp/0")
            .env("POLYKEY_MDNS", "0")
            .envs(env.iter().copied())
            .stdout(log_for())
            .stderr(log_for())
            // In the test's process group (so a test the runner kills for
            // taking too long takes it along); dropping the driver ends it
            // and everything it started (see `Drop`).
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start tauri-driver (cargo install tauri-driver --locked): {e}")
            });
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Self {
                    port,
                    _driver: driver,
                    display,
                    log,
                    node_path: node_path.to_owned(),
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("tauri-driver did not listen on 127.0.0.1:{port} within 30 s");
    }

    /// tauri-driver and every process it started (WebKitWebDriver, the
    /// app), children before parents, for ending them all.
    fn processes(&self) -> Vec<u32> {
        let mut out = process_tree(self._driver.id());
        out.reverse();
        out
    }

    /// Press a key combination on the X display, as the keyboard would
    /// (`xdotool key`, e.g. `alt+shift+k`): global shortcuts see it.
    pub async fn press_keys(&self, combo: &str) {
        let status = Command::new("xdotool")
            .args(["key", "--clearmodifiers", combo])
            .env("DISPLAY", &self.display.name)
            .status()
            .await
            .unwrap_or_else(|e| panic!("cannot run xdotool (apt-get install xdotool): {e}"));
        assert!(status.success(), "xdotool key {combo} failed");
    }

    /// Run `xdotool` with these arguments on the display; whether it succeeded.
    pub async fn xdotool(&self, args: &[&str]) -> bool {
        Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }

    /// The X display the app runs on.
    pub fn display_name(&self) -> &str {
        &self.display.name
    }

    /// Read the text on the display's clipboard, as another program would.
    pub fn clipboard_text(&self) -> Option<String> {
        // arboard finds the display through $DISPLAY; this test holds the
        // process's turn at the GUI, so pointing it here is contained.
        std::env::set_var("DISPLAY", &self.display.name);
        arboard::Clipboard::new().ok()?.get_text().ok()
    }

    /// Launch the app in a new WebDriver session.
    pub async fn launch(&self) -> App {
        self.launch_binary(&desktop_binary()).await
    }

    /// Launch the app at `binary` (an installed one) in a new WebDriver
    /// session.
    pub async fn launch_binary(&self, binary: &Path) -> App {
        assert!(
            binary.exists(),
            "{} is missing: build it first with `cargo build -p polykey-desktop`",
            binary.display()
        );
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": binary }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        let mut builder = ClientBuilder::native();
        builder.capabilities(caps);
        let connecting = builder.connect(&url);
        // A start that hangs ends as a failure with what every process was
        // doing, instead of a test the runner kills without a word.
        let client = match tokio::time::timeout(LAUNCH_WAIT, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("WebDriver session did not start: {e}\n{}", self.report()),
            Err(_) => panic!(
                "the app did not start within {LAUNCH_WAIT:?}\n{}",
                self.report()
            ),
        };
        App {
            client,
            report: self.report_source(),
        }
    }

    /// What tauri-driver, WebKitWebDriver and the app are doing now, and
    /// the end of their output.
    pub fn report(&self) -> String {
        self.report_source().report()
    }

    /// The processes of the app this driver started (by name), from `/proc`.
    pub fn app_processes(&self) -> Vec<u32> {
        process_tree(self._driver.id())
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|name| name.trim() == "polykey-desktop")
            })
            .collect()
    }

    fn report_source(&self) -> ReportSource {
        ReportSource {
            root: self._driver.id(),
            log: self.log.path().to_owned(),
            node_lock: self.node_path.join(polykey_node::dir::LOCK_FILE),
        }
    }
}

/// `root` and every process under it, parents before children, from
/// `/proc`.
fn process_tree(root: Option<u32>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut stack: Vec<u32> = root.into_iter().collect();
    while let Some(pid) = stack.pop() {
        out.push(pid);
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            stack.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// A process's state letter from `/proc` (`R`, `S`, `Z`…), `?` if gone.
fn process_state(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or("?")
        .to_owned()
}

/// How long starting the app (a WebDriver session) may take.
pub const LAUNCH_WAIT: Duration = Duration::from_secs(60);

/// Where to look when a step hangs: the driver's process tree and log.
#[derive(Clone)]
struct ReportSource {
    root: Option<u32>,
    log: std::path::PathBuf,
    /// The node directory's lock file.
    node_lock: std::path::PathBuf,
}

impl ReportSource {
    /// Whether a process still holds the node directory's lock: the app
    /// that was just closed, until it has really exited (it may have left
    /// the driver's process tree by then, so the lock itself is asked).
    fn node_in_use(&self) -> bool {
        let Ok(file) = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.node_lock)
        else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    fn report(&self) -> String {
        let mut out = String::from("processes (pid state wchan command):\n");
        for pid in process_tree(self.root) {
            let state = process_state(pid);
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            let command = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            out.push_str(&format!("  {pid} {state} {wchan} {}\n", command.trim()));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        out.push_str("driver and app output (last lines):\n");
        for line in tail.into_iter().rev() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// One running instance of the desktop app.
pub struct App {
    client: Client,
    report: ReportSource,
}

fn css(test_id: &str) -> String {
    format!("[data-testid=\"{test_id}\"]")
}

impl App {
    /// Wait until the element with `data-testid` is present, and return it.
    pub async fn find(&self, test_id: &str) -> Element {
        let css = css(test_id);
        let waiting = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&css));
        match self.timed(&format!("finding {test_id}"), waiting).await {
            Ok(element) => element,
            Err(e) => {
                let seen = self.what_it_shows().await;
                panic!("no element [data-testid={test_id}] within {WAIT:?}: {e}\n{seen}")
            }
        }
    }

    /// What the window shows and the app's log ends with, for a failure's
    /// message: enough to tell a slow app from a wrong screen.
    async fn what_it_shows(&self) -> String {
        let reading = self.client.execute(
            "return document.body ? document.body.innerText.slice(0, 1000) : '(no body)'",
            vec![],
        );
        let text = match tokio::time::timeout(WAIT, reading).await {
            Ok(Ok(v)) => v.as_str().unwrap_or_default().to_owned(),
            Ok(Err(e)) => format!("(the page could not be read: {e})"),
            Err(_) => format!("(the page could not be read: no answer within {WAIT:?})"),
        };
        let log = std::fs::read_to_string(&self.report.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- the window shows:\n{text}\n--- the app's log ends:\n{tail}")
    }

    /// Every element with `data-testid`, once at least one is present.
    pub async fn find_all(&self, test_id: &str) -> Vec<Element> {
        self.find(test_id).await;
        let css = css(test_id);
        let all = self.client.find_all(Locator::Css(&css));
        self.timed(&format!("finding {test_id}"), all)
            .await
            .unwrap_or_else(|e| panic!("finding [data-testid={test_id}]: {e}"))
    }

    /// Click the element with `data-testid`.
    pub async fn click(&self, test_id: &str) {
        let element = self.find(test_id).await;
        self.timed(&format!("clicking {test_id}"), element.click())
            .await
            .unwrap_or_else(|e| panic!("clicking {test_id}: {e}"));
    }

    /// Wait until the element with `data-testid` shows `expected`.
    pub async fn wait_for_text(&self, test_id: &str, expected: &str) {
        let css = css(test_id);
        for _ in 0..300 {
            let found = self.client.find(Locator::Css(&css));
            if let Ok(element) = self.timed(&format!("finding {test_id}"), found).await {
                let text = self
                    .timed(&format!("reading {test_id}"), element.text())
                    .await;
                if text.is_ok_and(|t| t.trim() == expected) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("[data-testid={test_id}] never showed {expected:?}");
    }

    /// How many elements with `data-testid` are present now.
    pub async fn count(&self, test_id: &str) -> usize {
        let css = css(test_id);
        let all = self.client.find_all(Locator::Css(&css));
        self.timed(&format!("counting {test_id}"), all)
            .await
            .map(|all| all.len())
            .unwrap_or(0)
    }

    /// Choose `value` in the `<select>` with `data-testid`.
    pub async fn select(&self, test_id: &str, value: &str) {
        let option = format!("[data-testid=\"{test_id}\"] option[value=\"{value}\"]");
        let found = self.client.find(Locator::Css(&option));
        let element = self
            .timed(&format!("finding {value} in {test_id}"), found)
            .await
            .unwrap_or_else(|e| panic!("no option {value} in {test_id}: {e}"));
        self.timed(&format!("choosing {value}"), element.click())
            .await
            .unwrap_or_else(|e| panic!("choosing {value}: {e}"));
    }

    /// Replace the text of the input with `data-testid`.
    pub async fn type_into(&self, test_id: &str, text: &str) {
        let input = self.find(test_id).await;
        self.timed(&format!("clearing {test_id}"), input.clear())
            .await
            .unwrap_or_else(|e| panic!("clearing {test_id}: {e}"));
        self.timed(&format!("typing into {test_id}"), input.send_keys(text))
            .await
            .unwrap_or_else(|e| panic!("typing into {test_id}: {e}"));
    }

    /// The text of the element with `data-testid`, once it is present.
    pub async fn text(&self, test_id: &str) -> String {
        let element = self.find(test_id).await;
        self.timed(&format!("reading {test_id}"), element.text())
            .await
            .unwrap_or_else(|e| panic!("reading {test_id}: {e}"))
    }

    /// Save a screenshot of the window under `target/e2e-screenshots/`,
    /// after checking the screen with axe-core ([`App::axe_check`]): every
    /// screen a test shows is checked.
    pub async fn screenshot(&self, name: &str) {
        self.axe_check(name).await;
        let dir = crate::workspace_root()
            .join("target")
            .join("e2e-screenshots");
        let png = self
            .timed(&format!("screenshot {name}"), self.client.screenshot())
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::write(dir.join(format!("{name}.png")), png)
            .unwrap_or_else(|e| panic!("writing screenshot {name}: {e}"));
    }

    /// Run axe-core over the page as it is now and fail on any serious or
    /// critical accessibility violation, naming `screen`.
    pub async fn axe_check(&self, screen: &str) {
        let loaded = self
            .execute("return typeof window.axe === 'object';", Vec::new())
            .await;
        if loaded != serde_json::Value::Bool(true) {
            let path = crate::workspace_root().join("ui/node_modules/axe-core/axe.min.js");
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run npm ci --prefix ui)", path.display()));
            self.execute(&format!("{source}\nreturn true;"), Vec::new())
                .await;
        }
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] }).then(
              (r) => done(r.violations
                .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 5).join(', ')}`)),
              (e) => done([`axe failed: ${e}`]));";
        let found = self.execute_async(script, Vec::new()).await;
        let found: Vec<String> = serde_json::from_value(found.clone())
            .unwrap_or_else(|_| panic!("axe answered {found}"));
        assert!(
            found.is_empty(),
            "accessibility (axe-core) on the {screen} screen:\n{}",
            found.join("\n")
        );
    }

    /// Make the window whose page has `data-testid` the one commands go to,
    /// waiting for it to appear.
    pub async fn switch_to_window_with(&self, test_id: &str) {
        for _ in 0..100 {
            let handles = self.timed("listing windows", self.client.windows());
            for handle in handles.await.unwrap_or_default() {
                let switching = self.client.switch_to_window(handle);
                if self.timed("switching windows", switching).await.is_ok()
                    && self.count(test_id).await > 0
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no window shows [data-testid={test_id}]");
    }

    /// Press keys in the element with `data-testid` (WebDriver key codes
    /// such as `\u{E007}` for Enter are allowed).
    pub async fn press(&self, test_id: &str, keys: &str) {
        let element = self.find(test_id).await;
        self.timed(
            &format!("pressing keys in {test_id}"),
            element.send_keys(keys),
        )
        .await
        .unwrap_or_else(|e| panic!("pressing keys in {test_id}: {e}"));
    }

    /// The window's outer size.
    pub async fn window_size(&self) -> (u64, u64) {
        self.timed("reading the window size", self.client.get_window_size())
            .await
            .unwrap_or_else(|e| panic!("reading the window size: {e}"))
    }

    /// Resize the window.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        let resizing = self.client.set_window_size(width, height);
        self.timed("resizing the window", resizing)
            .await
            .unwrap_or_else(|e| panic!("resizing the window: {e}"));
    }

    /// Run a script in the page and return its result.
    pub async fn execute(&self, script: &str, args: Vec<serde_json::Value>) -> serde_json::Value {
        self.timed("running a script", self.client.execute(script, args))
            .await
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    /// Run a script that calls its last argument when done; return what it
    /// passed.
    pub async fn execute_async(
        &self,
        script: &str,
        args: Vec<serde_json::Value>,
    ) -> serde_json::Value {
        self.timed(
            "running an async script",
            self.client.execute_async(script, args),
        )
        .await
        .unwrap_or_else(|e| panic!("running an async script: {e}"))
    }

    /// `request` to the driver, bounded: a driver that never answers (one
    /// hang in CI gave no sign of where it was) fails the test within
    /// [`WAIT`] and 10 s (a wait bounded by [`WAIT`] itself ends first),
    /// saying what it asked and what the app logged.
    pub async fn timed<T>(&self, what: &str, request: impl std::future::Future<Output = T>) -> T {
        let bound = WAIT + Duration::from_secs(10);
        match tokio::time::timeout(bound, request).await {
            Ok(answer) => answer,
            Err(_) => panic!(
                "{what}: no answer from the driver within {bound:?}\n{}",
                self.report.report()
            ),
        }
    }

    /// Quit the app by ending its WebDriver session.
    pub async fn quit(self) {
        match tokio::time::timeout(WAIT, self.client.close()).await {
            Ok(closed) => closed.unwrap_or_else(|e| panic!("closing the app: {e}")),
            Err(_) => panic!(
                "the app did not close within {WAIT:?}\n{}",
                self.report.report()
            ),
        }
        // The app's process can outlive the session by a moment (longer on
        // a busy machine), still holding the node directory: a relaunch
        // before it is gone found the node in use, and WebKitWebDriver then
        // waited for a window forever.
        let deadline = std::time::Instant::now() + WAIT;
        while self.report.node_in_use() {
            assert!(
                std::time::Instant::now() < deadline,
                "the app was still running {WAIT:?} after it was closed\n{}",
                self.report.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // tauri-driver and everything it started (killing tauri-driver
        // alone left WebKitWebDriver running, orphaned).
        let tree = self.processes();
        let pids: Vec<String> = tree.iter().map(u32::to_string).collect();
        if !pids.is_empty() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        ended(
            "tauri-driver, WebKitWebDriver and the app",
            &mut self._driver,
            &tree,
        );
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(xvfb) = &mut self._xvfb {
            let _ = xvfb.start_kill();
            ended("Xvfb", xvfb, &[]);
        }
    }
}

/// Wait (up to [`WAIT`]) until `child` has exited and been reaped and each
/// of `others` is gone (or a zombie, holding nothing); a test that leaves
/// any of them running fails here (unless it is failing already).
fn ended(what: &str, child: &mut Child, others: &[u32]) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let reaped = !matches!(child.try_wait(), Ok(None));
        let left: Vec<u32> = others
            .iter()
            .copied()
            .filter(|pid| !matches!(process_state(*pid).as_str(), "?" | "Z" | "X"))
            .collect();
        if reaped && left.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            if !std::thread::panicking() {
                panic!("{what} still running after the test: {left:?}");
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
