//! Real Chromium driven over WebDriver: Debian's `chromedriver` and the `fantoccini` client.
//!
//! `Browser::start()` spawns one chromedriver on a free loopback port and opens a session in
//! headless Chromium with a fresh profile; `browser.visitor()` opens another session (another
//! person, with cookies of their own) on the same driver. Dropping the last session of a driver
//! kills it and the browsers it started, and removes their profiles.
//!
//! Needs `chromium` and `chromium-driver` (`scripts/ensure-chromium`) and the pinned axe-core
//! (`scripts/ensure-axe`); every test that uses it fails, never skips, when one is missing.
//! `CHROMIUM`, `CHROMEDRIVER` and `AXE_CORE_JS` override where they are looked for;
//! `BROWSER_ARTIFACTS` where screenshots go (default `target/browser-artifacts`).

// The console's tests use the rest of the harness; the card page's use only part of it.
#![allow(dead_code)]

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    cookies::Cookie,
    elements::Element,
    key::Key,
};
use hyper_util::client::legacy::connect::HttpConnector;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::PATIENCE;

/// The axe-core release `scripts/ensure-axe` pins.
const AXE_CORE_VERSION: &str = "4.14.1";
/// How long a page load or an async script (an axe run) may take on a busy machine.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The window heights used with each width: a phone held upright, a laptop screen.
const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 800);

/// A binary from `$variable` (a path, or a name looked up on `PATH`), else `default`. Panics
/// with `install` as the way out when there is none.
pub fn binary(variable: &str, default: &str, install: &str) -> PathBuf {
    let configured = std::env::var_os(variable).filter(|v| !v.is_empty());
    let from_env = configured.is_some();
    let candidate = configured.map_or_else(|| PathBuf::from(default), PathBuf::from);
    let found = if candidate.components().count() == 1 {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(&candidate))
                .find(|p| p.is_file())
        })
    } else {
        candidate.is_file().then(|| candidate.clone())
    };
    found.unwrap_or_else(|| {
        panic!(
            "{} not found ({}). The browser tests drive a real headless Chromium: {install}.",
            candidate.display(),
            if from_env {
                format!("from {variable}")
            } else {
                format!("the default; {variable} is not set")
            },
        )
    })
}

/// The Chromium binary: `$CHROMIUM`, else `/usr/bin/chromium`.
pub fn chromium_binary() -> PathBuf {
    binary(
        "CHROMIUM",
        "/usr/bin/chromium",
        "run scripts/ensure-chromium (apt-get install -y chromium chromium-driver) or set \
         CHROMIUM to a Chromium or Chrome binary",
    )
}

/// The WebDriver server: `$CHROMEDRIVER`, else `/usr/bin/chromedriver`.
fn chromedriver_binary() -> PathBuf {
    binary(
        "CHROMEDRIVER",
        "/usr/bin/chromedriver",
        "run scripts/ensure-chromium (apt-get install -y chromium chromium-driver) or set \
         CHROMEDRIVER to a chromedriver of Chromium's major version",
    )
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("callingcard-chromium-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The texts of the QR codes a scanner finds in an image.
pub fn scan_qr(png: &[u8]) -> Vec<String> {
    let image = image::load_from_memory(png)
        .expect("the screenshot is an image")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    prepared
        .detect_grids()
        .iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

/// A running chromedriver. Its browsers are its children, in its process group: killing the
/// group ends them all, even when a session was never closed.
struct ChromeDriver {
    url: String,
    child: std::process::Child,
    /// Its log, and the browsers' profiles.
    dir: TempDir,
}

impl ChromeDriver {
    async fn start() -> Self {
        let binary = chromedriver_binary();
        let dir = TempDir::new();
        // Bound and released at once: chromedriver takes the port a moment later.
        let port = crate::helpers::free_port();
        let log = dir.0.join("chromedriver.log");
        let child = std::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut driver = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        driver.wait_until_ready().await;
        driver
    }

    /// Waits for `/status` to say `ready`, or for chromedriver to die.
    async fn wait_until_ready(&mut self) {
        let client = reqwest::Client::new();
        let status = format!("{}/status", self.url);
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(exit) = self.child.try_wait().expect("polling chromedriver") {
                panic!(
                    "chromedriver exited ({exit}) before it was ready:\n{}",
                    self.log()
                );
            }
            let answer = client
                .get(&status)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if let Ok(answer) = answer
                && let Ok(body) = answer.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver at {} not ready after {PATIENCE:?}:\n{}",
                self.url,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group of the child started above.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

/// One WebDriver session: one person's browser window.
pub struct Browser {
    client: Client,
    /// The viewport's width in CSS pixels, as `set_width` left it.
    width: u32,
    driver: Arc<ChromeDriver>,
    /// Removed after the driver (when this was its last session) killed the browser using it.
    profile: TempDir,
}

/// The element that has the keyboard focus, as a person sees it.
#[derive(Clone, Debug, Deserialize)]
pub struct FocusedElement {
    /// `a`, `button`, `input`, … (`body` when nothing has the focus).
    pub tag: String,
    /// Its accessible text: `aria-label`, else its text, else its `value`.
    pub label: String,
    pub href: Option<String>,
    pub id: Option<String>,
    /// Has a size and lies inside the viewport (the browser scrolls a focused element there).
    pub visible: bool,
    /// Draws an outline or a box shadow while it has the focus (from `:focus-visible`, or for
    /// a field whose focus is inside it, such as a date's day, `:focus-within`).
    pub focus_indicator: bool,
    /// `outline` and `box-shadow` as computed, for messages.
    pub outline: String,
}

/// One axe-core rule that failed, with the elements it failed on.
#[derive(Clone, Debug, Deserialize)]
pub struct AxeViolation {
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    pub help: String,
    #[serde(rename = "helpUrl")]
    pub help_url: String,
    /// CSS selectors of the failing elements.
    pub targets: Vec<String>,
}

impl Browser {
    /// Starts a chromedriver and a first session in it, at the phone width.
    pub async fn start() -> Self {
        Self::session(Arc::new(ChromeDriver::start().await), &[]).await
    }

    /// Another session on the same driver: a second person, with a profile (and so cookies)
    /// of their own.
    pub async fn visitor(&self) -> Self {
        Self::session(Arc::clone(&self.driver), &[]).await
    }

    /// Another session whose browser sends `user_agent`: headless Chromium names itself
    /// `HeadlessChrome`, which the analytics count as a bot, so a visitor whose visit should
    /// count comes as a phone.
    pub async fn visitor_as(&self, user_agent: &str) -> Self {
        Self::session(
            Arc::clone(&self.driver),
            &[format!("--user-agent={user_agent}")],
        )
        .await
    }

    /// Another session whose browser runs no page script (as with JavaScript turned off in
    /// its settings); WebDriver's own scripts still run, outside the page.
    pub async fn without_javascript(&self) -> Self {
        Self::session(
            Arc::clone(&self.driver),
            &["--blink-settings=scriptEnabled=false".to_owned()],
        )
        .await
    }

    /// Another session whose browser prefers a dark colour scheme (as a phone set to dark
    /// mode does).
    pub async fn dark_visitor(&self) -> Self {
        Self::session(Arc::clone(&self.driver), &["--force-dark-mode".to_owned()]).await
    }

    async fn session(driver: Arc<ChromeDriver>, extra_args: &[String]) -> Self {
        let profile = TempDir::new();
        let chromium = chromium_binary();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            // Only loopback resolves: a page can never reach the internet.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.0.display())])
        .chain(extra_args.iter().cloned())
        .collect::<Vec<_>>();
        let millis = u64::try_from(PAGE_TIMEOUT.as_millis()).expect("a timeout in ms fits u64");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "timeouts": { "script": millis, "pageLoad": millis, "implicit": 0 },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no WebDriver session in {}: {e}\nchromedriver log:\n{}",
                    chromium.display(),
                    driver.log()
                )
            });
        let mut browser = Self {
            client,
            width: 0,
            driver,
            profile,
        };
        browser.set_width(PHONE.0).await;
        browser
    }

    /// Ends the session (its Chromium exits) and, when it was the driver's last, the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// The fantoccini client, for what the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the current URL")
            .to_string()
    }

    /// Makes the viewport `width` CSS pixels wide (390: a phone, 1280: a laptop), at that
    /// device's height. The window is resized until the viewport, not the window, has the size.
    /// Chromium applies a resize asynchronously, so each attempt first waits for the viewport
    /// to stop changing before it measures it.
    pub async fn set_width(&mut self, width: u32) {
        let height = if width <= PHONE.0 { PHONE.1 } else { DESKTOP.1 };
        let (mut outer_width, mut outer_height) = (width, height);
        let mut inner = (0, 0);
        for _ in 0..5 {
            self.client
                .set_window_size(outer_width, outer_height)
                .await
                .unwrap_or_else(|e| panic!("resizing the window to {width}×{height}: {e}"));
            inner = self.settled_viewport().await;
            if inner == (width, height) {
                self.width = width;
                return;
            }
            outer_width = (outer_width + width).saturating_sub(inner.0);
            outer_height = (outer_height + height).saturating_sub(inner.1);
        }
        panic!(
            "the viewport does not take the size {width}×{height}: it stays {}×{}",
            inner.0, inner.1
        );
    }

    /// The viewport's size once two readings a little apart agree.
    async fn settled_viewport(&self) -> (u32, u32) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = self.viewport().await;
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.viewport().await;
            if now == last {
                return now;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the viewport kept changing for {PATIENCE:?} (last {}×{})",
                now.0,
                now.1
            );
            last = now;
        }
    }

    async fn viewport(&self) -> (u32, u32) {
        let inner = self
            .script("return [window.innerWidth, window.innerHeight]")
            .await;
        serde_json::from_value(inner).expect("two numbers")
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    /// Runs `script` (a function body; `arguments` are empty) and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("running a script: {e}\n{script}"))
    }

    /// The element `css` selects; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no {css:?} on {}: {e}", self.current_url().await),
        }
    }

    /// Every element `css` selects, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("looking for {css:?}: {e}"))
    }

    /// Waits until `css` selects an element (a page navigated to, a part shown by a script).
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .every(Duration::from_millis(20))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "gave up waiting after {PATIENCE:?} for {css:?} on {}: {e}",
                self.current_url().await
            ),
        }
    }

    /// Waits until the JavaScript expression `condition` is true on the page.
    pub async fn wait_until(&self, condition: &str) {
        let script = format!("return Boolean({condition})");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while self.script(&script).await != Value::Bool(true) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting after {PATIENCE:?} for `{condition}` on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Scrolls the element `css` to the middle of the viewport.
    pub async fn scroll_into_view(&self, css: &str) {
        let element = self.find(css).await;
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'center'})",
                vec![serde_json::to_value(&element).expect("an element reference")],
            )
            .await
            .unwrap_or_else(|e| panic!("scrolling to {css:?}: {e}"));
    }

    /// The process id of this session's chromedriver, and the profile directory of its browser.
    pub fn processes(&self) -> (u32, PathBuf) {
        (self.driver.child.id(), self.profile.0.clone())
    }

    /// Replaces the value of the field `css` with `text`, typed as a person would.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clearing {css:?}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {css:?}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css:?}: {e}"));
    }

    /// Submits the form `css` (a form, or a field in one) as pressing Enter would.
    pub async fn submit(&self, css: &str) {
        self.find(css)
            .await
            .send_keys(&char::from(Key::Enter).to_string())
            .await
            .unwrap_or_else(|e| panic!("submitting {css:?}: {e}"));
    }

    /// The rendered text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of {css:?}: {e}"))
    }

    /// Presses Tab once, as a keyboard user moving to the next control.
    pub async fn keyboard_tab(&self) {
        let tab = char::from(Key::Tab);
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        self.client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("pressing Tab: {e}"));
    }

    /// What has the keyboard focus, whether it can be seen and whether it shows it has it.
    pub async fn focused_element_description(&self) -> FocusedElement {
        let described = self.script(DESCRIBE_FOCUS).await;
        serde_json::from_value(described.clone())
            .unwrap_or_else(|e| panic!("describing the focused element ({e}): {described}"))
    }

    /// A PNG of the viewport, saved as `<artifacts>/<name>-<width>.png` for people to look at.
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("taking a screenshot: {e}"));
        let path = artifacts_dir().join(format!("{name}-{}.png", self.width));
        std::fs::write(&path, &png)
            .unwrap_or_else(|e| panic!("saving the screenshot to {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        png
    }

    /// Runs axe-core on the page (or on the part `context` selects) and returns the rules it
    /// breaks. axe is injected through WebDriver, which the page's Content-Security-Policy does
    /// not govern: strict pages are checked as they are served.
    pub async fn axe_check(&self, context: Option<&str>) -> Vec<AxeViolation> {
        let axe = axe_core_js();
        self.client
            .execute(&axe, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("injecting axe-core: {e}"));
        let context = context.map_or(Value::Null, |css| Value::String(css.to_owned()));
        let outcome = self
            .client
            .execute_async(RUN_AXE, vec![context])
            .await
            .unwrap_or_else(|e| panic!("running axe-core: {e}"));
        if let Some(error) = outcome.get("error") {
            panic!("axe-core failed on {}: {error}", self.current_url().await);
        }
        serde_json::from_value(outcome["violations"].clone())
            .unwrap_or_else(|e| panic!("reading axe-core's violations ({e}): {outcome}"))
    }

    /// Fails on any axe violation of `serious` or `critical` impact, listing them all.
    pub async fn assert_accessible(&self, context: Option<&str>) {
        let violations = self.axe_check(context).await;
        let grave: Vec<String> = violations
            .iter()
            .filter(|v| matches!(v.impact.as_deref(), Some("serious" | "critical")))
            .map(|v| {
                format!(
                    "- {} ({}): {} on {}\n  {}",
                    v.id,
                    v.impact.as_deref().unwrap_or("?"),
                    v.help,
                    v.targets.join(", "),
                    v.help_url
                )
            })
            .collect();
        assert!(
            grave.is_empty(),
            "axe-core finds {} serious or critical problem(s) at {} px on {}:\n{}",
            grave.len(),
            self.width,
            self.current_url().await,
            grave.join("\n")
        );
    }

    /// The cookie `name` of the current page's site, if it is set.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("reading the cookies")
            .into_iter()
            .find(|c| c.name() == name)
    }

    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        self.client
            .get_all_cookies()
            .await
            .expect("reading the cookies")
    }

    /// Sets the cookie `name` for the current page's host (open a page of the site first), on
    /// every path, `SameSite=Lax`: what a server's plain `Set-Cookie` gives.
    pub async fn set_cookie(&self, name: &str, value: &str) {
        let url = self.client.current_url().await.expect("the current URL");
        let host = url.host_str().expect("a page with a host").to_owned();
        // chromedriver refuses a cookie without a domain (fantoccini sends `null`).
        let cookie = Cookie::parse(format!(
            "{name}={value}; Domain={host}; Path=/; SameSite=Lax"
        ))
        .unwrap_or_else(|e| panic!("the cookie {name}={value}: {e}"));
        self.client
            .add_cookie(cookie)
            .await
            .unwrap_or_else(|e| panic!("setting the cookie {name}: {e}"));
    }

    pub async fn delete_cookie(&self, name: &str) {
        self.client
            .delete_cookie(name)
            .await
            .unwrap_or_else(|e| panic!("deleting the cookie {name}: {e}"));
    }
}

/// Where screenshots go: `$BROWSER_ARTIFACTS`, else `target/browser-artifacts`.
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("BROWSER_ARTIFACTS")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-artifacts"),
            PathBuf::from,
        );
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("creating {} for screenshots: {e}", dir.display()));
    dir
}

/// The text of axe.min.js: `$AXE_CORE_JS`, else where `scripts/ensure-axe` puts it.
fn axe_core_js() -> String {
    let configured = std::env::var_os("AXE_CORE_JS").filter(|v| !v.is_empty());
    let from_env = configured.is_some();
    let path = configured.map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
                "target/vendor/axe-core-{AXE_CORE_VERSION}/axe.min.js"
            ))
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not at {} ({}; {e}). Run scripts/ensure-axe (scripts/test and .ci/run \
             do), or set AXE_CORE_JS to an axe.min.js.",
            path.display(),
            if from_env {
                "from AXE_CORE_JS"
            } else {
                "the default; AXE_CORE_JS is not set"
            }
        )
    })
}

/// Runs axe on `arguments[0]` (a selector, or null for the document) and hands back the
/// violations, or the error.
const RUN_AXE: &str = "
const [context, done] = arguments;
if (!window.axe) { done({ error: 'axe-core is not on the page' }); return; }
window.axe.run(context || document, { resultTypes: ['violations'] })
  .then(r => done({ violations: r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map(n => n.target.join(' ')) })) }))
  .catch(e => done({ error: String(e && e.stack || e) }));
";

/// Describes `document.activeElement` for [`FocusedElement`].
const DESCRIBE_FOCUS: &str = "
const e = document.activeElement || document.body;
const r = e.getBoundingClientRect();
const s = getComputedStyle(e);
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const shadow = s.boxShadow && s.boxShadow !== 'none';
const named = e.labels && e.labels.length ? e.labels[0].innerText : '';
const text = (e.getAttribute('aria-label') || e.innerText || named || e.value || '').replace(/\\s+/g, ' ').trim();
return {
  tag: e.tagName.toLowerCase(),
  label: text,
  href: e.getAttribute('href'),
  id: e.id || null,
  visible: r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.bottom > 0 &&
    r.right > 0 && r.top < innerHeight && r.left < innerWidth,
  focus_indicator: outline || shadow,
  outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}; box-shadow ${s.boxShadow}`,
};
";
