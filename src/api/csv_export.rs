//! CSV downloads: the field encoding every export shares, and a body streamed page by page.
//! The analytics events export and the leads export are both keyset-paged reads of texts that
//! strangers wrote; they differ only in their rows.

use std::{fmt::Display, io};

use bytes::Bytes;
use futures::{StreamExt, stream};
use poem::Body;
use uuid::Uuid;

/// Appends one CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes
/// doubled. A value a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, and tab or
/// carriage return, per OWASP) gets a leading `'`. Control characters and bidirectional
/// overrides, which the edge refuses but older rows may hold, become U+FFFD: an export never
/// carries a terminal escape or a reversed text.
pub fn field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        let hidden = (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            || crate::validate::is_bidi_control(c);
        out.push(if hidden {
            char::REPLACEMENT_CHARACTER
        } else {
            c
        });
    }
    if quoted {
        out.push('"');
    }
}

/// A body of `first` (the header and the first page, read before the status was sent), then
/// the pages after the keyset `next`, each fetched by `page` only when the client has taken
/// the one before (the body's backpressure): memory stays at one page whatever the export's
/// size. `page` answers a page's CSV and the keyset after it when more may follow. An error
/// cannot be a status anymore: it is logged (with `what` and the company exported) and the
/// body fails, which aborts the transfer rather than ending it as if complete.
pub fn paged_body<C, E, F, Fut>(
    first: String,
    next: Option<C>,
    (what, company_id): (&'static str, Uuid),
    page: F,
) -> Body
where
    C: Send + 'static,
    E: Display + Send,
    F: FnMut(C) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(String, Option<C>), E>> + Send,
{
    let first = stream::once(async move { Ok::<_, io::Error>(Bytes::from(first)) });
    let rest = stream::unfold((next, page), move |(next, mut page)| async move {
        let after = next?;
        match page(after).await {
            Ok((chunk, _)) if chunk.is_empty() => None,
            Ok((chunk, next)) => Some((Ok(Bytes::from(chunk)), (next, page))),
            Err(e) => {
                tracing::error!(%company_id, error = %e, "{what} failed after its first byte; the response is cut short");
                Some((Err(io::Error::other("the export failed")), (None, page)))
            }
        }
    });
    Body::from_bytes_stream(first.chain(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(value: &str) -> String {
        let mut out = String::new();
        field(&mut out, value);
        out
    }

    #[test]
    fn fields_are_escaped() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv(""), "");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn fields_never_carry_escapes_or_reversed_text() {
        assert_eq!(csv("\u{1}\u{1b}[31mred"), "\u{FFFD}\u{FFFD}[31mred");
        assert_eq!(csv("x\u{0}\u{7f}\u{85}"), "x\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(csv("evil\u{202E}fdp.exe"), "evil\u{FFFD}fdp.exe");
        assert_eq!(csv("\u{2066}a\u{2069}"), "\u{FFFD}a\u{FFFD}");
        assert_eq!(csv("a\u{202E}b"), "a\u{FFFD}b");
        assert_eq!(csv("Île-de-France"), "Île-de-France");
    }

    #[test]
    fn fields_that_look_like_formulas_are_defused() {
        assert_eq!(csv("=1+1"), "'=1+1");
        assert_eq!(csv("+49 30 1234"), "'+49 30 1234");
        assert_eq!(csv("-2"), "'-2");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("\tx"), "'\tx");
        assert_eq!(
            csv("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Only a leading sign matters.
        assert_eq!(csv("a=b"), "a=b");
        assert_eq!(csv("linkedin"), "linkedin");
    }

    async fn body_text(body: Body) -> Result<String, String> {
        body.into_bytes()
            .await
            .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn pages_follow_the_first_until_one_has_no_keyset_after_it() {
        let body = paged_body(
            "head\n".into(),
            Some(1),
            ("test export", Uuid::nil()),
            |n: u32| async move { Ok::<_, String>((format!("{n}\n"), (n < 3).then_some(n + 1))) },
        );
        assert_eq!(body_text(body).await.unwrap(), "head\n1\n2\n3\n");
    }

    #[tokio::test]
    async fn an_empty_page_ends_the_body_and_a_failed_one_aborts_it() {
        let body = paged_body(
            "head\n".into(),
            Some(1),
            ("test export", Uuid::nil()),
            |n: u32| async move { Ok::<_, String>((String::new(), Some(n + 1))) },
        );
        assert_eq!(body_text(body).await.unwrap(), "head\n");
        let body = paged_body(
            "head\n".into(),
            Some(1),
            ("test export", Uuid::nil()),
            |_: u32| async move { Err::<(String, Option<u32>), _>("the database is gone") },
        );
        assert!(body_text(body).await.is_err());
    }
}
