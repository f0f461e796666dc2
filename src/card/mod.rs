//! The public card: the page a QR scan opens, the QR code itself, the "save contact" vCard and
//! the photos they show. Everything here is pure rendering over a [`CardProfile`]; loading,
//! caching and HTTP live in `api::cards`.

pub mod budget;
pub mod cache;
pub mod color;
pub mod lead_form;
pub mod lead_token;
pub mod page;
pub mod photo;
pub mod qr;
pub mod social;
pub mod vcard;

use uuid::Uuid;

/// Everything the public may see of one employee's card, already validated on the way in
/// (URLs are http(s), colors are `#rgb`/`#rrggbb`), but never trusted by the renderers: every
/// field is escaped for its output format, and links are checked again before they become links.
#[derive(Clone, Debug, PartialEq)]
pub struct CardProfile {
    pub employee_id: Uuid,
    pub company_id: Uuid,
    pub company_slug: String,
    pub employee_slug: String,
    pub employee_name: String,
    pub company_name: String,
    pub job_title: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub bio: Option<String>,
    /// The company's website, `https://{domain}`, when the company has a domain.
    pub website: Option<String>,
    /// `(name, url)`, sorted by name, e.g. `("linkedin", "https://www.linkedin.com/in/jane")`.
    pub social_links: Vec<(String, String)>,
    /// Path of the uploaded photo, served by us, e.g. `/media/photos/{company_id}/{hash}.jpg`.
    pub photo_path: Option<String>,
    /// Path of the uploaded company logo, served by us, e.g. `/media/logos/{company_id}/{hash}.png`.
    pub logo_path: Option<String>,
    /// `#rrggbb` or `#rgb`, lowercase.
    pub brand_color: Option<String>,
}

/// The public URLs of one card: absolute ones for what leaves the page (QR code, vCard, JSON,
/// Open Graph tags), paths for what the page itself loads (so it works behind any host name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardUrls {
    /// `PUBLIC_BASE_URL`, without a trailing slash.
    pub base: String,
    /// The HTML card page, `{base}/card/{company}/{employee}`.
    pub page: String,
    /// What the QR code encodes: the page with the scan marker, `{page}?src=qr`.
    pub scan: String,
    pub qr_png: String,
    pub qr_svg: String,
    pub vcard: String,
    /// `/card/{company}/{employee}`.
    pub page_path: String,
    /// `/api/card/{company}/{employee}/qr.png`.
    pub qr_png_path: String,
    /// `/api/card/{company}/{employee}/qr.svg`.
    pub qr_svg_path: String,
    /// `/api/card/{company}/{employee}/vcard`.
    pub vcard_path: String,
    /// `/api/analytics/track?company_slug={company}&employee_slug={employee}`, where the page's
    /// buttons report taps.
    pub track_path: String,
}

/// Query marker of a visit that came from scanning the QR code (not from a shared link).
pub const SCAN_SOURCE: &str = "qr";

impl CardUrls {
    pub fn new(base_url: &str, company_slug: &str, employee_slug: &str) -> Self {
        // Slugs are `[a-z0-9-]` (a database constraint), so they need no escaping in a URL.
        let page_path = format!("/card/{company_slug}/{employee_slug}");
        let api_path = format!("/api/card/{company_slug}/{employee_slug}");
        Self {
            base: base_url.to_owned(),
            page: format!("{base_url}{page_path}"),
            scan: format!("{base_url}{page_path}?src={SCAN_SOURCE}"),
            qr_png: format!("{base_url}{api_path}/qr.png"),
            qr_png_path: format!("{api_path}/qr.png"),
            qr_svg: format!("{base_url}{api_path}/qr.svg"),
            vcard: format!("{base_url}{api_path}/vcard"),
            qr_svg_path: format!("{api_path}/qr.svg"),
            vcard_path: format!("{api_path}/vcard"),
            track_path: format!(
                "/api/analytics/track?company_slug={company_slug}&employee_slug={employee_slug}"
            ),
            page_path,
        }
    }

    /// `new(…).page` alone, for where only the page is wanted (an employee in a list): `new`
    /// formats a dozen URLs.
    pub fn page_url(base_url: &str, company_slug: &str, employee_slug: &str) -> String {
        format!("{base_url}/card/{company_slug}/{employee_slug}")
    }
}

impl CardProfile {
    /// A profile with every optional field empty, for tests.
    pub fn minimal(company_slug: &str, employee_slug: &str, employee_name: &str) -> Self {
        Self {
            employee_id: Uuid::nil(),
            company_id: Uuid::nil(),
            company_slug: company_slug.to_owned(),
            employee_slug: employee_slug.to_owned(),
            employee_name: employee_name.to_owned(),
            company_name: "Example Co".to_owned(),
            job_title: None,
            email: None,
            phone: None,
            whatsapp: None,
            bio: None,
            website: None,
            social_links: Vec::new(),
            photo_path: None,
            logo_path: None,
            brand_color: None,
        }
    }
}

/// A link from profile data that may be rendered as a link: http(s) only.
pub fn is_web_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_url_alone_is_the_page_of_all_urls() {
        assert_eq!(
            CardUrls::page_url("https://x.test", "acme", "jane-1a2b3c"),
            CardUrls::new("https://x.test", "acme", "jane-1a2b3c").page
        );
    }

    #[test]
    fn urls_of_a_card() {
        let urls = CardUrls::new("https://c.example", "acme", "jane-1a2b3c");
        assert_eq!(urls.page, "https://c.example/card/acme/jane-1a2b3c");
        assert_eq!(urls.scan, "https://c.example/card/acme/jane-1a2b3c?src=qr");
        assert_eq!(
            urls.qr_png,
            "https://c.example/api/card/acme/jane-1a2b3c/qr.png"
        );
        assert_eq!(
            urls.vcard,
            "https://c.example/api/card/acme/jane-1a2b3c/vcard"
        );
        assert_eq!(urls.qr_svg_path, "/api/card/acme/jane-1a2b3c/qr.svg");
    }

    #[test]
    fn only_http_links_are_links() {
        assert!(is_web_link("https://example.com/a"));
        assert!(is_web_link("HTTP://example.com"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert!(!is_web_link("data:text/html,hi"));
        assert!(!is_web_link("https://exa mple.com"));
        assert!(!is_web_link("//example.com"));
    }
}
