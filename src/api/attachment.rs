//! The `Content-Disposition` header of a download (RFC 6266): an ASCII `filename` for old
//! clients and the real name in UTF-8 as `filename*` (RFC 8187, formerly RFC 5987), which
//! every current browser prefers. What the file is called is the resource's business (e.g.
//! `card::vcard::file_name`); how the name travels in a header is HTTP's, and lives here.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 8187 `attr-char` (letters, digits and ``!#$&+-.^_`|~``) is
/// percent-encoded in an extended value.
const NOT_ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="{ascii_name}"; filename*=UTF-8''{name, percent-encoded}`.
///
/// `ascii_name` is meant to be printable ASCII already; anything else in it (a quote, a
/// backslash, a control or non-ASCII character) becomes `_`, so the quoted string stays one
/// and the header stays valid whatever the caller passes.
pub fn content_disposition(ascii_name: &str, name: &str) -> String {
    let fallback: String = ascii_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, NOT_ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::vcard::{file_name, file_name_utf8};

    const NAME: &str = "José Ñúñez Müller";

    /// The header of a vCard download for a person's name.
    fn vcard_disposition(full_name: &str) -> String {
        content_disposition(&file_name(full_name), &file_name_utf8(full_name))
    }

    /// RFC 5987 decoding, independent of the module's encoder.
    fn percent_decode(value: &str) -> String {
        let bytes = value.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn content_disposition_carries_both_names() {
        assert_eq!(
            vcard_disposition("José Müller"),
            "attachment; filename=\"Jose_Muller.vcf\"; filename*=UTF-8''Jos%C3%A9_M%C3%BCller.vcf"
        );
        assert_eq!(
            vcard_disposition("Jane Smith"),
            "attachment; filename=\"Jane_Smith.vcf\"; filename*=UTF-8''Jane_Smith.vcf"
        );
        for blank in ["", "  \t ", "\u{7}"] {
            assert_eq!(
                vcard_disposition(blank),
                "attachment; filename=\"contact.vcf\"; filename*=UTF-8''contact.vcf"
            );
        }
        let header = vcard_disposition("Jane \"JJ\" O'Neil/..\\x\r\n\u{202E}Z  Doe");
        assert_eq!(
            header,
            "attachment; filename=\"Jane_JJ_ONeil_x_Z_Doe.vcf\"; \
             filename*=UTF-8''Jane_JJ_O%27Neil_.._x_Z_Doe.vcf"
        );
        for name in [
            "José Ñúñez Müller",
            "张伟",
            "a;b,c=d%e",
            "\"/\\",
            &"é".repeat(300),
        ] {
            let header = vcard_disposition(name);
            assert!(header.is_ascii(), "{header}");
            assert!(
                !header.chars().any(|c| c.is_control() || c == '\\'),
                "{header}"
            );
            assert_eq!(header.matches('"').count(), 2, "{header}");
            let (_, encoded) = header.split_once("filename*=UTF-8''").unwrap();
            assert!(!encoded.contains([' ', ';', ',', '"', '\'']), "{header}");
            let real = percent_decode(encoded);
            assert!(
                real.ends_with(".vcf") && !real.contains(['/', '\\']),
                "{real}"
            );
            assert!(real.chars().count() <= 64 + 4, "{real}");
        }
        let (_, encoded) = vcard_disposition(NAME)
            .split_once("filename*=UTF-8''")
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .unwrap();
        assert_eq!(percent_decode(&encoded), "José_Ñúñez_Müller.vcf");
    }

    #[test]
    fn fallback_name_stays_one_quoted_string() {
        assert_eq!(
            content_disposition("a\"b\\c\u{7}d\u{e9}.csv", "a.csv"),
            "attachment; filename=\"a_b_c_d_.csv\"; filename*=UTF-8''a.csv"
        );
        assert_eq!(
            content_disposition("acme-events.csv", "acme events;1.csv"),
            "attachment; filename=\"acme-events.csv\"; filename*=UTF-8''acme%20events%3B1.csv"
        );
    }
}
