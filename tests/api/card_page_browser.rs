//! The public card page in a real browser: headless Chromium against the spawned app.
//!
//! These tests run Chromium itself (`--dump-dom`, `--screenshot`, a NetLog); `browser` drives it
//! over WebDriver. They need Chromium (`scripts/ensure-chromium`; `.ci/run` installs it) and
//! fail, never skip, when it is missing. `CHROMIUM` overrides the binary (a path, or a name on
//! `PATH`).
//!
//! Every run gets a fresh profile directory and a NetLog, so a test can see which requests the
//! page itself made. Host names other than 127.0.0.1 resolve to nothing, so a run never
//! reaches the internet, and a page that tried to would still show it in the NetLog.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use crate::browser::{TempDir, chromium_binary, scan_qr};
use crate::helpers::{PUBLIC_BASE_URL, Session, TestApp, spawn_app};
use serde_json::{Value, json};

/// A browser run that takes longer than this has hung.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// What one Chromium run left behind.
struct BrowserRun {
    stdout: String,
    stderr: String,
    /// `URL_REQUEST_START_JOB` events of the NetLog: `(initiator, url)`.
    requests: Vec<(String, String)>,
}

impl BrowserRun {
    /// The URLs the page asked for (not the navigation, not the browser's own traffic).
    fn page_requests(&self, origin: &str) -> Vec<&str> {
        self.requests
            .iter()
            .filter(|(initiator, _)| initiator == origin)
            .map(|(_, url)| url.as_str())
            .collect()
    }
}

/// Runs headless Chromium on `url` with `args` added to the common flags.
async fn chromium(url: &str, args: &[&str]) -> BrowserRun {
    let binary = chromium_binary();
    let dir = TempDir::new();
    let profile = dir.0.join("profile");
    let net_log = dir.0.join("netlog.json");
    let mut command = tokio::process::Command::new(&binary);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--virtual-time-budget=3000",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
    let pid = child.id().expect("a running child has an id");
    let output = match tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.expect("waiting for Chromium"),
        Err(_) => {
            // The browser and its helpers share the process group we gave it.
            let group = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
            // SAFETY: kill(2) on the process group of the child started above.
            unsafe { libc::kill(-group, libc::SIGKILL) };
            panic!("Chromium did not finish within {BROWSER_TIMEOUT:?} on {url}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "Chromium failed ({}) on {url}\nstderr:\n{stderr}",
        output.status
    );
    let requests = read_net_log(&net_log);
    BrowserRun {
        stdout,
        stderr,
        requests,
    }
}

/// `(initiator, url)` of every URL request in a NetLog file.
fn read_net_log(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("Chromium wrote no NetLog at {}: {e}", path.display()));
    let log: Value = serde_json::from_str(&text).expect("the NetLog is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("the NetLog names URL_REQUEST_START_JOB");
    log["events"]
        .as_array()
        .expect("NetLog events")
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter_map(|e| {
            let params = &e["params"];
            let url = params["url"].as_str()?;
            let initiator = params["initiator"].as_str().unwrap_or_default();
            Some((initiator.to_owned(), url.to_owned()))
        })
        .collect()
}

/// The DOM after the page's scripts ran.
async fn dump_dom(url: &str, extra: &[&str]) -> (String, BrowserRun) {
    let mut args = vec!["--dump-dom"];
    args.extend_from_slice(extra);
    let run = chromium(url, &args).await;
    assert!(
        run.stdout.contains("</html>"),
        "no DOM dump for {url}:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    (run.stdout.clone(), run)
}

/// A PNG screenshot of the first `width`×`height` CSS pixels, at a device scale factor of 2.
async fn screenshot(url: &str, width: u32, height: u32, extra: &[&str]) -> (Vec<u8>, BrowserRun) {
    let dir = TempDir::new();
    let path = dir.0.join("shot.png");
    let mut args = vec![
        format!("--screenshot={}", path.display()),
        format!("--window-size={width},{height}"),
        "--force-device-scale-factor=2".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = chromium(url, &args).await;
    let png = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("no screenshot of {url} ({e})\nstderr:\n{}", run.stderr));
    (png, run)
}

/// Where screenshots are kept for people to look at.
fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("creating target/test-artifacts");
    dir.join(name)
}

/// The public page of a new employee of a new company; `(page URL, company slug, employee slug)`.
async fn card_of(app: &TestApp, admin: &Session, employee: Value) -> (String, String, String) {
    let resp = app
        .post(
            &format!("/api/company/{}/employees", admin.company_id),
            Some(&admin.token),
            employee,
        )
        .await;
    resp.assert_status(201);
    let cs = resp.body["company_slug"].as_str().unwrap().to_owned();
    let es = resp.body["public_slug"].as_str().unwrap().to_owned();
    (format!("{}/card/{cs}/{es}", app.address), cs, es)
}

/// A company with branding and an employee with every field filled in.
async fn full_profile(app: &TestApp) -> (String, String, String) {
    let admin = app.signup("Full Profile Co").await;
    app.put(
        &format!("/api/company/{}", admin.company_id),
        Some(&admin.token),
        json!({"brand_color": "#0B5FFF", "domain": "full-profile.example"}),
    )
    .await
    .assert_status(200);
    card_of(
        app,
        &admin,
        json!({
            "full_name": "Jane Smith",
            "job_title": "Head of Partnerships",
            "email": "jane.smith@full-profile.example",
            "phone": "+1 555 010 0000",
            "whatsapp": "+1 555 010 0001",
            "bio": "Connects teams with the tools they need.\nAsk me about integrations.",
            "social_links": {
                "linkedin": "https://www.linkedin.com/in/jane-smith",
                "github": "https://github.com/jane-smith"
            }
        }),
    )
    .await
}

/// Values of `attr` in a serialized DOM (double-quoted, as Chromium serializes).
fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            &rest[..rest.find('"').expect("closing quote")]
        })
        .collect()
}

/// The serialized text of the document's `<title>`.
fn title_of(dom: &str) -> &str {
    let start = dom.find("<title>").expect("a <title>") + "<title>".len();
    let end = start + dom[start..].find("</title>").expect("a </title>");
    &dom[start..end]
}

/// The opening tag of the element with `id`.
fn tag_with_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in the DOM"));
    let start = dom[..at].rfind('<').expect("an opening tag");
    let end = at + dom[at..].find('>').expect("the tag's end");
    &dom[start..=end]
}

#[tokio::test]
async fn full_profile_renders_every_action_and_a_scannable_qr_code() {
    let app = spawn_app().await;
    let (url, cs, es) = full_profile(&app).await;
    let origin = format!("http://127.0.0.1:{}", app.port);

    let (dom, run) = dump_dom(&url, &[]).await;
    for expected in [
        "<h1>Jane Smith</h1>",
        "Head of Partnerships",
        "Full Profile Co",
        "Connects teams with the tools they need.<br>Ask me about integrations.",
        "href=\"tel:+15550100000\"",
        "href=\"mailto:jane.smith@full-profile.example\"",
        "href=\"https://wa.me/15550100001\"",
        "href=\"https://full-profile.example\"",
        "href=\"https://www.linkedin.com/in/jane-smith\"",
        "href=\"https://github.com/jane-smith\"",
        ">Save contact<",
        "--brand:#0b5fff",
    ] {
        assert!(dom.contains(expected), "{expected:?} missing from:\n{dom}");
    }
    let vcard = format!("/api/card/{cs}/{es}/vcard");
    assert!(
        dom.contains(&format!("href=\"{vcard}\" download")),
        "no Save contact link to {vcard}:\n{dom}"
    );
    let qr_path = format!("/api/card/{cs}/{es}/qr.svg");
    assert!(
        dom.contains(&format!("<img src=\"{qr_path}\"")),
        "no QR image {qr_path}:\n{dom}"
    );
    // The browser asked the app for the QR code (the NetLog, not the page, says so).
    let requested = run.page_requests(&origin);
    assert!(
        requested.contains(&format!("{origin}{qr_path}").as_str()),
        "the QR code was never requested; the page requested {requested:?}"
    );

    // The QR code loaded and is scannable off the screen: the 160 px image, at 2 device pixels
    // per CSS pixel (a phone's density), read back from a screenshot of the whole page.
    let (png, _) = screenshot(&url, 390, 2000, &[]).await;
    std::fs::write(artifact("card-390-full.png"), &png).expect("saving the screenshot");
    let scan = format!("{PUBLIC_BASE_URL}/card/{cs}/{es}?src=qr");
    assert_eq!(
        scan_qr(&png),
        std::slice::from_ref(&scan),
        "the screenshot (target/test-artifacts/card-390-full.png) shows no scannable QR code"
    );

    // And in dark mode, where the page turns dark but the code keeps its white quiet zone.
    let (png, _) = screenshot(&url, 390, 2000, &["--force-dark-mode"]).await;
    std::fs::write(artifact("card-390-dark-full.png"), &png).expect("saving the screenshot");
    assert_eq!(
        scan_qr(&png),
        [scan],
        "the dark-mode screenshot (target/test-artifacts/card-390-dark-full.png) shows no \
         scannable QR code"
    );
}

#[tokio::test]
async fn hostile_profile_text_is_shown_as_text_and_never_runs() {
    const NAME: &str = "<img src=x onerror=\"document.title='pwned'\">";
    const TITLE: &str = "<script>document.title='pwned2'</script>";
    const BIO: &str = "\"><svg onload=alert(1)>";

    let app = spawn_app().await;
    let admin = app.signup("XSS Co").await;
    let (url, _, es) = card_of(
        &app,
        &admin,
        json!({"full_name": NAME, "job_title": TITLE, "bio": BIO, "email": "x@xss.example"}),
    )
    .await;
    // The API stores the payloads as they are.
    let card = app.get(&format!("/api/card/xss-co/{es}"), None).await;
    card.assert_status(200);
    assert_eq!(card.body["employee_name"], NAME);
    assert_eq!(card.body["job_title"], TITLE);
    assert_eq!(card.body["bio"], BIO);

    let (dom, run) = dump_dom(&url, &["--enable-logging=stderr", "--v=0"]).await;
    // Either payload, had it run, would have replaced the title with `pwned` or `pwned2`.
    let title = title_of(&dom);
    assert_ne!(title, "pwned", "the name's payload ran");
    assert_ne!(title, "pwned2", "the job title's payload ran");
    assert_eq!(
        title, "&lt;img src=x onerror=\"document.title='pwned'\"&gt; \u{2013} XSS Co",
        "the title is not the name and company as text"
    );
    for escaped in [
        "<h1>&lt;img src=x onerror=\"document.title='pwned'\"&gt;</h1>",
        "&lt;script&gt;document.title='pwned2'&lt;/script&gt;",
        "\"&gt;&lt;svg onload=alert(1)&gt;",
    ] {
        assert!(
            dom.contains(escaped),
            "{escaped:?} not shown as text in:\n{dom}"
        );
    }
    for element in [
        "<img src=\"x\"",
        "<img src=x",
        "<svg onload",
        "<script>document",
    ] {
        assert!(
            !dom.contains(element),
            "the payload became an element ({element:?}):\n{dom}"
        );
    }
    // The only script is ours, and every <img> is the QR code.
    assert_eq!(dom.matches("<script").count(), 1, "{dom}");
    assert_eq!(dom.matches("<img ").count(), 1, "{dom}");

    // Nothing the payloads could do reached the console. The slug is made from the name, so
    // it is taken out before looking for "pwned".
    let console = run.stderr.replace(&es, "<slug>");
    assert!(
        !console.contains("pwned"),
        "the console shows a payload:\n{console}"
    );
    assert!(
        !console
            .to_ascii_lowercase()
            .contains("content security policy"),
        "a CSP violation (a payload tried to run?):\n{console}"
    );
}

#[tokio::test]
async fn page_loads_nothing_from_elsewhere_and_its_script_passes_the_csp() {
    let app = spawn_app().await;
    let (url, _, _) = full_profile(&app).await;
    let origin = format!("http://127.0.0.1:{}", app.port);

    let resp = app
        .client
        .get(&url)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("GET the card page");
    assert_eq!(resp.status(), 200);
    let csp = resp
        .headers()
        .get("content-security-policy")
        .expect("a Content-Security-Policy header")
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "img-src 'self' data:",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "base-uri 'none'",
        // The "Share your contact" form posts to the card's own origin, and nowhere else.
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive:?} not in CSP {csp:?}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval") && !csp.contains('*'),
        "{csp}"
    );

    // Our one inline script shows the Share button when the Web Share API exists. With the API
    // switched on in Chromium, the button shows: the script ran, so the header's hash matches
    // it. With the API off, it stays hidden: the script, not something else, unhid it.
    let (dom, run) = dump_dom(
        &url,
        &[
            "--enable-blink-features=WebShare",
            "--enable-logging=stderr",
            "--v=0",
        ],
    )
    .await;
    let share = tag_with_id(&dom, "share");
    assert!(
        !share.contains("hidden"),
        "the page script did not run (blocked by its own CSP?): {share}\nstderr:\n{}",
        run.stderr
    );
    let (without_share_api, _) = dump_dom(&url, &["--disable-blink-features=WebShare"]).await;
    let share = tag_with_id(&without_share_api, "share");
    assert!(share.contains("hidden"), "{share}");

    // No violation reported for the script or the style.
    // (Chromium words it "Executing inline script violates the following Content Security
    // Policy directive …"; older versions said "Refused to execute inline script".)
    for violation in [
        "Content Security Policy",
        "violates the following",
        "Refused to execute inline script",
        "Refused to apply inline style",
        "Refused to load",
    ] {
        assert!(
            !run.stderr.contains(violation),
            "Chromium reported {violation:?}:\n{}",
            run.stderr
        );
    }

    // Everything the page loads comes from the page's origin: relative paths or data: URLs in
    // the DOM, and only requests to the app in the NetLog.
    for attr in [
        "src",
        "srcset",
        "poster",
        "data",
        "background",
        "action",
        "formaction",
    ] {
        for value in attr_values(&dom, attr) {
            assert!(
                (value.starts_with('/') && !value.starts_with("//")) || value.starts_with("data:"),
                "{attr}={value:?} does not load from our origin"
            );
        }
    }
    for link in dom.match_indices("<link ").map(|(i, _)| &dom[i..]) {
        let tag = &link[..link.find('>').unwrap()];
        assert!(
            tag.starts_with("<link rel=\"canonical\""),
            "a <link> that loads something: {tag}"
        );
    }
    assert!(!dom.contains("url("), "CSS loads a URL:\n{dom}");
    assert!(!dom.contains("@import"), "CSS imports:\n{dom}");
    assert!(!dom.contains("<iframe"), "{dom}");
    let requested = run.page_requests(&origin);
    assert!(
        !requested.is_empty(),
        "the NetLog shows no request from the page"
    );
    for request in &requested {
        assert!(
            request.starts_with(&format!("{origin}/")),
            "the page requested {request} (all requests: {requested:?})"
        );
    }
}

#[tokio::test]
async fn screenshots_at_phone_widths() {
    let app = spawn_app().await;
    let (url, _, _) = full_profile(&app).await;
    for (width, height) in [(390, 844), (320, 800)] {
        let (png, run) = screenshot(&url, width, height, &[]).await;
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the {width} px screenshot is not a PNG"
        );
        let image = image::load_from_memory(&png).expect("the screenshot decodes");
        assert_eq!(
            (image.width(), image.height()),
            (2 * width, 2 * height),
            "the {width}×{height} screenshot at scale 2 has the wrong size\nstderr:\n{}",
            run.stderr
        );
        std::fs::write(artifact(&format!("card-{width}.png")), &png)
            .expect("saving the screenshot");
    }
}

/// What anyone scanning an old QR code sees: the card's look (light and dark), under its own
/// policy, with a way on to the service's home.
#[tokio::test]
async fn a_dead_card_link_shows_a_styled_page_with_a_way_home() {
    let app = spawn_app().await;
    let url = format!("http://127.0.0.1:{}/card/nobody/gone-000000", app.port);

    let (dom, run) = dump_dom(&url, &["--enable-logging=stderr", "--v=0"]).await;
    for expected in [
        "<h1>Card not found</h1>",
        "href=\"/\"",
        "no longer available",
    ] {
        assert!(dom.contains(expected), "{expected:?} missing from:\n{dom}");
    }
    for violation in [
        "Content Security Policy",
        "violates the following",
        "Refused to apply inline style",
    ] {
        assert!(
            !run.stderr.contains(violation),
            "Chromium reported {violation:?}:\n{}",
            run.stderr
        );
    }

    // The style applied (an unstyled page would be white all over): the brand band on top, the
    // card's own background below, dark in dark mode.
    const BAND: [u8; 3] = [0x1f, 0x29, 0x37];
    for (args, file, card) in [
        (&[][..], "card-not-found.png", [0xff, 0xff, 0xff]),
        (
            &["--force-dark-mode"][..],
            "card-not-found-dark.png",
            [0x16, 0x1b, 0x22],
        ),
    ] {
        let (png, run) = screenshot(&url, 390, 844, args).await;
        std::fs::write(artifact(file), &png).expect("saving the screenshot");
        let image = image::load_from_memory(&png)
            .expect("the screenshot decodes")
            .to_rgb8();
        // Device pixels, at a scale of 2: (10, 10) is in the band, (10, 800) below the content.
        assert_eq!(
            image.get_pixel(20, 20).0,
            BAND,
            "{file}: no brand band\nstderr:\n{}",
            run.stderr
        );
        assert_eq!(
            image.get_pixel(20, 1600).0,
            card,
            "{file}: not the card's background"
        );
    }
}
