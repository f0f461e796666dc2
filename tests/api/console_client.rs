//! A client for the console's HTML door, as a browser uses it: it keeps the cookies the
//! console sets (session, refresh, CSRF) and sends them back, and sends form posts with the
//! `Origin` a browser would and the form's `_csrf` token. It never follows redirects, so a test
//! sees the 303s.
#![allow(dead_code)]

use std::collections::BTreeMap;

use reqwest::{StatusCode, header};

use crate::helpers::TestApp;

pub struct ConsoleClient {
    pub base: String,
    client: reqwest::Client,
    /// Cookie name → value, as the server last set them.
    pub cookies: BTreeMap<String, String>,
}

/// An answer of the console.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body:\n{}",
            self.body
        );
        self
    }

    /// Where a redirect leads (`Location`).
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Set-Cookie` headers of the answer.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// The value of the first `name="…"` attribute's `value` in a tag with `name="<field>"`.
    pub fn input_value(&self, field: &str) -> Option<String> {
        let needle = format!(r#"name="{field}""#);
        let at = self.body.find(&needle)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value_at = tag.find(r#"value=""#)? + 7;
        let len = tag[value_at..].find('"')?;
        Some(tag[value_at..value_at + len].to_owned())
    }
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("building a client"),
            cookies: BTreeMap::new(),
        }
    }

    /// A console client signed in as `email`: logged in through the API, its pair put in the
    /// cookies the console's own login sets.
    pub async fn signed_in(app: &TestApp, email: &str, password: &str) -> Self {
        let resp = app
            .post(
                "/api/auth/login",
                None,
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        resp.assert_status(200);
        let mut console = Self::new(app);
        console.set_session(
            resp.body["access_token"].as_str().unwrap(),
            resp.body["refresh_token"].as_str().unwrap(),
        );
        console
    }

    pub fn set_session(&mut self, access_token: &str, refresh_token: &str) {
        self.cookies
            .insert("cc_session".into(), access_token.to_owned());
        self.cookies
            .insert("cc_refresh".into(), refresh_token.to_owned());
    }

    /// This browser's origin, as it would send it in `Origin`.
    pub fn origin(&self) -> String {
        self.base.trim_end_matches('/').to_owned()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header(header::COOKIE, self.cookie_header());
        }
        let resp = request.send().await.expect("console request failed");
        let status = resp.status();
        let headers = resp.headers().clone();
        for cookie in headers.get_all(header::SET_COOKIE) {
            let cookie = cookie.to_str().unwrap();
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// GET with extra headers (an htmx request, say).
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// The browser's CSRF token; fetched with a first page when it has none yet.
    pub async fn csrf(&mut self) -> String {
        if !self.cookies.contains_key("cc_csrf") {
            self.get("/app/login").await;
        }
        self.cookies
            .get("cc_csrf")
            .cloned()
            .expect("the console sets a CSRF cookie")
    }

    /// A form post from the console's own page: its `Origin`, the form's `_csrf` token.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.csrf().await;
        let origin = self.origin();
        self.post_form_as(path, fields, Some(&origin), Some(&token))
            .await
    }

    /// A form post with the given `Origin` and `_csrf` (either left out when `None`).
    pub async fn post_form_as(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
        csrf: Option<&str>,
    ) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if let Some(token) = csrf {
            form.push(("_csrf", token));
        }
        let mut request = self.client.post(format!("{}{path}", self.base)).form(&form);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        self.send(request).await
    }

    /// A multipart post from the console's page (uploads), with `_csrf` as a field.
    pub async fn post_multipart(&mut self, path: &str, form: reqwest::multipart::Form) -> Page {
        let token = self.csrf().await;
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(header::ORIGIN, self.origin())
            .multipart(form.text("_csrf", token));
        self.send(request).await
    }
}
