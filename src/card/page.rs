//! The public card page: the complete HTML a phone shows seconds after scanning a QR code.
//!
//! One request, no JavaScript needed, nothing loaded from anywhere but our own origin (photo,
//! logo, QR code, vCard are same-origin paths), one inline `<style>` and one constant inline
//! `<script>`, both allowed by hash in a strict Content-Security-Policy sent with the page.
//!
//! The markup is written with `maud`, which escapes every value it is given unless it is wrapped
//! in `PreEscaped`; only our own constants are (the style, the script, the icons). Maud rather
//! than askama: templates are Rust expressions checked at compile time, with no template files
//! to ship beside the binary, and the admin console is to render its pages with it too.
//!
//! Links from profile data are checked again ([`is_web_link`], plus our own checks for `tel:`,
//! `mailto:` and local paths) before they become an `href` or a `src`. The only profile value
//! that reaches the `<style>` block is the brand color, validated again here; nothing reaches
//! the `<script>`.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use maud::{Markup, PreEscaped, html};
use sha2::{Digest as _, Sha256};

use super::color::{Rgb, contrast_ratio};
use super::lead_form::{self, LeadForm};
use super::{CardProfile, CardUrls, is_web_link, social};

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
const LIGHT_TEXT: Rgb = Rgb::WHITE;
const DARK_TEXT: Rgb = Rgb(0x11, 0x11, 0x11);
/// Longest `og:description` taken from a bio, in characters.
const EXCERPT_CHARS: usize = 160;

/// The page's only script, identical for every card (so its CSP hash is a constant). It reports
/// taps on `[data-track]` elements to the body's `data-track-url` with `sendBeacon` (never
/// blocking or preventing the tap's own action), shows the Share button where the Web Share
/// API exists, and sends the "Share your contact" form without leaving the page: as JSON to
/// the form's own action, the thank-you note shown (`#lead-sent`) on success, the refusal's
/// `detail` shown (`#lead-error`) otherwise. When the request cannot be made at all, the form
/// is sent as a plain POST after all, as without JavaScript.
const SCRIPT: &str = "(function(){var d=document,n=navigator,u=d.body.getAttribute('data-track-url');\
d.addEventListener('click',function(e){var t=e.target;t=t&&t.closest?t.closest('[data-track]'):null;\
if(!t||!u||!n.sendBeacon)return;try{n.sendBeacon(u,new Blob([JSON.stringify({action:t.getAttribute('data-track'),\
link:t.getAttribute('data-link')||undefined})],{type:'application/json'}))}catch(x){}});\
var s=d.getElementById('share');if(s&&n.share){s.hidden=false;s.addEventListener('click',function(){\
var c=d.querySelector('link[rel=canonical]');try{n.share({title:d.title,url:c?c.href:location.href})\
.catch(function(){})}catch(x){}})}\
var f=d.querySelector('#lead form');if(f&&window.fetch&&window.FormData){f.addEventListener('submit',function(e){\
e.preventDefault();var b=d.getElementById('lead-send'),r=d.getElementById('lead-error'),o={};\
new FormData(f).forEach(function(v,k){if(k==='consent'||k==='send_vcard')o[k]=true;else if(v!==''||k==='name')o[k]=v});\
b.disabled=true;r.hidden=true;fetch(f.action,{method:'POST',credentials:'same-origin',\
headers:{'Content-Type':'application/json',Accept:'application/json'},body:JSON.stringify(o)}).then(function(x){\
return x.json().catch(function(){return{}}).then(function(j){if(x.ok){location.hash='lead-sent';\
d.getElementById('lead-sent').focus();return}b.disabled=false;\
r.textContent=j.detail||'Your contact could not be sent. Please try again later.';r.hidden=false;r.focus()})},\
function(){f.submit()})})}})();";

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
const ICON_HOME: &str =
    "<path d=\"m3 10 9-7 9 7v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z\"/><path d=\"M9 22V12h6v10\"/>";
const ICON_SHARE: &str = "<circle cx=\"18\" cy=\"5\" r=\"3\"/><circle cx=\"6\" cy=\"12\" r=\"3\"/><circle cx=\"18\" cy=\"19\" r=\"3\"/><path d=\"m8.6 13.5 6.8 4M15.4 6.5l-6.8 4\"/>";

/// `<!doctype html>` and its line break, lowercase as the rest of the markup.
const DOCTYPE: PreEscaped<&str> = PreEscaped("<!doctype html>\n");
/// The service's name, in the band of the pages that belong to no company.
const PRODUCT: &str = "CallingCard";

/// Renders the public page of one card.
pub fn render(card: &CardProfile, urls: &CardUrls) -> RenderedPage {
    render_with_lead_form(card, urls, None)
}

/// Renders the public page of one card, with its "Share your contact" form when the company
/// takes leads (the page then holds [`lead_form::STARTED_PLACEHOLDER`] once, for its handler).
pub fn render_with_lead_form(
    card: &CardProfile,
    urls: &CardUrls,
    lead: Option<&LeadForm>,
) -> RenderedPage {
    let brand = brand_color(card.brand_color.as_deref());
    let mut style = page_style(&brand);
    if lead.is_some() {
        style.push_str(lead_form::STYLE);
    }

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
    let open_graph = [
        ("og:type", "profile"),
        ("og:title", name),
        ("og:description", &description),
        ("og:url", &urls.page),
        ("og:image", &image),
        ("og:image:alt", &image_alt),
        ("og:site_name", company),
    ];
    let twitter = [
        ("twitter:card", "summary"),
        ("twitter:title", name),
        ("twitter:description", &description),
        ("twitter:image", &image),
        ("twitter:image:alt", &image_alt),
    ];

    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            "\n"
            head {
                "\n"
                (common_head(&page_title, &brand))
                meta name="description" content=(description); "\n"
                meta name="format-detection" content="telephone=no"; "\n"
                link rel="canonical" href=(urls.page); "\n"
                @for (property, content) in open_graph {
                    meta property=(property) content=(content); "\n"
                }
                @for (meta_name, content) in twitter {
                    meta name=(meta_name) content=(content); "\n"
                }
                style { (PreEscaped(&style)) } "\n"
            }
            "\n"
            body data-track-url=(urls.track_path) {
                "\n"
                div class="card" {
                    (band(company, logo))
                    "\n"
                    main {
                        "\n"
                        // The company's name is in the band when there is no logo to show it.
                        (who(name, title, logo.and(Some(company)), bio, photo))
                        "\n"
                        section class="actions" aria-label="Contact" {
                            "\n"
                            @for action in actions(card, urls) {
                                (action) "\n"
                            }
                        }
                        "\n"
                        @if let Some(form) = lead {
                            (lead_form::section(form, name))
                            "\n"
                        }
                        (share(urls))
                        "\n"
                    }
                    "\n"
                }
                "\n"
                script { (PreEscaped(SCRIPT)) } "\n"
            }
            "\n"
        }
        "\n"
    };

    // The lead form posts to our own origin; without it, nothing may be posted anywhere.
    let form_action = if lead.is_some() { "'self'" } else { "'none'" };
    let content_security_policy = format!(
        "default-src 'none'; img-src 'self' data:; style-src 'sha256-{}'; \
         script-src 'sha256-{}'; connect-src 'self'; base-uri 'none'; \
         form-action {form_action}; frame-ancestors 'none'",
        csp_hash(&style),
        csp_hash(SCRIPT)
    );
    RenderedPage {
        html: markup.into_string(),
        content_security_policy,
    }
}

/// The band across the top: the company's logo, or its name.
fn band(company: &str, logo: Option<&str>) -> Markup {
    html! {
        header class="band" {
            @match logo {
                Some(path) => img class="logo" src=(path) alt={ (company) " logo" } height="40";,
                None => span class="org" { (company) },
            }
        }
    }
}

/// Who the card is of: photo (or initials), name, title, company line, bio.
fn who(
    name: &str,
    title: Option<&str>,
    company: Option<&str>,
    bio: Option<&str>,
    photo: Option<&str>,
) -> Markup {
    html! {
        section class="who" {
            "\n"
            @match photo {
                Some(path) => {
                    img class="avatar" src=(path) alt={ "Photo of " (name) } width="128"
                        height="128";
                }
                None => div class="avatar ini" aria-hidden="true" { (initials(name)) },
            }
            "\n"
            h1 { (name) } "\n"
            @if let Some(title) = title {
                p class="role" { (title) } "\n"
            }
            @if let Some(company) = company.filter(|c| !c.is_empty()) {
                p class="co" { (company) } "\n"
            }
            @if let Some(bio) = bio {
                p class="bio" { (bio_html(bio)) } "\n"
            }
        }
    }
}

/// The QR code, for showing the card to the person next to you, and the Share button that the
/// script shows where the Web Share API exists.
fn share(urls: &CardUrls) -> Markup {
    html! {
        section class="qr" aria-labelledby="scan" {
            "\n"
            h2 id="scan" { "Scan to share" } "\n"
            img src=(urls.qr_svg_path) alt="QR code linking to this card" width="160" height="160";
            "\n"
            button type="button" class="btn" id="share" data-track="share" hidden {
                (icon(ICON_SHARE)) span class="l" { "Share" }
            }
            "\n"
        }
    }
}

/// The page a visitor gets for a card that does not exist (an old QR code, a mistyped link):
/// the card page's look, dark mode included, a clear message and a way on to the service's
/// home. Served with status 404; the same for every request, so it is rendered once.
pub fn render_not_found() -> &'static RenderedPage {
    static PAGE: LazyLock<RenderedPage> = LazyLock::new(|| {
        message_page(&Message {
            title: "Card not found",
            mark: "?",
            robots: Some("noindex"),
            lead: "This card does not exist or is no longer available.",
            body: "If someone gave you this link or QR code, ask them for their current card.",
            link: ("/", ICON_HOME, &format!("Go to {PRODUCT}")),
        })
    });
    &PAGE
}

/// The page a person gets when a card's "Share your contact" form refused what they sent:
/// `detail` says why in plain words (it is the error's `detail`), and a link leads back to the
/// card at `card_path` (the browser's Back keeps what they typed).
pub fn render_lead_refused(detail: &str, card_path: &str) -> RenderedPage {
    let back = format!("{card_path}#lead");
    message_page(&Message {
        title: "Your contact was not sent",
        mark: "!",
        robots: Some("noindex"),
        lead: detail,
        body: "Go back to keep what you typed, or open the card again.",
        link: (&back, ICON_HOME, "Back to the card"),
    })
}

/// A page of the service's own (no company's brand): a title, a short text and one link.
struct Message<'a> {
    title: &'a str,
    /// The letter or sign in the avatar circle.
    mark: &'a str,
    robots: Option<&'a str>,
    lead: &'a str,
    body: &'a str,
    /// Where to go on: the address, its icon and its label.
    link: (&'a str, &'static str, &'a str),
}

fn message_page(message: &Message<'_>) -> RenderedPage {
    let brand = DEFAULT_BRAND.to_owned();
    let style = page_style(&brand);
    let (href, link_icon, label) = message.link;
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            "\n"
            head {
                "\n"
                (common_head(message.title, &brand))
                @if let Some(robots) = message.robots {
                    meta name="robots" content=(robots); "\n"
                }
                style { (PreEscaped(&style)) } "\n"
            }
            "\n"
            body {
                "\n"
                div class="card" {
                    (band(PRODUCT, None))
                    "\n"
                    main {
                        "\n"
                        section class="who" {
                            "\n"
                            div class="avatar ini" aria-hidden="true" { (message.mark) } "\n"
                            h1 { (message.title) } "\n"
                            p class="role" { (message.lead) }
                            "\n"
                            p class="bio" { (message.body) }
                            "\n"
                        }
                        "\n"
                        section class="actions" {
                            "\n"
                            a class="btn primary" href=(href) {
                                (icon(link_icon)) span class="l" { (label) }
                            }
                            "\n"
                        }
                        "\n"
                    }
                    "\n"
                }
                "\n"
            }
            "\n"
        }
        "\n"
    };
    RenderedPage {
        html: markup.into_string(),
        // No script, no images, no requests: only its own style.
        content_security_policy: format!(
            "default-src 'none'; style-src 'sha256-{}'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
            csp_hash(&style)
        ),
    }
}

/// The first lines of every page's `<head>`.
fn common_head(title: &str, brand: &str) -> Markup {
    html! {
        meta charset="utf-8"; "\n"
        meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
        title { (title) } "\n"
        meta name="theme-color" content=(brand); "\n"
        meta name="referrer" content="strict-origin-when-cross-origin"; "\n"
    }
}

/// The text of a page's `<style>` block, whose hash its CSP allows: the per-card `:root` line
/// with `--brand` and `--on-brand`, then [`STYLE`]. `brand` is from [`brand_color`].
fn page_style(brand: &str) -> String {
    format!(
        ":root{{--brand:{brand};--on-brand:{}}}\n{STYLE}",
        text_on(brand)
    )
}

/// The buttons of the actions section: "Save contact" first and strongest, then the ways to
/// reach the person, then links, each site once.
fn actions(card: &CardProfile, urls: &CardUrls) -> Vec<Markup> {
    let mut actions = vec![button(&Button {
        href: &urls.vcard_path,
        track: "download_vcard",
        link: None,
        label: "Save contact",
        value: None,
        icon: ICON_SAVE,
        kind: Kind::Download,
    })];
    if let Some(phone) = non_empty(card.phone.as_deref()) {
        actions.push(match tel_href(phone) {
            Some(href) => button(&Button {
                href: &href,
                track: "call",
                link: None,
                label: "Call",
                value: Some(phone),
                icon: ICON_CALL,
                kind: Kind::Internal,
            }),
            None => plain("Phone", phone),
        });
    }
    if let Some(email) = non_empty(card.email.as_deref()) {
        actions.push(match mailto_href(email) {
            Some(href) => button(&Button {
                href: &href,
                track: "email",
                link: None,
                label: "Email",
                value: Some(email),
                icon: ICON_MAIL,
                kind: Kind::Internal,
            }),
            None => plain("Email", email),
        });
    }
    if let Some(href) = non_empty(card.whatsapp.as_deref()).and_then(whatsapp_href) {
        actions.push(button(&Button {
            href: &href,
            track: "whatsapp",
            link: None,
            label: "WhatsApp",
            value: None,
            icon: ICON_CHAT,
            kind: Kind::External,
        }));
    }
    for link in web_links(card) {
        actions.push(button(&Button {
            href: link.url,
            track: "link_click",
            link: Some(link.name),
            label: &link.label,
            value: Some(display_url(link.url)),
            icon: link.icon,
            kind: Kind::External,
        }));
    }
    actions
}

/// One link button of the page.
struct WebLink<'a> {
    url: &'a str,
    /// What a tap reports as `link`: `website`, or the social link's name.
    name: &'a str,
    label: String,
    icon: &'static str,
}

/// The company's website, then the social links in profile order: http(s) only, and each site
/// once. An employee's "website" link to the company's own site (`https://www.acme.example/`
/// beside `https://acme.example`) would otherwise be a second, identical "Website" row.
fn web_links(card: &CardProfile) -> Vec<WebLink<'_>> {
    let website = non_empty(card.website.as_deref())
        .filter(|url| is_web_link(url))
        .map(|url| WebLink {
            url,
            name: "website",
            label: "Website".to_owned(),
            icon: ICON_GLOBE,
        });
    let social = card.social_links.iter().filter_map(|(name, url)| {
        let url = url.trim();
        is_web_link(url).then(|| {
            let label = link_label(name);
            // A link the person named "website" is one, whatever the company's is.
            let icon = if label == "Website" {
                ICON_GLOBE
            } else {
                ICON_LINK
            };
            WebLink {
                url,
                name,
                label,
                icon,
            }
        })
    });
    let mut seen: Vec<String> = Vec::new();
    website
        .into_iter()
        .chain(social)
        .filter(|link| {
            let site = same_site_key(link.url);
            let new = !seen.contains(&site);
            seen.push(site);
            new
        })
        .collect()
}

/// What two links to the same page have in common: the URL without its scheme, a leading
/// `www.` or a trailing `/`, the host lowercased (paths are case-sensitive, hosts are not).
fn same_site_key(url: &str) -> String {
    let shown = display_url(url);
    let (host, path) = shown.split_at(shown.find(['/', '?', '#']).unwrap_or(shown.len()));
    format!("{}{path}", host.to_ascii_lowercase())
}

/// The value of a CSP `'sha256-…'` source for an inline block's exact text.
fn csp_hash(text: &str) -> String {
    BASE64.encode(Sha256::digest(text.as_bytes()))
}

/// The brand color, lowercase, if it is `#rgb` or `#rrggbb`; otherwise the default.
pub fn brand_color(raw: Option<&str>) -> String {
    match raw {
        Some(color) if Rgb::parse_css(color).is_some() => color.to_ascii_lowercase(),
        _ => DEFAULT_BRAND.to_owned(),
    }
}

/// `#ffffff` or `#111111`, whichever contrasts more with a valid `#rgb`/`#rrggbb` color
/// (anything else counts as black).
pub fn text_on(color: &str) -> Rgb {
    let background = Rgb::parse_css(color).unwrap_or(Rgb::BLACK);
    if contrast_ratio(background, LIGHT_TEXT) >= contrast_ratio(background, DARK_TEXT) {
        LIGHT_TEXT
    } else {
        DARK_TEXT
    }
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

/// The label of a social link's button: the one the saved contact uses too
/// ([`social::label`]), or "Link" for a name with nothing in it.
fn link_label(name: &str) -> String {
    social::label(name).unwrap_or_else(|| "Link".to_owned())
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
fn bio_html(bio: &str) -> Markup {
    let bio = bio.replace("\r\n", "\n").replace('\r', "\n");
    html! {
        @for (i, line) in bio.split('\n').enumerate() {
            @if i > 0 { br; }
            (line)
        }
    }
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

/// An inline icon: one of the `ICON_*` constants (our own markup) in its `<svg>`.
fn icon(paths: &'static str) -> Markup {
    html! {
        svg class="i" viewBox="0 0 24 24" aria-hidden="true" focusable="false" {
            (PreEscaped(paths))
        }
    }
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

fn button(b: &Button<'_>) -> Markup {
    let class = match b.kind {
        Kind::Download => "btn primary",
        Kind::Internal | Kind::External => "btn",
    };
    // The server records vCard downloads itself; a beacon as well would count them twice.
    let track = (b.kind != Kind::Download).then_some(b.track);
    let external = b.kind == Kind::External;
    html! {
        a class=(class) href=(b.href) data-track=[track] data-link=[b.link]
            download[b.kind == Kind::Download]
            target=[external.then_some("_blank")] rel=[external.then_some("noopener noreferrer")] {
            (icon(b.icon))
            span class="t" {
                span class="l" { (b.label) }
                @if let Some(value) = b.value {
                    span class="v" { (value) }
                }
            }
        }
    }
}

/// A contact detail that cannot safely be a link, shown as text.
fn plain(label: &str, value: &str) -> Markup {
    html! {
        p class="plain" { span class="l" { (label) } span class="v" { (value) } }
    }
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
        // Attributes are always double-quoted, so an apostrophe stays inside its value as it is
        // and a quote is escaped.
        assert!(html.contains("alt=\"O'Brien &quot;Co&quot; logo\""));
        assert!(html.contains("<p class=\"co\">O'Brien &quot;Co&quot;</p>"));
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
        // What the page relies on maud for: text and attribute values come out escaped.
        let text = "<a href=\"x\">'&'</a>";
        assert_eq!(
            html! { (text) }.into_string(),
            "&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;"
        );
        assert_eq!(
            html! { b title=(text) {} }.into_string(),
            "<b title=\"&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;\"></b>"
        );
        assert_eq!(link_label("linkedin"), "LinkedIn");
        assert_eq!(link_label("GitHub"), "GitHub");
        assert_eq!(link_label("x"), "X");
        assert_eq!(link_label("twitter"), "Twitter");
        assert_eq!(link_label("mastodon"), "Mastodon");
        assert_eq!(link_label("élan"), "Élan");
        assert_eq!(link_label(" \u{7}"), "Link");
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
        assert_eq!(bio_html("a\r\nb\rc<").into_string(), "a<br>b<br>c&lt;");
        let long = "word ".repeat(100);
        let short = excerpt(&long, EXCERPT_CHARS);
        assert!(short.chars().count() <= EXCERPT_CHARS && short.ends_with('\u{2026}'));
    }

    /// The label and `href` of every link button, in page order.
    fn link_buttons(html: &str) -> Vec<(String, String)> {
        html.split("<a class=\"btn\" href=\"")
            .skip(1)
            .filter(|a| a.contains("data-track=\"link_click\""))
            .map(|a| {
                let href = &a[..a.find('"').unwrap()];
                let label = a.split("<span class=\"l\">").nth(1).unwrap();
                (
                    label[..label.find('<').unwrap()].to_owned(),
                    href.to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_site_is_linked_once() {
        let mut card = full();
        card.website = Some("https://acme.example".to_owned());
        card.social_links = vec![
            ("github".to_owned(), "https://github.com/jane".to_owned()),
            ("website".to_owned(), "https://www.acme.example/".to_owned()),
            ("homepage".to_owned(), "http://ACME.example".to_owned()),
            ("docs".to_owned(), "https://acme.example/Docs".to_owned()),
            ("docs2".to_owned(), "https://acme.example/docs".to_owned()),
            ("gh".to_owned(), "https://github.com/jane/".to_owned()),
        ];
        let html = render(&card, &urls()).html;
        assert_eq!(
            link_buttons(&html),
            [
                ("Website", "https://acme.example"),
                ("GitHub", "https://github.com/jane"),
                ("Docs", "https://acme.example/Docs"),
                ("Docs2", "https://acme.example/docs"),
            ]
            .map(|(label, href)| (label.to_owned(), href.to_owned())),
            "{html}"
        );
        assert_eq!(html.matches(ICON_GLOBE).count(), 1);

        // Without a company website, the person's own "website" link is the Website row, with
        // the website's icon; another site of theirs is kept beside the company's.
        card.website = None;
        card.social_links = vec![("website".to_owned(), "https://jane.example".to_owned())];
        let html = render(&card, &urls()).html;
        assert_eq!(
            link_buttons(&html),
            [("Website".to_owned(), "https://jane.example".to_owned())]
        );
        assert_eq!(html.matches(ICON_GLOBE).count(), 1);
        assert_eq!(html.matches(ICON_LINK).count(), 0);
        card.website = Some("https://acme.example".to_owned());
        let html = render(&card, &urls()).html;
        assert_eq!(link_buttons(&html).len(), 2, "{html}");
    }

    #[test]
    fn company_name_is_shown_once() {
        fn shown(html: &str, text: &str) -> usize {
            html[html.find("<body").unwrap()..].matches(text).count()
        }
        // Without a logo the band carries the name, and the line under the title does not.
        let card = CardProfile::minimal("acme", "jane", "Jane");
        let html = render(&card, &urls()).html;
        assert_eq!(shown(&html, "Example Co"), 1, "{html}");
        assert!(html.contains("<span class=\"org\">Example Co</span>"));
        assert!(!html.contains("class=\"co\""));
        // With one, the logo is the band (the name only as its alt text) and the line says it.
        let mut card = full();
        card.logo_path = Some("/media/logos/1/def.png".to_owned());
        let html = render(&card, &urls()).html;
        assert_eq!(shown(&html, "<p class=\"co\">Acme &amp; Sons</p>"), 1);
        assert_eq!(shown(&html, "alt=\"Acme &amp; Sons logo\""), 1);
        assert_eq!(shown(&html, "Acme &amp; Sons"), 2);
        assert!(!html.contains("class=\"org\""));
        // An unusable logo is no logo.
        card.logo_path = Some("//evil.example/logo.png".to_owned());
        let html = render(&card, &urls()).html;
        assert_eq!(shown(&html, "Acme &amp; Sons"), 1, "{html}");
    }

    #[test]
    fn not_found_page_has_the_card_look_and_a_way_on() {
        let page = render_not_found();
        let html = &page.html;
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        for expected in [
            "<meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<title>Card not found</title>",
            "<meta name=\"robots\" content=\"noindex\">",
            "<meta name=\"theme-color\" content=\"#1f2937\">",
            "<h1>Card not found</h1>",
            "This card does not exist or is no longer available.",
            "<a class=\"btn primary\" href=\"/\">",
            "<span class=\"l\">Go to CallingCard</span>",
            "<span class=\"org\">CallingCard</span>",
        ] {
            assert!(html.contains(expected), "missing {expected:?} in\n{html}");
        }
        // The card page's styles, dark mode included, allowed by hash; nothing else runs or loads.
        let style = block(html, "style");
        assert_eq!(style, page_style(DEFAULT_BRAND));
        assert!(style.contains("@media (prefers-color-scheme:dark)"));
        let csp = &page.content_security_policy;
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(
            csp.contains(&format!("style-src 'sha256-{}'", csp_hash(style))),
            "{csp}"
        );
        for directive in [
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{csp}"
        );
        assert!(!html.contains("<script") && !html.contains(" src="));
        assert!(!html.contains(" style="));
        assert_eq!(attr_values(html, "href"), ["/"]);
        // Rendered once: every visitor of a dead link gets the same bytes.
        assert!(std::ptr::eq(page, render_not_found()));
    }
}
