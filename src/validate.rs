//! Checks of field values that a JSON schema cannot express well, shared by the doors and by the
//! model (an imported row is checked exactly as a request field is). Each returns the cleaned
//! value or a 422 naming the field.

use std::collections::BTreeMap;

use poem_openapi::types::MaybeUndefined;

use crate::error::ApiError;

/// Whether a text field may hold line breaks: a name or an email is one line, a bio several.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    Single,
    Multi,
}

/// Embeddings, overrides and isolates that can reorder what a card or vCard shows (a name that
/// reads differently from what it is).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Refuses NUL, control characters (line breaks and tabs only where `lines` allows them, never
/// U+2028/U+2029 in a single line) and bidirectional controls.
pub fn plain_text(field: &str, value: &str, lines: Lines) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain NUL characters"
        )));
    }
    let allowed = |c: char| lines == Lines::Multi && matches!(c, '\n' | '\r' | '\t');
    if value
        .chars()
        .any(|c| (c.is_control() || c == '\u{2028}' || c == '\u{2029}') && !allowed(c))
    {
        let what = match lines {
            Lines::Single => "control characters or line breaks",
            Lines::Multi => "control characters other than line breaks and tabs",
        };
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain {what}"
        )));
    }
    if value.chars().any(is_bidi_control) {
        return Err(ApiError::invalid(format!(
            "`{field}` must not contain bidirectional override characters \
             (U+202A to U+202E, U+2066 to U+2069)"
        )));
    }
    Ok(())
}

/// Trims `value`; refuses it when empty, longer than `max` characters, or not plain text of one
/// line (see [`plain_text`]).
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    text(field, value, max, Lines::Single)
}

/// Like [`required_text`], for text of several lines.
pub fn required_multiline_text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    text(field, value, max, Lines::Multi)
}

fn text(field: &str, value: &str, max: usize, lines: Lines) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::invalid(format!("`{field}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(format!(
            "`{field}` must be at most {max} characters"
        )));
    }
    plain_text(field, value, lines)?;
    Ok(value.to_owned())
}

/// Like [`required_text`], but an empty value means "none".
pub fn optional_text(
    field: &str,
    value: Option<impl AsRef<str>>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.as_ref().map(|v| v.as_ref().trim()) {
        None | Some("") => Ok(None),
        Some(v) => required_text(field, v, max).map(Some),
    }
}

/// Like [`required_multiline_text`], but an empty value means "none".
pub fn optional_multiline_text(
    field: &str,
    value: Option<impl AsRef<str>>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.as_ref().map(|v| v.as_ref().trim()) {
        None | Some("") => Ok(None),
        Some(v) => required_multiline_text(field, v, max).map(Some),
    }
}

pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let value = required_text(field, value, 254)?;
    let valid = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == '"')
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid {
        return Err(ApiError::invalid(format!(
            "`{field}` must be an email address"
        )));
    }
    Ok(value)
}

pub fn optional_email(
    field: &str,
    value: Option<impl AsRef<str>>,
) -> Result<Option<String>, ApiError> {
    match value.as_ref().map(|v| v.as_ref().trim()) {
        None | Some("") => Ok(None),
        Some(v) => email(field, v).map(Some),
    }
}

/// A phone number as people type it: digits, spaces, `+ - . ( )`.
pub fn optional_phone(
    field: &str,
    value: Option<impl AsRef<str>>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = optional_text(field, value, 40)? else {
        return Ok(None);
    };
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if digits < 3
        || !value
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
    {
        return Err(ApiError::invalid(format!(
            "`{field}` must be a phone number, e.g. +1 555 010 0000"
        )));
    }
    Ok(Some(value))
}

/// An absolute http(s) URL: anything else (`javascript:`, `data:`…) is refused at the door.
pub fn http_url(field: &str, value: &str) -> Result<String, ApiError> {
    let value = required_text(field, value, 2048)?;
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(host) if !host.is_empty() && !value.chars().any(char::is_whitespace) => Ok(value),
        _ => Err(ApiError::invalid(format!(
            "`{field}` must be an http(s) URL"
        ))),
    }
}

pub fn optional_http_url(
    field: &str,
    value: Option<impl AsRef<str>>,
) -> Result<Option<String>, ApiError> {
    match value.as_ref().map(|v| v.as_ref().trim()) {
        None | Some("") => Ok(None),
        Some(v) => http_url(field, v).map(Some),
    }
}

/// `#RGB` or `#RRGGBB`, kept as given but lower-cased.
pub fn optional_color(
    field: &str,
    value: Option<impl AsRef<str>>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = value
        .map(|v| v.as_ref().trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if crate::card::color::Rgb::parse_css(&value).is_some() {
        Ok(Some(value.to_ascii_lowercase()))
    } else {
        Err(ApiError::invalid(format!(
            "`{field}` must be a color like #1a2b3c or #abc"
        )))
    }
}

/// A DNS name such as `example.com`.
pub fn optional_domain(
    field: &str,
    value: Option<impl AsRef<str>>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = optional_text(field, value, 253)? else {
        return Ok(None);
    };
    let value = value.to_ascii_lowercase();
    let valid = value.contains('.')
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(ApiError::invalid(format!(
            "`{field}` must be a domain name like example.com"
        )));
    }
    Ok(Some(value))
}

pub const MAX_SOCIAL_LINKS: usize = 20;

/// `{name: url}`: at most 20 links, short names, http(s) URLs only.
pub fn social_links(
    links: BTreeMap<String, impl AsRef<str>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    if links.len() > MAX_SOCIAL_LINKS {
        return Err(ApiError::invalid(format!(
            "`social_links` holds at most {MAX_SOCIAL_LINKS} links"
        )));
    }
    links
        .into_iter()
        .map(|(name, url)| {
            let name = required_text("social_links name", &name, 50)?;
            let url = http_url(&format!("social_links.{name}"), url.as_ref())?;
            Ok((name, url))
        })
        .collect()
}

pub fn password(field: &str, value: &str) -> Result<(), ApiError> {
    use crate::auth::password::{MAX_LENGTH, MIN_LENGTH};
    let len = value.chars().count();
    if len < MIN_LENGTH {
        return Err(ApiError::invalid(format!(
            "`{field}` must be at least {MIN_LENGTH} characters"
        )));
    }
    if len > MAX_LENGTH {
        return Err(ApiError::invalid(format!(
            "`{field}` must be at most {MAX_LENGTH} characters"
        )));
    }
    Ok(())
}

pub use crate::model::slug::{random_suffix, slug_base};

/// Validates the value of a present field; `null` and absence pass through.
pub fn maybe<S, T>(
    field: MaybeUndefined<S>,
    check: impl FnOnce(S) -> Result<Option<T>, ApiError>,
) -> Result<MaybeUndefined<T>, ApiError> {
    Ok(match field {
        MaybeUndefined::Undefined => MaybeUndefined::Undefined,
        MaybeUndefined::Null => MaybeUndefined::Null,
        MaybeUndefined::Value(v) => match check(v)? {
            Some(v) => MaybeUndefined::Value(v),
            None => MaybeUndefined::Null,
        },
    })
}

/// A field that may be left out but not cleared: `null` is refused (422, naming the field)
/// rather than silently ignored.
pub fn not_null<S>(field: &str, value: MaybeUndefined<S>) -> Result<Option<S>, ApiError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Err(ApiError::invalid(format!(
            "`{field}` cannot be null: leave it out to keep it"
        ))),
        MaybeUndefined::Value(v) => Ok(Some(v)),
    }
}

/// A validated optional field as a change: `None` keeps it, `Some(None)` clears it.
pub fn change<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors() {
        assert_eq!(
            optional_color("c", Some("#ABC")).unwrap().as_deref(),
            Some("#abc")
        );
        assert_eq!(
            optional_color("c", Some("#a1b2c3")).unwrap().as_deref(),
            Some("#a1b2c3")
        );
        assert_eq!(optional_color("c", None::<&str>).unwrap(), None);
        for bad in ["abc", "#abcd", "#ggg", "red", "#12345", "#1234567"] {
            assert!(optional_color("c", Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(http_url("u", "https://example.com/x?y").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "https://",
            "ftp://x.com",
            "http://a b.com",
        ] {
            assert!(http_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_phones_domains() {
        assert!(email("e", "jane@example.com").is_ok());
        for bad in [
            "jane",
            "@example.com",
            "jane@example",
            "ja ne@example.com",
            "a@b@c.com",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
        assert!(optional_phone("p", Some("+1 (555) 010-0000")).is_ok());
        assert!(optional_phone("p", Some("call me")).is_err());
        assert!(
            optional_domain("d", Some("Example.COM"))
                .unwrap()
                .as_deref()
                == Some("example.com")
        );
        assert!(optional_domain("d", Some("-bad-.com")).is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(slug_base("Jane Smith", 60, "x"), "jane-smith");
        assert_eq!(slug_base("Zoë Ångström & Co.", 60, "x"), "zoe-angstrom-co");
        assert_eq!(slug_base("!!!", 60, "company"), "company");
        assert_eq!(slug_base("abc def", 4, "x"), "abc");
        assert_eq!(random_suffix().len(), 6);
    }

    #[test]
    fn texts() {
        assert_eq!(required_text("n", "  Jane ", 10).unwrap(), "Jane");
        assert!(required_text("n", "   ", 10).is_err());
        assert!(required_text("n", "abcdefghijk", 10).is_err());
        assert!(required_text("n", "a\u{0}b", 10).is_err());
        assert_eq!(optional_text("n", Some(" "), 10).unwrap(), None);
    }
}
