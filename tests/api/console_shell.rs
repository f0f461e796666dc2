//! The console's shell: its session cookies, the quiet refresh, logout, CSRF and origin checks,
//! its headers and its static files.

use crate::{
    console_client::ConsoleClient,
    helpers::{ADMIN_PASSWORD, spawn_app},
};

#[tokio::test]
async fn a_signed_out_browser_is_sent_to_the_login_page_and_back() {
    let app = spawn_app().await;
    let mut console = ConsoleClient::new(&app);
    let page = console.get("/app").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login"));

    let page = console.get("/app/?tab=x").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login?next=%2Fapp%2F%3Ftab%3Dx"));

    // htmx follows redirects itself and would swap the login page into the current one.
    let page = console.get_with("/app", &[("HX-Request", "true")]).await;
    assert_eq!(page.header("HX-Redirect"), Some("/app/login"));
}

#[tokio::test]
async fn a_signed_in_page_is_sent_with_a_strict_policy_and_never_cached() {
    let app = spawn_app().await;
    let admin = app.signup("Shell & Sons").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app").await;
    page.assert_status(200);
    assert!(page.body.contains("Shell &amp; Sons"), "{}", page.body);
    assert!(page.body.contains(r#"aria-current="page""#));
    let csp = page.header("Content-Security-Policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    assert!(
        page.header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    let compressed = console
        .get_with("/app", &[("Accept-Encoding", "gzip")])
        .await;
    assert_eq!(compressed.header("Content-Encoding"), Some("gzip"));

    // The CSRF cookie, like the session's, is out of reach of scripts and of other sites.
    let csrf = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("cc_csrf="))
        .expect("a first page sets the CSRF cookie")
        .to_owned();
    assert!(
        csrf.contains("HttpOnly") && csrf.contains("SameSite=Lax"),
        "{csrf}"
    );
    // Tests run with an https PUBLIC_BASE_URL: the cookies are Secure.
    assert!(csrf.contains("Secure"), "{csrf}");
    // And the page's forms carry its value.
    assert_eq!(
        page.input_value("_csrf").as_deref(),
        console.cookies.get("cc_csrf").map(String::as_str)
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_quietly_even_by_requests_at_once() {
    let app = spawn_app().await;
    let admin = app.signup("Refreshing").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let old_refresh = console.cookies["cc_refresh"].clone();
    // An access token that no longer verifies, as after its 15 minutes.
    console
        .cookies
        .insert("cc_session".into(), "expired".into());

    // A page and its htmx requests arrive together, all with the same old refresh token: one
    // refresh is made, and all of them get its pair (two refreshes with one token would count
    // as a stolen token and end the session).
    let mut browsers: Vec<ConsoleClient> = (0..5)
        .map(|_| {
            let mut c = ConsoleClient::new(&app);
            c.cookies = console.cookies.clone();
            c
        })
        .collect();
    let pages =
        futures::future::join_all(browsers.iter_mut().map(|b| async { b.get("/app").await })).await;
    for page in &pages {
        page.assert_status(200);
    }
    let new_refresh = browsers[0].cookies["cc_refresh"].clone();
    assert_ne!(new_refresh, old_refresh);
    assert!(
        browsers
            .iter()
            .all(|b| b.cookies["cc_refresh"] == new_refresh)
    );

    // The session goes on with the new pair.
    let access = browsers[0].cookies["cc_session"].clone();
    app.get("/api/auth/me", Some(&access))
        .await
        .assert_status(200);
    let mut later = ConsoleClient::new(&app);
    later.cookies = browsers[0].cookies.clone();
    later.get("/app").await.assert_status(200);
}

#[tokio::test]
async fn logging_out_ends_the_session_on_the_server_and_forgets_the_cookies() {
    let app = spawn_app().await;
    let admin = app.signup("Leaving").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let access = console.cookies["cc_session"].clone();
    console.get("/app").await.assert_status(200);

    let page = console.post_form("/app/logout", &[]).await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login"));
    assert!(!console.cookies.contains_key("cc_session"));
    assert!(!console.cookies.contains_key("cc_refresh"));
    // The token the cookie held is dead everywhere, not only forgotten by this browser.
    app.get("/api/auth/me", Some(&access))
        .await
        .assert_status(401);
    console.get("/app").await.assert_status(303);
}

#[tokio::test]
async fn a_session_ended_elsewhere_sends_the_browser_to_log_in_again() {
    let app = spawn_app().await;
    let admin = app.signup("Ended").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let access = console.cookies["cc_session"].clone();
    app.post("/api/auth/logout", Some(&access), serde_json::json!({}))
        .await
        .assert_status(204);
    let page = console.get("/app").await;
    page.assert_status(303);
    assert_eq!(page.location(), Some("/app/login"));
    assert!(!console.cookies.contains_key("cc_session"));
}

#[tokio::test]
async fn cross_site_and_tokenless_form_posts_are_refused() {
    let app = spawn_app().await;
    let admin = app.signup("Forged").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let token = console.csrf().await;
    let origin = console.origin();
    let refused = [
        // From another site, with the right token (say, one it guessed or saw).
        (Some("https://evil.example"), Some(token.as_str())),
        // Without an origin at all.
        (None, Some(token.as_str())),
        // From the right origin without the token, or with another one.
        (Some(origin.as_str()), None),
        (
            Some(origin.as_str()),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
    ];
    for (from, csrf) in refused {
        let page = console.post_form_as("/app/logout", &[], from, csrf).await;
        page.assert_status(403);
        assert!(page.body.contains("refused"), "{}", page.body);
    }
    // None of them logged the user out.
    console.get("/app").await.assert_status(200);
    let access = console.cookies["cc_session"].clone();
    app.get("/api/auth/me", Some(&access))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn static_files_are_fingerprinted_immutable_and_compressed() {
    let app = spawn_app().await;
    let admin = app.signup("Assets").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let page = console.get("/app").await;
    let paths: Vec<&str> = page
        .body
        .split('"')
        .filter(|s| s.starts_with("/assets/"))
        .collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    let client = reqwest::Client::new();
    for path in paths {
        let url = format!("{}{path}", app.address);
        let resp = client
            .get(&url)
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert_eq!(resp.headers()["content-encoding"], "gzip", "{path}");
        let cache = resp.headers()["cache-control"].to_str().unwrap();
        assert!(cache.contains("immutable"), "{path}: {cache}");
        let plain = client.get(&url).send().await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none());
        assert!(!plain.bytes().await.unwrap().is_empty());
    }
    let missing = client
        .get(format!("{}/assets/console.0000000000.css", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_console_page_with_everything_it_loads_stays_within_its_budget() {
    // 150 KB on the wire: the page's compressed HTML and every file it links, compressed.
    const BUDGET: usize = 150 * 1024;
    let app = spawn_app().await;
    let admin = app.signup("Weighed").await;
    let mut console = ConsoleClient::signed_in(&app, &admin.email, ADMIN_PASSWORD).await;
    let html = console.get("/app").await.body;
    let client = reqwest::Client::new();
    let cookies: Vec<String> = console
        .cookies
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let page = client
        .get(format!("{}/app", app.address))
        .header("Cookie", cookies.join("; "))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-encoding"], "gzip");
    let mut total = page.bytes().await.unwrap().len();
    for path in html.split('"').filter(|s| s.starts_with("/assets/")) {
        let body = client
            .get(format!("{}{path}", app.address))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        total += body.len();
    }
    assert!(total < BUDGET, "{total} bytes");
}
