//! Cross-site request forgery: every state-changing request of the console must come from the
//! console's own pages. Two checks, both needed:
//!
//! - **Origin.** A browser names the page a request came from in `Origin` (and says
//!   `Sec-Fetch-Site`). A POST whose origin is not this host's, or that names none, is refused.
//! - **A token.** Each browser gets a random token in an `HttpOnly` cookie; every form carries the
//!   same value in a hidden `_csrf` field (htmx sends it as `X-CSRF-Token`). Another site can make
//!   a browser send the cookie, but cannot read it to put it in the form.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use poem::{Request, http::header};
use rand::RngCore;

/// The cookie that holds the browser's token.
pub const COOKIE: &str = "cc_csrf";
/// The form field that carries it.
pub const FIELD: &str = "_csrf";
/// The header htmx sends it in.
pub const HEADER: &str = "X-CSRF-Token";

/// The token of this browser, as the page must render it into its forms.
#[derive(Clone, Debug)]
pub struct CsrfToken(String);

impl CsrfToken {
    pub fn new_random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token from the cookie, when it has the shape this module gives them.
    pub fn from_cookie(value: &str) -> Option<Self> {
        (value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
        .then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` (a form field or header) is this token, compared in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It came from another site, or did not say where from.
    Origin,
    /// Its token is missing or wrong (an old tab, or a forged form).
    Token,
}

/// Whether an unsafe request came from this host's own pages: `Sec-Fetch-Site` is not
/// `cross-site`/`same-site`, and `Origin` (or, without it, `Referer`) names this host.
pub fn check_origin(req: &Request) -> Result<(), Refusal> {
    if let Some(site) = req.header("Sec-Fetch-Site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(Refusal::Origin);
    }
    let host = req.header(header::HOST).ok_or(Refusal::Origin)?;
    let source = req
        .header(header::ORIGIN)
        .filter(|o| *o != "null")
        .or_else(|| req.header(header::REFERER))
        .ok_or(Refusal::Origin)?;
    let authority = source
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .ok_or(Refusal::Origin)?;
    if authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Refusal::Origin)
    }
}

/// The token an htmx request carries in its header, if any.
pub fn from_header(req: &Request) -> Option<&str> {
    req.header(HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(poem::http::Method::POST);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.finish()
    }

    #[test]
    fn same_origin_posts_pass_and_others_are_refused() {
        let host = ("Host", "127.0.0.1:8080");
        assert_eq!(
            check_origin(&post(&[host, ("Origin", "http://127.0.0.1:8080")])),
            Ok(())
        );
        assert_eq!(
            check_origin(&post(&[host, ("Referer", "http://127.0.0.1:8080/app/x")])),
            Ok(())
        );
        for refused in [
            vec![host],
            vec![host, ("Origin", "https://evil.example")],
            vec![host, ("Origin", "null")],
            vec![host, ("Origin", "http://127.0.0.1:8080.evil.example")],
            vec![
                host,
                ("Origin", "http://127.0.0.1:8080"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ] {
            assert_eq!(
                check_origin(&post(&refused)),
                Err(Refusal::Origin),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn tokens_match_only_themselves() {
        let token = CsrfToken::new_random();
        assert!(token.matches(token.as_str()));
        assert!(!token.matches(""));
        assert!(!token.matches(CsrfToken::new_random().as_str()));
        assert!(CsrfToken::from_cookie(token.as_str()).is_some());
        assert!(CsrfToken::from_cookie("short").is_none());
    }
}
