//! The public card page: the complete HTML a phone shows seconds after scanning a QR code.
//!
//! One request, no JavaScript needed, nothing loaded from anywhere but our own origin (photo,
//! logo, QR code, vCard are same-origin paths), one inline `<style>` and one constant inline
//! `<script>`, both allowed by hash in a strict Content-Security-Policy sent with the page.
//!
//! Every value from the profile is escaped with [`escape_html`], and links from profile data are
//! checked again ([`is_web_link`], plus our own checks for `tel:`, `mailto:` and local paths)
//! before they become an `href` or a `src`. The only profile value that reaches the `<style>`
//! block is the brand color, validated again here; nothing reaches the `<script>`.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};

use super::{CardProfile, CardUrls, is_web_link};

/// A rendered card page and the policy it must be served with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedPage {
    pub html: String,
    /// The value of the Content-Security-Policy header this page must be sent with.
    pub content_security_policy: String,
}

/// The header band's color when the company has none (or an invalid one).
const DEFAULT_BRAND: &str = "#1f2937";
/// Text colors on the brand color, chosen by contrast.
const LIGHT_TEXT: &str = "#ffffff";
const DARK_TEXT: &str = "#111111";
/// Longest `og:description` taken from a bio, in characters.
const EXCERPT_CHARS: usize = 160;

/// The page's only script, identical for every card (so its CSP hash is a constant). It reports
/// taps on `[data-track]` elements to the body's `data-track-url` with `sendBeacon` (never
/// blocking or preventing the tap's own action) and shows the Share button where the Web Share
/// API exists.
const SCRIPT: &str = "(function(){var d=document,n=navigator,u=d.body.getAttribute('data-track-url');\
d.addEventListener('click',function(e){var t=e.target;t=t&&t.closest?t.closest('[data-track]'):null;\
if(!t||!u||!n.sendBeacon)return;try{n.sendBeacon(u,new Blob([JSON.stringify({action:t.getAttribute('data-track'),\
link:t.getAttribute('data-link')||undefined})],{type:'application/json'}))}catch(x){}});\
var s=d.getElementById('share');if(s&&n.share){s.hidden=false;s.addEventListener('click',function(){\
var c=d.querySelector('link[rel=canonical]');try{n.share({title:d.title,url:c?c.href:location.href})\
.catch(function(){})}catch(x){}})}})();";

/// The page's styles, after the per-card `:root` line that sets `--brand` and `--on-brand`.
const STYLE: &str = "\
:root{--bg:#eef0f3;--card:#fff;--text:#111827;--muted:#4b5563;--btn:#f3f4f6;--line:#e2e5e9;--focus:#2563eb;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0b0f14;--card:#161b22;--text:#f3f4f6;--muted:#a1a9b5;--btn:#21262d;--line:#30363d;--focus:#93c5fd}}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);font:18px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif;word-wrap:break-word;overflow-wrap:anywhere}
img,svg{max-width:100%}
.card{max-width:480px;min-height:100vh;margin:0 auto;background:var(--card);overflow:hidden}
@media (min-width:520px){body{padding:32px 16px}.card{min-height:0;border-radius:24px;box-shadow:0 12px 40px rgba(0,0,0,.14)}}
.band{display:flex;justify-content:center;min-height:136px;padding:22px 20px 76px;background:var(--brand);color:var(--on-brand);text-align:center}
.logo{display:block;height:40px;width:auto;max-width:70%;object-fit:contain}
.org{font-size:1.1rem;font-weight:700;letter-spacing:.02em}
.who{padding:0 24px;text-align:center}
.avatar{display:block;width:128px;height:128px;margin:-64px auto 14px;border:4px solid var(--card);border-radius:50%;object-fit:cover;background:var(--line)}
.ini{display:flex;align-items:center;justify-content:center;background:var(--brand);color:var(--on-brand);font-size:44px;font-weight:700;letter-spacing:.03em;user-select:none}
h1{margin:0;font-size:1.75rem;line-height:1.2}
.role{margin:6px 0 0;font-size:1.1rem;color:var(--muted)}
.co{margin:2px 0 0;font-weight:600}
.bio{margin:16px 0 0}
.actions{display:grid;grid-template-columns:minmax(0,1fr);gap:12px;padding:24px 20px 8px}
.btn{display:flex;align-items:center;gap:14px;width:100%;min-height:56px;padding:10px 18px;border:1px solid var(--line);border-radius:14px;background:var(--btn);color:var(--text);font:inherit;font-weight:600;line-height:1.3;text-align:left;text-decoration:none;cursor:pointer;transition:transform .12s ease,filter .12s ease}
@media (hover:hover){.btn:hover{filter:brightness(.95)}}
.btn:active{transform:scale(.98)}
.primary{justify-content:center;min-height:60px;border-color:var(--brand);background:var(--brand);color:var(--on-brand);font-size:1.1rem}
.t{display:flex;flex-direction:column;min-width:0}
.v{color:var(--muted);font-size:.9rem;font-weight:400}
.plain{display:flex;flex-direction:column;padding:10px 18px;border:1px dashed var(--line);border-radius:14px;line-height:1.3}
.plain .l{font-weight:600}
.i{flex:none;width:24px;height:24px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.qr{margin:16px 20px 0;padding:20px 0 28px;border-top:1px solid var(--line);text-align:center}
h2{margin:0;color:var(--muted);font-size:.85rem;letter-spacing:.08em;text-transform:uppercase}
.qr img{display:block;box-sizing:content-box;width:160px;height:160px;margin:14px auto 18px;padding:10px;border-radius:12px;background:#fff}
.qr .btn{justify-content:center;max-width:320px;margin:0 auto}
a:focus-visible,button:focus-visible{outline:3px solid var(--focus);outline-offset:3px}
@media (prefers-reduced-motion:reduce){*,*::before,*::after{transition:none!important;animation:none!important;scroll-behavior:auto!important}}
";

// Icons (inline SVG, not resources): stroked 24×24 outlines, drawn with `currentColor`.
const ICON_SAVE: &str = "<path d=\"M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2\"/><circle cx=\"8.5\" cy=\"7\" r=\"4\"/><path d=\"M20 8v6M23 11h-6\"/>";
const ICON_CALL: &str = "<path d=\"M22 16.9v3a2 2 0 0 1-2.2 2 19.8 19.8 0 0 1-8.6-3.1 19.5 19.5 0 0 1-6-6A19.8 19.8 0 0 1 2.1 4.2 2 2 0 0 1 4.1 2h3a2 2 0 0 1 2 1.7c.1 1 .4 1.9.7 2.8a2 2 0 0 1-.5 2.1L8.1 9.9a16 16 0 0 0 6 6l1.3-1.3a2 2 0 0 1 2.1-.4c.9.3 1.8.6 2.8.7a2 2 0 0 1 1.7 2z\"/>";
const ICON_MAIL: &str =
    "<rect x=\"2\" y=\"4\" width=\"20\" height=\"16\" rx=\"2\"/><path d=\"m22 6-10 7L2 6\"/>";
const ICON_CHAT: &str = "<path d=\"M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8z\"/>";
const ICON_GLOBE: &str = "<circle cx=\"12\" cy=\"12\" r=\"10\"/><path d=\"M2 12h20M12 2a15.3 15.3 0 0 1 4 10 15.3 15.3 0 0 1-4 10 15.3 15.3 0 0 1-4-10 15.3 15.3 0 0 1 4-10z\"/>";
const ICON_LINK: &str = "<path d=\"M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7\"/><path d=\"M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7\"/>";
const ICON_SHARE: &str = "<circle cx=\"18\" cy=\"5\" r=\"3\"/><circle cx=\"6\" cy=\"12\" r=\"3\"/><circle cx=\"18\" cy=\"19\" r=\"3\"/><path d=\"m8.6 13.5 6.8 4M15.4 6.5l-6.8 4\"/>";

/// Renders the public page of one card.
pub fn render(card: &CardProfile, urls: &CardUrls) -> RenderedPage {
    let brand = brand_color(card.brand_color.as_deref());
    let on_brand = text_on(&brand);
    let style = format!(":root{{--brand:{brand};--on-brand:{on_brand}}}\n{STYLE}");

    let name = card.employee_name.trim();
    let company = card.company_name.trim();
    let title = non_empty(card.job_title.as_deref());
    let bio = non_empty(card.bio.as_deref());
    let photo = non_empty(card.photo_path.as_deref()).and_then(local_path);
    let logo = non_empty(card.logo_path.as_deref()).and_then(local_path);

    let page_title = if company.is_empty() {
        name.to_owned()
    } else {
        format!("{name} \u{2013} {company}")
    };
    let description = match (title, bio) {
        (Some(title), _) if company.is_empty() => title.to_owned(),
        (Some(title), _) => format!("{title} at {company}"),
        (None, Some(bio)) => excerpt(bio, EXCERPT_CHARS),
        (None, None) if company.is_empty() => name.to_owned(),
        (None, None) => company.to_owned(),
    };
    let (image, image_alt) = match photo {
        Some(path) => (format!("{}{path}", urls.base), format!("Photo of {name}")),
        None => (
            urls.qr_png.clone(),
            "QR code linking to this card".to_owned(),
        ),
    };

    let mut h = String::with_capacity(STYLE.len() + SCRIPT.len() + 6 * 1024);
    h.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(h, "<title>{}</title>", escape_html(&page_title));
    let _ = writeln!(
        h,
        "<meta name=\"description\" content=\"{}\">",
        escape_html(&description)
    );
    let _ = writeln!(h, "<meta name=\"theme-color\" content=\"{brand}\">");
    h.push_str("<meta name=\"referrer\" content=\"strict-origin-when-cross-origin\">\n");
    h.push_str("<meta name=\"format-detection\" content=\"telephone=no\">\n");
    let _ = writeln!(
        h,
        "<link rel=\"canonical\" href=\"{}\">",
        escape_html(&urls.page)
    );
    for (property, content) in [
        ("og:type", "profile"),
        ("og:title", name),
        ("og:description", &description),
        ("og:url", &urls.page),
        ("og:image", &image),
        ("og:image:alt", &image_alt),
        ("og:site_name", company),
    ] {
        let _ = writeln!(
            h,
            "<meta property=\"{property}\" content=\"{}\">",
            escape_html(content)
        );
    }
    for (meta, content) in [
        ("twitter:card", "summary"),
        ("twitter:title", name),
        ("twitter:description", &description),
        ("twitter:image", &image),
        ("twitter:image:alt", &image_alt),
    ] {
        let _ = writeln!(
            h,
            "<meta name=\"{meta}\" content=\"{}\">",
            escape_html(content)
        );
    }
    let _ = writeln!(h, "<style>{style}</style>\n</head>");
    let _ = writeln!(
        h,
        "<body data-track-url=\"{}\">\n<div class=\"card\">",
        escape_html(&urls.track_path)
    );

    // The band: logo, or the company's name.
    h.push_str("<header class=\"band\">");
    match logo {
        Some(path) => {
            let _ = write!(
                h,
                "<img class=\"logo\" src=\"{}\" alt=\"{} logo\" height=\"40\">",
                escape_html(path),
                escape_html(company)
            );
        }
        None => {
            let _ = write!(h, "<span class=\"org\">{}</span>", escape_html(company));
        }
    }
    h.push_str("</header>\n<main>\n<section class=\"who\">\n");

    // Who: photo or initials, name, title, company, bio.
    match photo {
        Some(path) => {
            let _ = writeln!(
                h,
                "<img class=\"avatar\" src=\"{}\" alt=\"Photo of {}\" width=\"128\" height=\"128\">",
                escape_html(path),
                escape_html(name)
            );
        }
        None => {
            let _ = writeln!(
                h,
                "<div class=\"avatar ini\" aria-hidden=\"true\">{}</div>",
                escape_html(&initials(name))
            );
        }
    }
    let _ = writeln!(h, "<h1>{}</h1>", escape_html(name));
    if let Some(title) = title {
        let _ = writeln!(h, "<p class=\"role\">{}</p>", escape_html(title));
    }
    if !company.is_empty() {
        let _ = writeln!(h, "<p class=\"co\">{}</p>", escape_html(company));
    }
    if let Some(bio) = bio {
        let _ = writeln!(h, "<p class=\"bio\">{}</p>", bio_html(bio));
    }
    h.push_str("</section>\n<section class=\"actions\" aria-label=\"Contact\">\n");

    // One-tap actions, "Save contact" first and strongest.
    push_button(
        &mut h,
        &Button {
            href: &urls.vcard_path,
            track: "download_vcard",
            link: None,
            label: "Save contact",
            value: None,
            icon: ICON_SAVE,
            kind: Kind::Download,
        },
    );
    if let Some(phone) = non_empty(card.phone.as_deref()) {
        match tel_href(phone) {
            Some(href) => push_button(
                &mut h,
                &Button {
                    href: &href,
                    track: "call",
                    link: None,
                    label: "Call",
                    value: Some(phone),
                    icon: ICON_CALL,
                    kind: Kind::Internal,
                },
            ),
            None => push_plain(&mut h, "Phone", phone),
        }
    }
    if let Some(email) = non_empty(card.email.as_deref()) {
        match mailto_href(email) {
            Some(href) => push_button(
                &mut h,
                &Button {
                    href: &href,
                    track: "email",
                    link: None,
                    label: "Email",
                    value: Some(email),
                    icon: ICON_MAIL,
                    kind: Kind::Internal,
                },
            ),
            None => push_plain(&mut h, "Email", email),
        }
    }
    if let Some(href) = non_empty(card.whatsapp.as_deref()).and_then(whatsapp_href) {
        push_button(
            &mut h,
            &Button {
                href: &href,
                track: "whatsapp",
                link: None,
                label: "WhatsApp",
                value: None,
                icon: ICON_CHAT,
                kind: Kind::External,
            },
        );
    }
    if let Some(website) = non_empty(card.website.as_deref()).filter(|url| is_web_link(url)) {
        push_button(
            &mut h,
            &Button {
                href: website,
                track: "link_click",
                link: Some("website"),
                label: "Website",
                value: Some(display_url(website)),
                icon: ICON_GLOBE,
                kind: Kind::External,
            },
        );
    }
    for (link_name, url) in &card.social_links {
        let url = url.trim();
        if !is_web_link(url) {
            continue;
        }
        let label = match social_label(link_name) {
            label if label.is_empty() => "Link".to_owned(),
            label => label,
        };
        push_button(
            &mut h,
            &Button {
                href: url,
                track: "link_click",
                link: Some(link_name),
                label: &label,
                value: Some(display_url(url)),
                icon: ICON_LINK,
                kind: Kind::External,
            },
        );
    }
    h.push_str("</section>\n");

    // The QR code, for showing the card to the person next to you.
    let _ = write!(
        h,
        "<section class=\"qr\" aria-labelledby=\"scan\">\n<h2 id=\"scan\">Scan to share</h2>\n\
         <img src=\"{}\" alt=\"QR code linking to this card\" width=\"160\" height=\"160\">\n\
         <button type=\"button\" class=\"btn\" id=\"share\" data-track=\"share\" hidden>{}\
         <span class=\"l\">Share</span></button>\n</section>\n",
        escape_html(&urls.qr_svg_path),
        icon(ICON_SHARE)
    );
    let _ = write!(
        h,
        "</main>\n</div>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    );

    let content_security_policy = format!(
        "default-src 'none'; img-src 'self' data:; style-src 'sha256-{}'; \
         script-src 'sha256-{}'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        csp_hash(&style),
        csp_hash(SCRIPT)
    );
    RenderedPage {
        html: h,
        content_security_policy,
    }
}

/// Escapes text for HTML text and double- or single-quoted attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The value of a CSP `'sha256-…'` source for an inline block's exact text.
fn csp_hash(text: &str) -> String {
    BASE64.encode(Sha256::digest(text.as_bytes()))
}

/// The brand color, lowercase, if it is `#rgb` or `#rrggbb`; otherwise the default.
fn brand_color(raw: Option<&str>) -> String {
    match raw {
        Some(c)
            if c.starts_with('#')
                && matches!(c.len(), 4 | 7)
                && c[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            c.to_ascii_lowercase()
        }
        _ => DEFAULT_BRAND.to_owned(),
    }
}

/// `#ffffff` or `#111111`, whichever contrasts more with a valid `#rgb`/`#rrggbb` color.
fn text_on(color: &str) -> &'static str {
    let background = relative_luminance(color);
    let contrast = |text: f64| (background.max(text) + 0.05) / (background.min(text) + 0.05);
    if contrast(relative_luminance(LIGHT_TEXT)) >= contrast(relative_luminance(DARK_TEXT)) {
        LIGHT_TEXT
    } else {
        DARK_TEXT
    }
}

/// WCAG 2 relative luminance of a `#rgb`/`#rrggbb` color (0 for anything else).
fn relative_luminance(color: &str) -> f64 {
    let hex = color.trim_start_matches('#');
    let channel = |s: &str| u8::from_str_radix(s, 16).unwrap_or(0);
    let (r, g, b) = match hex.len() {
        3 if hex.is_ascii() => {
            let c = |i: usize| channel(&hex[i..=i]) * 17;
            (c(0), c(1), c(2))
        }
        6 if hex.is_ascii() => (
            channel(&hex[0..2]),
            channel(&hex[2..4]),
            channel(&hex[4..6]),
        ),
        _ => (0, 0, 0),
    };
    let linear = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// The trimmed value, if any is left.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A same-origin path (`/…`, not `//…`), fit for a `src`; anything else is not loaded.
fn local_path(path: &str) -> Option<&str> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    ok.then_some(path)
}

/// `tel:` with only a leading `+` and the digits, when there are digits.
fn tel_href(phone: &str) -> Option<String> {
    let mut number = String::new();
    for c in phone.chars() {
        if c.is_ascii_digit() || (c == '+' && number.is_empty()) {
            number.push(c);
        }
    }
    number
        .bytes()
        .any(|b| b.is_ascii_digit())
        .then(|| format!("tel:{number}"))
}

/// `https://wa.me/{digits}`, when there are digits.
fn whatsapp_href(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("https://wa.me/{digits}"))
}

/// `mailto:` for a plain address (`[A-Za-z0-9._%+-]` around one `@`); anything else, which could
/// smuggle headers (`?bcc=`) or markup into the link, is not linked.
fn mailto_href(email: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let (local, domain) = email.split_once('@')?;
    let plain = !local.is_empty()
        && !domain.is_empty()
        && local.chars().all(allowed)
        && domain.chars().all(allowed)
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    plain.then(|| format!("mailto:{}", email.replace('%', "%25")))
}

/// A link as shown under its label: without the scheme, a leading `www.` or a trailing `/`.
fn display_url(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = match rest.get(..4) {
        Some(www) if www.eq_ignore_ascii_case("www.") => &rest[4..],
        _ => rest,
    };
    rest.strip_suffix('/').unwrap_or(rest)
}

/// The label of a social link: its usual spelling for well-known ones, otherwise the name with
/// its first letter capitalized.
fn social_label(name: &str) -> String {
    let name = name.trim();
    let known = match name.to_ascii_lowercase().as_str() {
        "linkedin" => "LinkedIn",
        "x" => "X",
        "twitter" => "Twitter",
        "github" => "GitHub",
        "gitlab" => "GitLab",
        "youtube" => "YouTube",
        "tiktok" => "TikTok",
        "whatsapp" => "WhatsApp",
        "facebook" => "Facebook",
        "instagram" => "Instagram",
        "stackoverflow" | "stack_overflow" => "Stack Overflow",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Up to two initials: of the first and the last word of the name.
fn initials(name: &str) -> String {
    let mut letters = name
        .split_whitespace()
        .filter_map(|word| word.chars().find(|c| c.is_alphanumeric()));
    let first = letters.next();
    let last = letters.next_back();
    let initials: String = first
        .into_iter()
        .chain(last)
        .flat_map(char::to_uppercase)
        .collect();
    if initials.is_empty() {
        "?".to_owned()
    } else {
        initials
    }
}

/// The bio as HTML: escaped, line breaks as `<br>`.
fn bio_html(bio: &str) -> String {
    escape_html(&bio.replace("\r\n", "\n").replace('\r', "\n")).replace('\n', "<br>")
}

/// The first `max` characters of the text, whitespace collapsed, with `…` when cut.
fn excerpt(text: &str, max: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let cut: String = collapsed.chars().take(max - 1).collect();
    format!("{}\u{2026}", cut.trim_end())
}

fn icon(paths: &str) -> String {
    format!(
        "<svg class=\"i\" viewBox=\"0 0 24 24\" aria-hidden=\"true\" focusable=\"false\">{paths}</svg>"
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The vCard: same origin, downloaded.
    Download,
    /// `tel:`/`mailto:`: handled by the phone, same tab.
    Internal,
    /// Another site: new tab, no opener, no referrer.
    External,
}

struct Button<'a> {
    /// Unescaped, already checked.
    href: &'a str,
    track: &'static str,
    link: Option<&'a str>,
    label: &'a str,
    value: Option<&'a str>,
    icon: &'static str,
    kind: Kind,
}

fn push_button(h: &mut String, b: &Button<'_>) {
    let class = match b.kind {
        Kind::Download => "btn primary",
        Kind::Internal | Kind::External => "btn",
    };
    let _ = write!(h, "<a class=\"{class}\" href=\"{}\"", escape_html(b.href));
    // The server records vCard downloads itself; a beacon as well would count them twice.
    if b.kind != Kind::Download {
        let _ = write!(h, " data-track=\"{}\"", b.track);
    }
    if let Some(link) = b.link {
        let _ = write!(h, " data-link=\"{}\"", escape_html(link));
    }
    match b.kind {
        Kind::Download => h.push_str(" download"),
        Kind::Internal => {}
        Kind::External => h.push_str(" target=\"_blank\" rel=\"noopener noreferrer\""),
    }
    let _ = write!(
        h,
        ">{}<span class=\"t\"><span class=\"l\">{}</span>",
        icon(b.icon),
        escape_html(b.label)
    );
    if let Some(value) = b.value {
        let _ = write!(h, "<span class=\"v\">{}</span>", escape_html(value));
    }
    h.push_str("</span></a>\n");
}

/// A contact detail that cannot safely be a link, shown as text.
fn push_plain(h: &mut String, label: &str, value: &str) {
    let _ = writeln!(
        h,
        "<p class=\"plain\"><span class=\"l\">{}</span><span class=\"v\">{}</span></p>",
        escape_html(label),
        escape_html(value)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> CardUrls {
        CardUrls::new("https://c.example", "acme", "jane-1a2b3c")
    }

    fn full() -> CardProfile {
        let mut card = CardProfile::minimal("acme", "jane-1a2b3c", "Jane Doe");
        card.company_name = "Acme & Sons".to_owned();
        card.job_title = Some("Head of Sales".to_owned());
        card.email = Some("jane.doe+cards@acme.example".to_owned());
        card.phone = Some("+1 (555) 010-9999".to_owned());
        card.whatsapp = Some("+44 7700 900123".to_owned());
        card.bio = Some("Line one\nLine <two>".to_owned());
        card.website = Some("https://acme.example".to_owned());
        card.social_links = vec![
            ("github".to_owned(), "https://github.com/jane".to_owned()),
            (
                "linkedin".to_owned(),
                "https://www.linkedin.com/in/jane".to_owned(),
            ),
            (
                "mastodon".to_owned(),
                "https://mastodon.social/@jane".to_owned(),
            ),
        ];
        card.photo_path = Some("/media/photos/1/abc.jpg".to_owned());
        card.logo_path = Some("/media/logos/1/def.png".to_owned());
        card.brand_color = Some("#1a237e".to_owned());
        card
    }

    /// The exact text between `<{tag}>` and `</{tag}>`.
    fn block<'a>(html: &'a str, tag: &str) -> &'a str {
        let open = format!("<{tag}>");
        let start = html.find(&open).expect("opening tag") + open.len();
        let end = start
            + html[start..]
                .find(&format!("</{tag}>"))
                .expect("closing tag");
        &html[start..end]
    }

    /// Every value of the attribute in the page.
    fn attr_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!(" {attr}=\"");
        html.match_indices(&needle)
            .map(|(i, _)| {
                let rest = &html[i + needle.len()..];
                &rest[..rest.find('"').expect("closing quote")]
            })
            .collect()
    }

    #[test]
    fn full_profile_renders_everything() {
        let page = render(&full(), &urls());
        let html = &page.html;
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        for expected in [
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<title>Jane Doe \u{2013} Acme &amp; Sons</title>",
            "<meta name=\"theme-color\" content=\"#1a237e\">",
            "<meta name=\"referrer\" content=\"strict-origin-when-cross-origin\">",
            "<link rel=\"canonical\" href=\"https://c.example/card/acme/jane-1a2b3c\">",
            "<meta property=\"og:type\" content=\"profile\">",
            "<meta property=\"og:title\" content=\"Jane Doe\">",
            "<meta property=\"og:description\" content=\"Head of Sales at Acme &amp; Sons\">",
            "<meta property=\"og:url\" content=\"https://c.example/card/acme/jane-1a2b3c\">",
            "<meta property=\"og:image\" content=\"https://c.example/media/photos/1/abc.jpg\">",
            "<meta property=\"og:site_name\" content=\"Acme &amp; Sons\">",
            "<meta name=\"twitter:card\" content=\"summary\">",
            "<meta name=\"twitter:title\" content=\"Jane Doe\">",
            "<meta name=\"twitter:description\" content=\"Head of Sales at Acme &amp; Sons\">",
            "<meta name=\"twitter:image\" content=\"https://c.example/media/photos/1/abc.jpg\">",
            "<img class=\"logo\" src=\"/media/logos/1/def.png\" alt=\"Acme &amp; Sons logo\"",
            "<img class=\"avatar\" src=\"/media/photos/1/abc.jpg\" alt=\"Photo of Jane Doe\" width=\"128\" height=\"128\">",
            "<h1>Jane Doe</h1>",
            "<p class=\"role\">Head of Sales</p>",
            "<p class=\"co\">Acme &amp; Sons</p>",
            "<p class=\"bio\">Line one<br>Line &lt;two&gt;</p>",
            "href=\"tel:+15550109999\" data-track=\"call\"",
            "href=\"mailto:jane.doe+cards@acme.example\" data-track=\"email\"",
            "href=\"https://wa.me/447700900123\" data-track=\"whatsapp\" target=\"_blank\" rel=\"noopener noreferrer\"",
            "href=\"https://acme.example\" data-track=\"link_click\" data-link=\"website\" target=\"_blank\" rel=\"noopener noreferrer\"",
            "href=\"https://github.com/jane\" data-track=\"link_click\" data-link=\"github\"",
            "href=\"https://www.linkedin.com/in/jane\" data-track=\"link_click\" data-link=\"linkedin\"",
            "data-link=\"mastodon\"",
            "<span class=\"l\">GitHub</span>",
            "<span class=\"l\">LinkedIn</span>",
            "<span class=\"l\">Mastodon</span>",
            "<span class=\"l\">Call</span>",
            "<span class=\"l\">Email</span>",
            "<span class=\"l\">WhatsApp</span>",
            "<span class=\"l\">Website</span>",
            "<a class=\"btn primary\" href=\"/api/card/acme/jane-1a2b3c/vcard\" download>",
            "<span class=\"l\">Save contact</span>",
            "<img src=\"/api/card/acme/jane-1a2b3c/qr.svg\" alt=\"QR code linking to this card\" width=\"160\" height=\"160\">",
            "Scan to share",
            "id=\"share\" data-track=\"share\" hidden>",
            "<body data-track-url=\"/api/analytics/track?company_slug=acme&amp;employee_slug=jane-1a2b3c\">",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in\n{html}");
        }
        // No initials when there is a photo.
        assert!(!html.contains("class=\"avatar ini\""));
        // Save contact comes before the other actions.
        assert!(html.find("Save contact").unwrap() < html.find("data-track=\"call\"").unwrap());
        assert!(
            !html.contains("data-track=\"download_vcard\""),
            "counted by the server"
        );
    }

    #[test]
    fn user_values_cannot_inject_markup() {
        let mut card = full();
        card.employee_name = "<script>alert(1)</script>".to_owned();
        card.job_title = Some("\"><img src=x onerror=alert(1)>".to_owned());
        card.bio = Some("</style><script>alert(2)</script>".to_owned());
        card.company_name = "O'Brien \"Co\"".to_owned();
        card.social_links = vec![("<b>x</b>".to_owned(), "https://x.com/jane".to_owned())];
        let html = render(&card, &urls()).html;

        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x onerror"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
        assert!(html.contains("&lt;/style&gt;&lt;script&gt;alert(2)"));
        assert!(!html.contains("</style><script>"));
        assert!(!html.contains("<b>x</b>"));
        assert!(html.contains("data-link=\"&lt;b&gt;x&lt;/b&gt;\""));
        assert!(html.contains("O&#39;Brien &quot;Co&quot;"));
        assert_eq!(html.to_ascii_lowercase().matches("<script").count(), 1);
        assert_eq!(html.matches("<style").count(), 1);
        // The payloads stay out of the blocks allowed by hash.
        assert!(!block(&html, "style").contains("alert"));
        assert_eq!(block(&html, "script"), SCRIPT);
    }

    #[test]
    fn only_web_links_become_links() {
        let mut card = full();
        card.website = Some(" JaVaScRiPt:alert(3)".to_owned());
        card.social_links = vec![
            ("evil".to_owned(), "javascript:alert(1)".to_owned()),
            (
                "data".to_owned(),
                "data:text/html,<script>alert(2)</script>".to_owned(),
            ),
            ("mixed".to_owned(), " JaVaScRiPt:alert(4)".to_owned()),
            ("vb".to_owned(), "vbscript:msgbox(1)".to_owned()),
            ("ok".to_owned(), "https://ok.example/x".to_owned()),
        ];
        card.photo_path = Some("javascript:alert(5)".to_owned());
        card.logo_path = Some("//evil.example/logo.png".to_owned());
        let html = render(&card, &urls()).html;
        for href in attr_values(&html, "href")
            .into_iter()
            .chain(attr_values(&html, "src"))
        {
            let lower = href.trim().to_ascii_lowercase();
            for scheme in ["javascript:", "data:", "vbscript:"] {
                assert!(!lower.starts_with(scheme), "{href}");
            }
            assert!(!lower.starts_with("//"), "{href}");
        }
        let lower = html.to_ascii_lowercase();
        assert!(!lower.contains("javascript:"));
        assert!(!lower.contains("vbscript:"));
        assert!(!html.contains("data:text/html"));
        assert!(html.contains("href=\"https://ok.example/x\""));
        assert!(!html.contains("data-link=\"website\""));
        // Without a usable photo or logo: initials and the company name.
        assert!(html.contains("class=\"avatar ini\""));
        assert!(html.contains("<span class=\"org\">"));
    }

    #[test]
    fn csp_hashes_match_the_inline_blocks() {
        let page = render(&full(), &urls());
        let csp = &page.content_security_policy;
        let style = BASE64.encode(Sha256::digest(block(&page.html, "style").as_bytes()));
        let script = BASE64.encode(Sha256::digest(block(&page.html, "script").as_bytes()));
        assert!(
            csp.contains(&format!("style-src 'sha256-{style}'")),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("script-src 'sha256-{script}'")),
            "{csp}"
        );
        assert!(csp.starts_with("default-src 'none';"));
        for directive in [
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert!(!csp.contains("unsafe-eval"));
        // Nothing CSP would block: no inline handlers, no style attributes.
        assert!(!page.html.contains(" style="));
        assert!(!page.html.to_ascii_lowercase().contains(" onclick="));
        // The script is the same for every card, the style changes with the brand only.
        let other = render(&CardProfile::minimal("b", "c", "Other"), &urls());
        assert_eq!(block(&other.html, "script"), block(&page.html, "script"));
    }

    #[test]
    fn no_external_resources() {
        for card in [full(), CardProfile::minimal("acme", "jane", "Jane")] {
            let html = render(&card, &urls()).html;
            let sources = attr_values(&html, "src");
            assert!(!sources.is_empty());
            for src in sources {
                assert!(src.starts_with('/') && !src.starts_with("//"), "{src}");
            }
            assert!(!html.contains("<link rel=\"stylesheet\""));
            assert!(!html.contains("@import"));
            assert!(!html.contains("url("));
            assert!(!html.contains("<script src"));
            assert_eq!(html.matches("<link ").count(), 1, "only the canonical link");
        }
    }

    #[test]
    fn brand_text_color_follows_contrast() {
        assert_eq!(text_on("#ffeb3b"), DARK_TEXT);
        assert_eq!(text_on("#1a237e"), LIGHT_TEXT);
        assert_eq!(text_on("#fff"), DARK_TEXT);
        assert_eq!(text_on("#000"), LIGHT_TEXT);
        assert_eq!(text_on(DEFAULT_BRAND), LIGHT_TEXT);

        let mut card = full();
        card.brand_color = Some("#FFEB3B".to_owned());
        let style = render(&card, &urls()).html;
        assert!(block(&style, "style").starts_with(":root{--brand:#ffeb3b;--on-brand:#111111}"));

        card.brand_color = Some("#1a237e".to_owned());
        let html = render(&card, &urls()).html;
        assert!(block(&html, "style").starts_with(":root{--brand:#1a237e;--on-brand:#ffffff}"));

        card.brand_color = Some("red; } body { display:none".to_owned());
        let html = render(&card, &urls()).html;
        assert!(block(&html, "style").starts_with(":root{--brand:#1f2937;--on-brand:#ffffff}"));
        assert!(html.contains("<meta name=\"theme-color\" content=\"#1f2937\">"));
        assert!(!html.contains("red;"));
        assert!(!html.contains("body { display"));

        assert_eq!(brand_color(Some("#abc")), "#abc");
        assert_eq!(brand_color(Some("#abcd")), DEFAULT_BRAND);
        assert_eq!(brand_color(Some("#ggg")), DEFAULT_BRAND);
        assert_eq!(brand_color(Some("#é12")), DEFAULT_BRAND);
        assert_eq!(brand_color(None), DEFAULT_BRAND);
    }

    #[test]
    fn minimal_profile_has_no_empty_buttons() {
        let mut card = CardProfile::minimal("acme", "jane", "Jane van Doe");
        card.email = Some("   ".to_owned());
        let page = render(&card, &urls());
        let html = &page.html;
        assert!(html.contains("<div class=\"avatar ini\" aria-hidden=\"true\">JD</div>"));
        assert!(html.contains("<h1>Jane van Doe</h1>"));
        assert!(html.contains("<span class=\"org\">Example Co</span>"));
        // Only "Save contact" (counted by the server) and the (hidden) Share button are actions.
        assert_eq!(html.matches("data-track=").count(), 1);
        assert!(html.contains("Save contact"));
        for absent in [
            "tel:",
            "mailto:",
            "wa.me",
            "class=\"role\"",
            "class=\"bio\"",
            "Photo of",
        ] {
            assert!(!html.contains(absent), "{absent}");
        }
        assert!(html.contains(
            "<meta property=\"og:image\" content=\"https://c.example/api/card/acme/jane-1a2b3c/qr.png\">"
        ));
        assert!(html.contains("<meta property=\"og:description\" content=\"Example Co\">"));
        // The page itself, before profile data, stays small.
        assert!(html.len() < 12 * 1024, "{} bytes", html.len());
    }

    #[test]
    fn phone_and_whatsapp_hrefs() {
        assert_eq!(
            tel_href("+1 (555) 010-9999").as_deref(),
            Some("tel:+15550109999")
        );
        assert_eq!(tel_href("0 55 ++ 12").as_deref(), Some("tel:05512"));
        assert_eq!(tel_href("call me"), None);
        assert_eq!(
            whatsapp_href("+44 7700 900123").as_deref(),
            Some("https://wa.me/447700900123")
        );
        assert_eq!(whatsapp_href("n/a"), None);

        let mut card = CardProfile::minimal("acme", "jane", "Jane");
        card.phone = Some("ask reception".to_owned());
        card.whatsapp = Some("none".to_owned());
        let html = render(&card, &urls()).html;
        assert!(!html.contains("tel:"));
        assert!(!html.contains("wa.me"));
        assert!(html.contains("<span class=\"v\">ask reception</span>"));
    }

    #[test]
    fn only_plain_emails_are_linked() {
        assert_eq!(
            mailto_href("a.b+c@x.example").as_deref(),
            Some("mailto:a.b+c@x.example")
        );
        assert_eq!(
            mailto_href("a%b@x.example").as_deref(),
            Some("mailto:a%25b@x.example")
        );
        for bad in [
            "a@x.example?bcc=all@x.example",
            "a@b@c",
            "@x.example",
            "a@",
            "a b@x.example",
            "a@x.example\"><script>",
            "no-at-sign",
        ] {
            assert_eq!(mailto_href(bad), None, "{bad}");
        }
        let mut card = CardProfile::minimal("acme", "jane", "Jane");
        card.email = Some("a@x.example?bcc=all@x.example".to_owned());
        let html = render(&card, &urls()).html;
        assert!(!html.contains("mailto:"));
        assert!(html.contains("<span class=\"v\">a@x.example?bcc=all@x.example</span>"));
    }

    #[test]
    fn helpers() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(social_label("linkedin"), "LinkedIn");
        assert_eq!(social_label("GitHub"), "GitHub");
        assert_eq!(social_label("x"), "X");
        assert_eq!(social_label("twitter"), "Twitter");
        assert_eq!(social_label("mastodon"), "Mastodon");
        assert_eq!(social_label("élan"), "Élan");
        assert_eq!(initials("Madonna"), "M");
        assert_eq!(initials("  émile   zola "), "ÉZ");
        assert_eq!(initials("<>"), "?");
        assert_eq!(
            display_url("https://www.linkedin.com/in/jane/"),
            "linkedin.com/in/jane"
        );
        assert_eq!(local_path("/media/a.jpg"), Some("/media/a.jpg"));
        assert_eq!(local_path("//evil.example/a.jpg"), None);
        assert_eq!(local_path("/\\evil.example"), None);
        assert_eq!(local_path("https://evil.example/a.jpg"), None);
        assert_eq!(bio_html("a\r\nb\rc<"), "a<br>b<br>c&lt;");
        let long = "word ".repeat(100);
        let short = excerpt(&long, EXCERPT_CHARS);
        assert!(short.chars().count() <= EXCERPT_CHARS && short.ends_with('\u{2026}'));
    }
}
