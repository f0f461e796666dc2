//! The "Save contact" file of a public card: vCard text built from a [`CardProfile`], its
//! [`CardUrls`] and, optionally, an already downscaled JPEG photo.
//!
//! - [`v3`] writes vCard 3.0 (RFC 2426), the default download. It has its own small serializer
//!   below because the `vcard` crate only writes 4.0, while phones import 3.0 most reliably
//!   (iOS Contacts and many Android importers handle 4.0 partly or not at all).
//! - [`v4`] writes vCard 4.0 (RFC 6350) with the `vcard` crate, for `?version=4.0`.
//! - [`file_name`] and [`file_name_utf8`] name the download (the HTTP header that carries them
//!   is built in `api::attachment`).
//!
//! Pure: no I/O, the same input always gives the same text. Profile data is validated on the way
//! in but not trusted here: control characters are dropped, every text value is escaped, and
//! only http(s) links become URL properties.

use std::str::FromStr;

use base64::Engine as _;

use super::{CardProfile, CardUrls, is_web_link, social};

/// PRODID of both versions.
const PRODID: &str = "-//CallingCard//EN";
/// RFC 2426 / RFC 6350: a physical line is at most 75 octets, not counting its CRLF.
const MAX_LINE_OCTETS: usize = 75;
/// The Apple label of the link to the card page itself.
const PAGE_LABEL: &str = "Business card";
/// The Apple label of the WhatsApp number.
const WHATSAPP_LABEL: &str = "WhatsApp";
/// The name of the extension property that iOS reads as the label of its item group.
const APPLE_LABEL: &str = "X-ABLabel";
/// The file name when the person's name has nothing usable in it.
const FALLBACK_FILE_NAME: &str = "contact.vcf";
/// At most this many octets (ASCII name) or characters (UTF-8 name) before `.vcf`.
const MAX_FILE_STEM: usize = 64;

/// vCard 3.0 (RFC 2426): what iOS and Android import most reliably.
pub fn v3(card: &CardProfile, urls: &CardUrls, photo_jpeg: Option<&[u8]>) -> String {
    let contact = Contact::new(card, urls);
    let mut w = V3Writer::default();

    w.line("BEGIN", "VCARD");
    w.line("VERSION", "3.0");
    w.line("PRODID", PRODID);
    w.line("FN", &escape_text(&contact.formatted_name));
    // N is required in 3.0, so it is written even when empty (`N:;;;;`).
    let family = contact.family_name.as_deref().map(escape_text);
    let given = contact.given_names.as_deref().map(escape_text);
    w.line(
        "N",
        &format!(
            "{};{};;;",
            family.as_deref().unwrap_or_default(),
            given.as_deref().unwrap_or_default()
        ),
    );
    if let Some(org) = &contact.organization {
        // One component: the `;` inside the company name is escaped, not a unit separator.
        w.line("ORG", &escape_text(org));
    }
    if let Some(title) = &contact.title {
        w.line("TITLE", &escape_text(title));
    }
    // EMAIL and TEL are text values in 3.0, so they get the text escaping too (a no-op for
    // addresses and numbers that passed validation).
    if let Some(email) = &contact.email {
        w.line("EMAIL;TYPE=INTERNET,WORK", &escape_text(email));
    }
    if let Some(phone) = &contact.phone {
        w.line("TEL;TYPE=WORK,VOICE", &escape_text(phone));
    }
    if let Some(whatsapp) = &contact.whatsapp {
        w.labeled("TEL;TYPE=CELL", &escape_text(whatsapp), WHATSAPP_LABEL);
    }
    for link in &contact.links {
        // URL values are URIs, not text: written as they are (they hold no control characters
        // or whitespace, `is_web_link` checked).
        match (&link.label, link.work) {
            (Some(label), _) => w.labeled("URL", &link.url, label),
            (None, true) => w.line("URL;TYPE=WORK", &link.url),
            (None, false) => w.line("URL", &link.url),
        }
    }
    if let Some(note) = &contact.note {
        w.line("NOTE", &escape_text(note));
    }
    if let Some(jpeg) = photo_jpeg.filter(|jpeg| !jpeg.is_empty()) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(jpeg);
        w.line("PHOTO;ENCODING=b;TYPE=JPEG", &encoded);
    }
    w.line("UID", &contact.uid);
    w.line("END", "VCARD");
    w.out
}

/// vCard 4.0 (RFC 6350), built with the `vcard` crate, for `?version=4.0`.
///
/// Never fails: every optional property is added only if the card still passes
/// [`::vcard::VCard::validate`] with it, so a value the crate refuses (an email address its
/// validator rejects, a URL it cannot parse) is left out instead of failing the whole card.
pub fn v4(card: &CardProfile, urls: &CardUrls, photo_jpeg: Option<&[u8]>) -> String {
    use ::vcard::{
        Email, ExtensionProperty, GroupName, Kind, Name, Note, Org, Photo, ProdId, Tel, Title,
        TypeValue, Uid, Url, VCard,
        values::{EmailValue, KindValue, NameValue, OrgValue, TelValue, TextOrUri, Token, Uri},
    };

    /// Adds what `edit` adds, unless the card no longer validates with it.
    fn add(vcard: &mut VCard, edit: impl FnOnce(&mut VCard)) {
        let before = vcard.clone();
        edit(vcard);
        if vcard.validate().is_err() {
            *vcard = before;
        }
    }

    /// `item{n}` and the Apple label property of that group, as in the 3.0 card.
    fn group_and_label(n: u32, label: &str) -> Option<(GroupName, ExtensionProperty)> {
        let group = GroupName::from_str(&format!("item{n}")).ok()?;
        let mut property = ExtensionProperty::from_text(Token::from_str(APPLE_LABEL).ok()?, label);
        property.group = Some(group.clone());
        Some((group, property))
    }

    let contact = Contact::new(card, urls);
    // FN is cleaned text (no control characters but line breaks), which always validates.
    let mut vcard = VCard::new(contact.formatted_name.clone());
    let mut groups = 0;

    add(&mut vcard, |v| {
        v.product_ids.push(ProdId::new(PRODID.to_owned()));
    });
    add(&mut vcard, |v| {
        v.kinds.push(Kind::new(KindValue::Individual))
    });
    add(&mut vcard, |v| {
        v.names.push(Name::new(NameValue {
            family_names: contact.family_name.iter().cloned().collect(),
            given_names: contact.given_names.iter().cloned().collect(),
            ..NameValue::default()
        }));
    });
    if let Some(org) = &contact.organization {
        add(&mut vcard, |v| {
            v.organizations.push(Org::new(OrgValue {
                name: org.clone(),
                units: Vec::new(),
            }));
        });
    }
    if let Some(title) = &contact.title {
        add(&mut vcard, |v| v.titles.push(Title::new(title.clone())));
    }
    // The crate validates email addresses itself; one it refuses is skipped.
    if let Some(email) = contact
        .email
        .as_deref()
        .and_then(|e| EmailValue::from_str(e).ok())
    {
        add(&mut vcard, |v| {
            let mut property = Email::new(email);
            property.parameters.types.push(TypeValue::Work);
            v.emails.push(property);
        });
    }
    // Numbers stay text as typed (the 4.0 default for TEL); a `tel:` URI would need the number
    // normalized, which we cannot do reliably for local formats.
    if let Some(phone) = &contact.phone {
        add(&mut vcard, |v| {
            let mut property = Tel::new(TelValue::Text(phone.clone()));
            property
                .parameters
                .types
                .extend([TypeValue::Work, TypeValue::Voice]);
            v.telephones.push(property);
        });
    }
    if let Some(whatsapp) = &contact.whatsapp {
        groups += 1;
        if let Some((group, label)) = group_and_label(groups, WHATSAPP_LABEL) {
            add(&mut vcard, |v| {
                let mut property = Tel::new(TelValue::Text(whatsapp.clone()));
                property.parameters.types.push(TypeValue::Cell);
                property.group = Some(group);
                v.telephones.push(property);
                v.extensions.push(label);
            });
        }
    }
    // Social links stay URL properties with Apple labels, like in 3.0, rather than RFC 9554
    // SOCIALPROFILE, which few importers know yet. The crate stores URLs as `url::Url`, so it
    // may normalize them (e.g. `https://example.com` gets its trailing `/`).
    for link in &contact.links {
        let Ok(uri) = Uri::from_str(&link.url) else {
            continue;
        };
        let mut property = Url::new(uri);
        match &link.label {
            Some(label) => {
                groups += 1;
                let Some((group, label)) = group_and_label(groups, label) else {
                    continue;
                };
                property.group = Some(group);
                add(&mut vcard, |v| {
                    v.urls.push(property);
                    v.extensions.push(label);
                });
            }
            None => {
                if link.work {
                    property.parameters.types.push(TypeValue::Work);
                }
                add(&mut vcard, |v| v.urls.push(property));
            }
        }
    }
    if let Some(note) = &contact.note {
        add(&mut vcard, |v| v.notes.push(Note::new(note.clone())));
    }
    if let Ok(uid) = TextOrUri::from_uuid_str(&card.employee_id.to_string()) {
        add(&mut vcard, |v| v.uids.push(Uid::new(uid)));
    }
    // Last, so the rollback copies above never clone the photo.
    if let Some(jpeg) = photo_jpeg.filter(|jpeg| !jpeg.is_empty()) {
        let uri = Uri::from_data(&::vcard::mime::IMAGE_JPEG, jpeg);
        add(&mut vcard, |v| v.photos.push(Photo::new(uri)));
    }
    vcard.to_string()
}

/// ASCII file name of the download (the `filename` fallback of Content-Disposition), e.g. "Jane_Smith.vcf"; "José Müller" -> "Jose_Muller.vcf"; never empty ("contact.vcf" fallback); no quotes, slashes or control chars.
///
/// Letters are transliterated (case kept), digits and `-` kept, runs of anything else become
/// one `_`, apostrophes vanish (`O'Neil` → `ONeil`); at most 64 characters before `.vcf`.
pub fn file_name(full_name: &str) -> String {
    let mut stem = String::with_capacity(full_name.len());
    for c in full_name.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            push_file_char(&mut stem, c);
        } else if is_apostrophe(c) || is_invisible(c) || is_combining_mark(c) {
            // Dropped: `O'Neil` is one word, and a decomposed `é` is its `e`.
        } else if c.is_ascii() {
            push_file_separator(&mut stem);
        } else {
            let ascii = slug::slugify(c.encode_utf8(&mut [0; 4]));
            if ascii.is_empty() {
                push_file_separator(&mut stem);
            }
            for (i, a) in ascii.chars().enumerate() {
                // `slugify` lowercases; an uppercase letter keeps its case (`Ñ` → `N`).
                let a = if i == 0 && c.is_uppercase() {
                    a.to_ascii_uppercase()
                } else {
                    a
                };
                push_file_char(&mut stem, a);
            }
        }
    }
    stem.truncate(MAX_FILE_STEM); // ASCII only, so any index is a char boundary.
    let stem = stem.trim_matches(['_', '-']);
    if stem.is_empty() {
        FALLBACK_FILE_NAME.to_owned()
    } else {
        format!("{stem}.vcf")
    }
}

/// The file name as the person wrote it, for the UTF-8 `filename*` of the download (the
/// [`file_name`] being its ASCII fallback): "José Müller" → "José_Müller.vcf", spaces as `_`.
///
/// Whitespace runs and characters that file systems or headers refuse (`/ \ " : * ? < > |`,
/// control characters) become one `_`, invisible bidi and format characters are dropped (no
/// `evil\u{202E}fdp.vcf` spoofing), leading dots are dropped, and it is cut at 64 characters.
/// Without anything usable it is the ASCII [`file_name`] (`contact.vcf`).
pub fn file_name_utf8(full_name: &str) -> String {
    let mut stem = String::with_capacity(full_name.len());
    let mut separator = false;
    for c in full_name.chars() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() || "/\\\":*?<>|_".contains(c) {
            separator = true;
            continue;
        }
        if c == '.' && stem.is_empty() {
            continue;
        }
        if separator && !stem.is_empty() {
            stem.push('_');
        }
        separator = false;
        stem.push(c);
    }
    let stem: String = stem.chars().take(MAX_FILE_STEM).collect();
    let stem = stem.trim_end_matches(['_', '.']);
    if stem.is_empty() {
        file_name(full_name)
    } else {
        format!("{stem}.vcf")
    }
}

/// The profile as the cards show it: cleaned, with absent or blank fields as `None`.
/// Text here is unescaped; each writer escapes it for its own format.
struct Contact {
    formatted_name: String,
    family_name: Option<String>,
    given_names: Option<String>,
    organization: Option<String>,
    title: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    whatsapp: Option<String>,
    /// Page, then social links (in profile order), then website: http(s) only.
    links: Vec<Link>,
    note: Option<String>,
    /// `urn:uuid:{employee_id}`.
    uid: String,
}

struct Link {
    url: String,
    /// The Apple label (`X-ABLabel`) of the URL's item group.
    label: Option<String>,
    /// Written `TYPE=WORK` (the company website).
    work: bool,
}

impl Contact {
    fn new(card: &CardProfile, urls: &CardUrls) -> Self {
        let name = clean_text(&card.employee_name);
        let organization = clean_text(&card.company_name);
        // N: the last word is the family name and the rest the given names
        // (`Jane Ann Smith` → `Smith;Jane Ann`). A single word is a given name
        // (`N:;Cher;;;`): iOS lists given name first, so `Cher` reads naturally and sorts by
        // it either way, and a given name is what a one-word name usually is.
        let words: Vec<&str> = name
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let (family_name, given_names) = match words.split_last() {
            None => (None, None),
            Some((only, [])) => (None, Some((*only).to_owned())),
            Some((last, rest)) => (Some((*last).to_owned()), Some(rest.join(" "))),
        };
        // FN is required: without a name, the company's; without that, a word.
        let formatted_name = name
            .or_else(|| organization.clone())
            .unwrap_or_else(|| "Contact".to_owned());

        let mut links = Vec::new();
        if is_web_link(&urls.page) {
            links.push(Link {
                url: urls.page.clone(),
                label: Some(PAGE_LABEL.to_owned()),
                work: false,
            });
        }
        for (name, url) in &card.social_links {
            if is_web_link(url) {
                links.push(Link {
                    url: url.clone(),
                    label: social::label(name),
                    work: false,
                });
            }
        }
        if let Some(website) = card.website.as_deref().filter(|url| is_web_link(url)) {
            links.push(Link {
                url: website.to_owned(),
                label: None,
                work: true,
            });
        }

        Self {
            formatted_name,
            family_name,
            given_names,
            organization,
            title: card.job_title.as_deref().and_then(clean_text),
            email: card.email.as_deref().and_then(clean_line),
            phone: card.phone.as_deref().and_then(clean_line),
            whatsapp: card.whatsapp.as_deref().and_then(clean_line),
            links,
            note: card.bio.as_deref().and_then(clean_text),
            uid: format!("urn:uuid:{}", card.employee_id),
        }
    }
}

/// Free text made safe to write: CRLF and CR become LF, tabs become spaces, other control
/// characters (C0, DEL, C1) are dropped, and surrounding whitespace is trimmed. `None` when
/// nothing is left.
fn clean_text(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\n' => out.push('\n'),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    non_empty(out.trim())
}

/// A value that cannot span lines (phone number, email address, label): every control
/// character dropped, surrounding whitespace trimmed. `None` when nothing is left.
fn clean_line(text: &str) -> Option<String> {
    let out: String = text.chars().filter(|c| !c.is_control()).collect();
    non_empty(out.trim())
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// RFC 2426 §4 / RFC 6350 §3.4 text escaping of a value from [`clean_text`]: `\` `,` `;` and
/// line breaks. Applied to each component of N and ORG, whose unescaped `;` are the structure.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The 3.0 card being written: folded content lines, and the count of `itemN` groups used.
#[derive(Default)]
struct V3Writer {
    out: String,
    groups: u32,
}

impl V3Writer {
    /// One content line, `{head}:{value}`, folded, with its CRLF. `value` is already escaped.
    fn line(&mut self, head: &str, value: &str) {
        push_folded(&mut self.out, &format!("{head}:{value}"));
    }

    /// A property in a new `itemN` group with its Apple label: iOS shows the label ("LinkedIn",
    /// "WhatsApp"); Android ignores it and keeps the value.
    fn labeled(&mut self, head: &str, value: &str, label: &str) {
        self.groups += 1;
        let group = format!("item{}", self.groups);
        self.line(&format!("{group}.{head}"), value);
        self.line(&format!("{group}.{APPLE_LABEL}"), &escape_text(label));
    }
}

/// Appends `line` folded (RFC 2426 §2.6 / RFC 6350 §3.2): no physical line over 75 octets,
/// continuations start with one space (so carry at most 74 octets), and a UTF-8 character is
/// never split. Each physical line ends with CRLF.
fn push_folded(out: &mut String, line: &str) {
    let mut rest = line;
    let mut room = MAX_LINE_OCTETS;
    while rest.len() > room {
        let cut = fold_point(rest, room);
        out.push_str(&rest[..cut]);
        out.push_str("\r\n ");
        rest = &rest[cut..];
        room = MAX_LINE_OCTETS - 1;
    }
    out.push_str(rest);
    out.push_str("\r\n");
}

/// Where to fold `text` (longer than `room`) so that the part before fits `room` octets: the
/// last character boundary that fits, moved back while the physical line would end in a space,
/// tab or backslash or the next one start with a space or tab. Folding there is legal too, but
/// some parsers trim whitespace at line ends or unfold an escape only within a line; if the
/// whole line is such characters, the last boundary that fits.
fn fold_point(text: &str, room: usize) -> usize {
    let bytes = text.as_bytes();
    let mut widest = room;
    while !text.is_char_boundary(widest) {
        widest -= 1;
    }
    let awkward =
        |i: usize| matches!(bytes[i - 1], b' ' | b'\t' | b'\\') || matches!(bytes[i], b' ' | b'\t');
    let mut cut = widest;
    while cut > 0 && (!text.is_char_boundary(cut) || awkward(cut)) {
        cut -= 1;
    }
    if cut == 0 { widest } else { cut }
}

/// Builds an ASCII file stem: a letter, digit or `-`, with `-` absorbing neighbouring `_`.
fn push_file_char(stem: &mut String, c: char) {
    if c == '-' {
        if stem.ends_with('_') {
            stem.pop();
        }
        if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
    } else if c.is_ascii_alphanumeric() {
        stem.push(c);
    }
}

/// One `_` between words, none at the start or next to a `-`.
fn push_file_separator(stem: &mut String) {
    if !stem.is_empty() && !stem.ends_with(['_', '-']) {
        stem.push('_');
    }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '`' | '\u{2018}' | '\u{2019}' | '\u{02BC}')
}

/// Zero-width and bidirectional formatting characters: invisible, and able to make a file name
/// read differently from what it is.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// Combining diacritical marks, as in a decomposed (NFD) `e\u{301}`.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use ical::property::Property;
    use uuid::Uuid;

    use super::*;
    use crate::card::social::label as social_label;

    const BIO: &str = "Line one, with comma; and semicolon\nLine two \\ backslash";
    const NAME: &str = "José Ñúñez Müller";
    const COMPANY: &str = "Acme, Inc; Ltd";

    fn urls() -> CardUrls {
        CardUrls::new("https://c.example", "acme", "jose-1a2b3c")
    }

    /// A real (tiny) JPEG, a few hundred bytes.
    fn jpeg() -> Vec<u8> {
        let mut image = image::RgbImage::new(8, 8);
        for (x, y, pixel) in image.enumerate_pixels_mut() {
            *pixel = image::Rgb([x as u8 * 30, y as u8 * 30, 128]);
        }
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&image)
            .unwrap();
        bytes
    }

    fn full_profile() -> CardProfile {
        CardProfile {
            employee_id: Uuid::parse_str("5f0c6a1e-2b7d-4c3a-9e8f-0a1b2c3d4e5f").unwrap(),
            company_name: COMPANY.to_owned(),
            job_title: Some("Head of R&D, Europe".to_owned()),
            email: Some("jose@acme.example".to_owned()),
            phone: Some("+34 600 000 001".to_owned()),
            whatsapp: Some("+34 600 000 002".to_owned()),
            bio: Some(BIO.to_owned()),
            website: Some("https://acme.example/".to_owned()),
            social_links: vec![
                ("github".to_owned(), "https://github.com/jose".to_owned()),
                (
                    "linkedin".to_owned(),
                    "https://www.linkedin.com/in/jose?trk=a,b;c".to_owned(),
                ),
            ],
            ..CardProfile::minimal("acme", "jose-1a2b3c", NAME)
        }
    }

    /// Parses with the independent `ical` parser: exactly one card, its properties.
    fn parse_v3(text: &str) -> Vec<Property> {
        let mut parser = ical::VcardParser::new(BufReader::new(text.as_bytes()));
        let card = parser.next().expect("a card").expect("a valid card");
        assert!(parser.next().is_none(), "exactly one card");
        card.properties
    }

    /// The only property named `name` (group included, e.g. `item1.URL`).
    fn only<'a>(properties: &'a [Property], name: &str) -> &'a Property {
        let found: Vec<_> = properties.iter().filter(|p| p.name == name).collect();
        assert_eq!(found.len(), 1, "one {name} in {properties:#?}");
        found[0]
    }

    fn value(property: &Property) -> &str {
        property.value.as_deref().expect("a value")
    }

    fn params(property: &Property) -> Vec<(&str, Vec<&str>)> {
        property
            .params
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect()
    }

    /// `ical` keeps values raw (escaped), so the test unescapes them itself, independently of
    /// the module's code: `\\` `\,` `\;` `\n` `\N`.
    fn unescape(raw: &str) -> String {
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n' | 'N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => panic!("dangling backslash in {raw:?}"),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Components of a structured value (N, ORG): split at unescaped `;`, then unescaped.
    fn components(raw: &str) -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let last = parts.last_mut().unwrap();
                    last.push('\\');
                    last.push(chars.next().expect("escaped char"));
                }
                ';' => parts.push(String::new()),
                c => parts.last_mut().unwrap().push(c),
            }
        }
        parts.iter().map(|part| unescape(part)).collect()
    }

    /// The URL in the item group whose `X-ABLabel` is `label`.
    fn labeled<'a>(properties: &'a [Property], label: &str) -> (&'a str, &'a Property) {
        let labels: Vec<_> = properties
            .iter()
            .filter(|p| p.name.ends_with(".X-ABLabel") && unescape(value(p)) == label)
            .collect();
        assert_eq!(labels.len(), 1, "one label {label}");
        let group = labels[0].name.strip_suffix(".X-ABLabel").unwrap();
        let grouped: Vec<_> = properties
            .iter()
            .filter(|p| p.name.starts_with(&format!("{group}.")) && !p.name.ends_with(".X-ABLabel"))
            .collect();
        assert_eq!(grouped.len(), 1, "one property in {group}");
        (group, grouped[0])
    }

    fn physical_lines(text: &str) -> Vec<&[u8]> {
        let body = text.strip_suffix("\r\n").expect("ends with CRLF");
        body.as_bytes()
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .collect()
    }

    /// CRLF only, every physical line ≤ 75 octets and valid UTF-8, continuations start with
    /// one space.
    fn assert_well_formed(text: &str) {
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at {i}");
            }
            if b == b'\r' {
                assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}");
            }
        }
        assert!(text.ends_with("END:VCARD\r\n"));
        for line in physical_lines(text) {
            assert!(
                line.len() <= 75,
                "{} octets: {:?}",
                line.len(),
                String::from_utf8_lossy(line)
            );
            assert!(!line.is_empty());
            std::str::from_utf8(line).expect("a physical line splits a character");
        }
    }

    #[test]
    fn v3_full_profile_parses_back_exactly() {
        let card = full_profile();
        let photo = jpeg();
        assert!(photo.len() > 200, "{} bytes", photo.len());
        let text = v3(&card, &urls(), Some(&photo));
        assert_well_formed(&text);
        assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//CallingCard//EN\r\n"));

        let props = parse_v3(&text);
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "VERSION",
                "PRODID",
                "FN",
                "N",
                "ORG",
                "TITLE",
                "EMAIL",
                "TEL",
                "item1.TEL",
                "item1.X-ABLabel",
                "item2.URL",
                "item2.X-ABLabel",
                "item3.URL",
                "item3.X-ABLabel",
                "item4.URL",
                "item4.X-ABLabel",
                "URL",
                "NOTE",
                "PHOTO",
                "UID",
            ]
        );
        for property in &props {
            assert!(property.value.is_some(), "empty {}", property.name);
        }

        assert_eq!(value(only(&props, "VERSION")), "3.0");
        assert_eq!(value(only(&props, "PRODID")), "-//CallingCard//EN");
        let fn_ = only(&props, "FN");
        assert!(params(fn_).is_empty());
        assert_eq!(unescape(value(fn_)), NAME);
        assert_eq!(
            components(value(only(&props, "N"))),
            ["Müller", "José Ñúñez", "", "", ""]
        );
        let org = value(only(&props, "ORG"));
        assert_eq!(org, "Acme\\, Inc\\; Ltd");
        assert_eq!(components(org), [COMPANY]);
        assert_eq!(
            unescape(value(only(&props, "TITLE"))),
            "Head of R&D, Europe"
        );

        let email = only(&props, "EMAIL");
        assert_eq!(params(email), [("TYPE", vec!["INTERNET", "WORK"])]);
        assert_eq!(value(email), "jose@acme.example");
        let tel = only(&props, "TEL");
        assert_eq!(params(tel), [("TYPE", vec!["WORK", "VOICE"])]);
        assert_eq!(value(tel), "+34 600 000 001");

        let (group, whatsapp) = labeled(&props, "WhatsApp");
        assert_eq!(whatsapp.name, format!("{group}.TEL"));
        assert_eq!(params(whatsapp), [("TYPE", vec!["CELL"])]);
        assert_eq!(value(whatsapp), "+34 600 000 002");

        let (_, page) = labeled(&props, "Business card");
        assert!(params(page).is_empty());
        assert_eq!(value(page), "https://c.example/card/acme/jose-1a2b3c");
        let (_, github) = labeled(&props, "GitHub");
        assert_eq!(value(github), "https://github.com/jose");
        let (_, linkedin) = labeled(&props, "LinkedIn");
        assert!(linkedin.name.ends_with(".URL"));
        // A URI value, not text: written as it is.
        assert_eq!(
            value(linkedin),
            "https://www.linkedin.com/in/jose?trk=a,b;c"
        );
        let website = only(&props, "URL");
        assert_eq!(params(website), [("TYPE", vec!["WORK"])]);
        assert_eq!(value(website), "https://acme.example/");

        let note = value(only(&props, "NOTE"));
        assert_eq!(
            note,
            "Line one\\, with comma\\; and semicolon\\nLine two \\\\ backslash"
        );
        assert_eq!(unescape(note), BIO);

        let photo_prop = only(&props, "PHOTO");
        assert_eq!(
            params(photo_prop),
            [("ENCODING", vec!["b"]), ("TYPE", vec!["JPEG"])]
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value(photo_prop))
            .expect("standard base64");
        assert_eq!(decoded, photo);

        assert_eq!(
            value(only(&props, "UID")),
            "urn:uuid:5f0c6a1e-2b7d-4c3a-9e8f-0a1b2c3d4e5f"
        );
    }

    #[test]
    fn v3_minimal_profile_has_no_empty_properties() {
        let mut card = CardProfile::minimal("acme", "cher", "Cher");
        // Present but blank, or nothing but control characters: absent too.
        card.job_title = Some("   ".to_owned());
        card.bio = Some("\u{7}\r\n\t".to_owned());
        card.email = Some(String::new());
        card.website = Some(String::new());
        let text = v3(&card, &urls(), None);
        assert_well_formed(&text);
        assert_eq!(
            text,
            "BEGIN:VCARD\r\n\
             VERSION:3.0\r\n\
             PRODID:-//CallingCard//EN\r\n\
             FN:Cher\r\n\
             N:;Cher;;;\r\n\
             ORG:Example Co\r\n\
             item1.URL:https://c.example/card/acme/jose-1a2b3c\r\n\
             item1.X-ABLabel:Business card\r\n\
             UID:urn:uuid:00000000-0000-0000-0000-000000000000\r\n\
             END:VCARD\r\n"
        );
        for property in parse_v3(&text) {
            assert!(property.value.is_some(), "empty {}", property.name);
        }
        // An empty photo is no photo.
        assert_eq!(v3(&card, &urls(), Some(&[])), text);
    }

    #[test]
    fn v3_splits_names_into_family_and_given() {
        for (name, family, given) in [
            ("Jane Smith", "Smith", "Jane"),
            ("  Jane   Ann\tSmith ", "Smith", "Jane Ann"),
            ("Cher", "", "Cher"),
            ("Anne, Jr; X", "X", "Anne, Jr;"),
        ] {
            let card = CardProfile::minimal("acme", "x", name);
            let props = parse_v3(&v3(&card, &urls(), None));
            assert_eq!(
                components(value(only(&props, "N"))),
                [family, given, "", "", ""],
                "{name}"
            );
        }
    }

    #[test]
    fn v3_text_cannot_break_out_of_its_property() {
        let mut card = CardProfile::minimal("acme", "x", "Eve\r\nEND:VCARD\r\nBEGIN:VCARD\u{0}");
        card.job_title = Some("Boss\rTEL:+1 666\u{1b}[31m".to_owned());
        card.bio = Some("a\r\nb\rc\nd\u{7f}\u{85}e".to_owned());
        let text = v3(&card, &urls(), None);
        assert_well_formed(&text);
        let props = parse_v3(&text);
        assert_eq!(
            unescape(value(only(&props, "FN"))),
            "Eve\nEND:VCARD\nBEGIN:VCARD"
        );
        assert_eq!(
            unescape(value(only(&props, "TITLE"))),
            "Boss\nTEL:+1 666[31m"
        );
        assert_eq!(unescape(value(only(&props, "NOTE"))), "a\nb\nc\nde");
        assert!(props.iter().all(|p| p.name != "TEL"));
    }

    #[test]
    fn v3_drops_links_that_are_not_http() {
        let mut card = CardProfile::minimal("acme", "x", "Jane Smith");
        card.social_links = vec![
            ("evil".to_owned(), "javascript:alert(1)".to_owned()),
            ("github".to_owned(), "https://github.com/jane".to_owned()),
            ("data".to_owned(), "data:text/html,<script>".to_owned()),
            ("spaced".to_owned(), "https://exa mple.com".to_owned()),
        ];
        card.website = Some("ftp://acme.example".to_owned());
        let text = v3(&card, &urls(), None);
        assert!(!text.contains("javascript"), "{text}");
        assert!(!text.contains("data:"), "{text}");
        assert!(!text.contains("ftp:"), "{text}");
        assert!(!text.contains("Evil") && !text.contains("Spaced"), "{text}");
        let props = parse_v3(&text);
        let urls: Vec<&str> = props
            .iter()
            .filter(|p| p.name.ends_with("URL"))
            .map(value)
            .collect();
        assert_eq!(
            urls,
            [
                "https://c.example/card/acme/jose-1a2b3c",
                "https://github.com/jane"
            ]
        );
        let labels = props
            .iter()
            .filter(|p| p.name.ends_with(".X-ABLabel"))
            .count();
        assert_eq!(labels, urls.len(), "no label without its URL");
    }

    #[test]
    fn v3_labels_social_links_by_service() {
        assert_eq!(social_label("linkedin").as_deref(), Some("LinkedIn"));
        assert_eq!(social_label(" YouTube ").as_deref(), Some("YouTube"));
        assert_eq!(
            social_label("stack-overflow").as_deref(),
            Some("Stack Overflow")
        );
        assert_eq!(social_label("x").as_deref(), Some("X"));
        assert_eq!(social_label("my blog").as_deref(), Some("My blog"));
        assert_eq!(social_label("ñandú").as_deref(), Some("Ñandú"));
        assert_eq!(social_label(" \u{7} "), None);
    }

    #[test]
    fn v3_folds_multibyte_text_without_splitting_characters() {
        for ch in ["é", "€", "😀"] {
            for prefix in ["", "x", "xx", "xxx"] {
                let bio = format!("{prefix}{}", ch.repeat(100));
                let mut card = CardProfile::minimal("acme", "x", "Jane Smith");
                card.bio = Some(bio.clone());
                let text = v3(&card, &urls(), None);
                assert_well_formed(&text);
                let lines = physical_lines(&text);
                let note = lines.iter().position(|l| l.starts_with(b"NOTE:")).unwrap();
                let mut continuations = 0;
                for line in &lines[note + 1..] {
                    if !line.starts_with(b" ") {
                        break;
                    }
                    continuations += 1;
                }
                assert!(continuations >= 2, "{ch} × 100 folds: {text}");
                // Packed: only the last physical line of the note may be short.
                for line in &lines[note..note + continuations] {
                    assert!(line.len() > 75 - ch.len(), "{} octets", line.len());
                }
                assert_eq!(unescape(value(only(&parse_v3(&text), "NOTE"))), bio);
            }
        }
    }

    #[test]
    fn v3_folds_away_from_spaces_and_escapes() {
        let mut card = CardProfile::minimal("acme", "x", "Jane Smith");
        let bio = "word, another; \\ yet more words and spaces\n".repeat(20);
        card.bio = Some(bio.clone());
        let text = v3(&card, &urls(), None);
        assert_well_formed(&text);
        for line in physical_lines(&text) {
            assert!(
                !line.ends_with(b" ") && !line.ends_with(b"\\"),
                "{:?}",
                String::from_utf8_lossy(line)
            );
            assert!(
                !line.starts_with(b"  "),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            unescape(value(only(&parse_v3(&text), "NOTE"))),
            bio.trim_end()
        );
    }

    #[test]
    fn fold_packs_lines_and_keeps_content() {
        let line = format!("PHOTO;ENCODING=b;TYPE=JPEG:{}", "A".repeat(500));
        let mut out = String::new();
        push_folded(&mut out, &line);
        let lines = physical_lines(&out);
        assert_eq!(lines[0].len(), 75);
        for l in &lines[1..lines.len() - 1] {
            assert_eq!(l.len(), 75);
            assert!(l.starts_with(b" "));
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), line);
        // Short lines are left alone.
        let mut out = String::new();
        push_folded(&mut out, &"x".repeat(75));
        assert_eq!(out, format!("{}\r\n", "x".repeat(75)));
    }

    #[test]
    fn file_names_are_ascii() {
        for (name, expected) in [
            ("Jane Smith", "Jane_Smith.vcf"),
            ("José Müller", "Jose_Muller.vcf"),
            (NAME, "Jose_Nunez_Muller.vcf"),
            ("Jose\u{301} Mu\u{308}ller", "Jose_Muller.vcf"),
            ("ÅSA ØSTBERG", "ASA_OSTBERG.vcf"),
            ("Jean-Luc Picard", "Jean-Luc_Picard.vcf"),
            ("Anne - Marie", "Anne-Marie.vcf"),
            ("Conan O'Brien", "Conan_OBrien.vcf"),
            ("Иван Петров", "Ivan_Petrov.vcf"),
            (
                r#"Jane "JJ" Doe/../etc\passwd"#,
                "Jane_JJ_Doe_etc_passwd.vcf",
            ),
            ("..hidden", "hidden.vcf"),
            ("a\u{202E}fdp.exe", "afdp_exe.vcf"),
            ("", "contact.vcf"),
            ("   \t\n ", "contact.vcf"),
            ("\u{0}\u{7}\u{1b}", "contact.vcf"),
            ("!!! ???", "contact.vcf"),
        ] {
            assert_eq!(file_name(name), expected, "{name:?}");
        }
        for name in ["张伟", "😀 Smile", "ß∑ƒ©", &"Ü".repeat(500)] {
            let file = file_name(name);
            let stem = file.strip_suffix(".vcf").unwrap();
            assert!(!stem.is_empty() && stem.len() <= 64, "{file}");
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{file}"
            );
        }
    }

    #[test]
    fn v4_round_trips_through_the_vcard_parser() {
        let card = full_profile();
        let photo = jpeg();
        let text = v4(&card, &urls(), Some(&photo));
        assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{text}");
        assert!(text.ends_with("END:VCARD\r\n"));
        let parsed = ::vcard::VCard::from_str(&text).expect("parses");
        parsed.validate().expect("valid");

        assert_eq!(parsed.formatted_names.len(), 1);
        assert_eq!(parsed.formatted_names[0].value, NAME);
        assert_eq!(parsed.names[0].value.family_names, ["Müller"]);
        assert_eq!(parsed.names[0].value.given_names, ["José Ñúñez"]);
        assert_eq!(parsed.organizations[0].value.name, COMPANY);
        assert!(parsed.organizations[0].value.units.is_empty());
        assert_eq!(parsed.titles[0].value, "Head of R&D, Europe");
        assert_eq!(parsed.emails.len(), 1);
        assert_eq!(parsed.emails[0].value.as_str(), "jose@acme.example");
        assert_eq!(parsed.notes[0].value, BIO);
        assert_eq!(parsed.product_ids[0].value, PRODID);
        let tels: Vec<String> = parsed
            .telephones
            .iter()
            .map(|t| match &t.value {
                ::vcard::values::TelValue::Text(text) => text.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tels, ["+34 600 000 001", "+34 600 000 002"]);
        let urls: Vec<&str> = parsed.urls.iter().map(|u| u.value.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://c.example/card/acme/jose-1a2b3c",
                "https://github.com/jose",
                "https://www.linkedin.com/in/jose?trk=a,b;c",
                "https://acme.example/",
            ]
        );
        let labels: Vec<String> = parsed.extensions.iter().map(|e| e.to_text()).collect();
        assert_eq!(labels, ["WhatsApp", "Business card", "GitHub", "LinkedIn"]);
        assert_eq!(
            parsed.extensions[3].group.as_ref().map(|g| g.as_str()),
            parsed.urls[2].group.as_ref().map(|g| g.as_str())
        );
        let photo_uri = parsed.photos[0].value.as_str();
        let data = photo_uri
            .strip_prefix("data:image/jpeg;base64,")
            .expect(photo_uri);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
            photo
        );
        match &parsed.uids[0].value {
            ::vcard::values::TextOrUri::Uri(uri) => {
                assert_eq!(
                    uri.as_str(),
                    "urn:uuid:5f0c6a1e-2b7d-4c3a-9e8f-0a1b2c3d4e5f"
                )
            }
            other => panic!("{other:?}"),
        }
        for line in physical_lines(&text) {
            assert!(line.len() <= 75);
        }
    }

    #[test]
    fn v4_minimal_and_hostile_profiles_stay_valid() {
        let card = CardProfile::minimal("acme", "cher", "Cher");
        let text = v4(&card, &urls(), None);
        let parsed = ::vcard::VCard::from_str(&text).expect("parses");
        parsed.validate().expect("valid");
        assert!(parsed.titles.is_empty() && parsed.emails.is_empty() && parsed.notes.is_empty());
        assert!(parsed.photos.is_empty() && parsed.telephones.is_empty());
        assert_eq!(parsed.names[0].value.given_names, ["Cher"]);
        assert!(parsed.names[0].value.family_names.is_empty());
        assert!(!text.contains(":\r\n"), "{text}");

        let mut card = CardProfile::minimal("acme", "x", "Eve\r\nEND:VCARD\u{0}");
        card.email = Some("not an email".to_owned());
        card.bio = Some("\u{1b}[31m\tred".to_owned());
        card.social_links = vec![("evil".to_owned(), "javascript:alert(1)".to_owned())];
        let text = v4(&card, &urls(), None);
        assert!(!text.contains("javascript"));
        let parsed = ::vcard::VCard::from_str(&text).expect("parses");
        parsed.validate().expect("valid");
        assert_eq!(parsed.formatted_names[0].value, "Eve\nEND:VCARD");
        assert!(
            parsed.emails.is_empty(),
            "an address the crate refuses is skipped"
        );
        assert_eq!(parsed.notes[0].value, "[31m red");
        assert_eq!(parsed.urls.len(), 1);
    }
}
