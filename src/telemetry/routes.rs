//! Which route a request path belongs to, as its template (`/api/company/:company_id/employees`),
//! for metric labels: a label never holds a tenant's id, a slug or any other value from the path,
//! so the number of series stays fixed whatever strangers ask for.
//!
//! poem-openapi does not say which of its operations matched, and errors (404, 405, a 422 from a
//! path parameter) never reach an operation at all. The templates come from the OpenAPI spec
//! instead, the one list of the API's paths there is, plus the few routes beside the API.
//!
//! Templates are written as the router writes them, parameters as `:name` (the spec's `{name}`
//! is rewritten): braces in a label value are valid, but common text-format parsers trip on them.

use std::sync::Arc;

/// What a path that is no route of ours is counted under.
pub const UNMATCHED: &str = "unmatched";

/// The routes beside the JSON API (see `startup::routes`), as templates. A template ending in
/// `/*` covers everything below it.
pub const PAGE_ROUTES: &[&str] = &[
    "/",
    "/card/:company_slug/:employee_slug",
    "/media/:kind/:company_id/:file",
    "/docs",
    "/docs/*",
    "/openapi.json",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
    /// `*`, last: any remaining segments, at least one.
    Rest,
}

#[derive(Debug)]
struct Template {
    label: Arc<str>,
    segments: Vec<Segment>,
}

impl Template {
    /// `/a/:b/*`, or as the spec writes it, `/a/{b}`.
    fn parse(template: &str) -> Self {
        let mut label = String::with_capacity(template.len());
        let mut segments = Vec::new();
        for segment in template.trim_start_matches('/').split('/') {
            label.push('/');
            let parameter = segment
                .strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .or_else(|| segment.strip_prefix(':'));
            match (segment, parameter) {
                ("*", _) => {
                    label.push('*');
                    segments.push(Segment::Rest);
                }
                (_, Some(name)) => {
                    label.push(':');
                    label.push_str(name);
                    segments.push(Segment::Parameter);
                }
                (literal, None) => {
                    label.push_str(literal);
                    segments.push(Segment::Literal(literal.to_owned()));
                }
            }
        }
        Self {
            label: label.into(),
            segments,
        }
    }

    /// How well `path` (split on `/`, without the leading one) matches: `None` when it does not,
    /// else one rank per segment (literal 2, parameter 1, rest 0) to compare matches by.
    fn rank(&self, path: &[&str]) -> Option<Vec<u8>> {
        let mut rank = Vec::with_capacity(self.segments.len());
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Rest => {
                    return (path.len() > i && !path[i].is_empty()).then(|| {
                        rank.push(0);
                        rank
                    });
                }
                Segment::Literal(literal) if path.get(i) == Some(&literal.as_str()) => rank.push(2),
                Segment::Parameter if path.get(i).is_some_and(|s| !s.is_empty()) => rank.push(1),
                _ => return None,
            }
        }
        (path.len() == self.segments.len()).then_some(rank)
    }
}

/// Every route template of the service, and the matching of paths to them.
#[derive(Debug)]
pub struct RouteTemplates {
    templates: Vec<Template>,
    unmatched: Arc<str>,
}

impl RouteTemplates {
    /// The API's paths (relative to `api_prefix`, as the spec lists them) and the page routes.
    pub fn new<'a>(
        api_prefix: &str,
        api_paths: impl IntoIterator<Item = &'a str>,
        page_routes: &[&str],
    ) -> Self {
        let api = api_paths
            .into_iter()
            .map(|path| Template::parse(&format!("{api_prefix}{path}")));
        let pages = page_routes.iter().map(|route| Template::parse(route));
        Self {
            templates: api.chain(pages).collect(),
            unmatched: UNMATCHED.into(),
        }
    }

    /// From an OpenAPI spec served under `api_prefix`, plus [`PAGE_ROUTES`].
    pub fn of_spec(api_prefix: &str, spec: &serde_json::Value) -> Self {
        let paths = spec["paths"].as_object();
        let paths = paths.into_iter().flat_map(|paths| paths.keys());
        Self::new(api_prefix, paths.map(String::as_str), PAGE_ROUTES)
    }

    /// The template `path` belongs to, or [`UNMATCHED`]. As the router does, a literal segment
    /// wins over a parameter in the same place (`/card/{a}/{b}/vcard` over a parameter there).
    pub fn template_of(&self, path: &str) -> Arc<str> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        self.templates
            .iter()
            .filter_map(|template| template.rank(&segments).map(|rank| (rank, template)))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map_or_else(|| self.unmatched.clone(), |(_, t)| t.label.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> RouteTemplates {
        RouteTemplates::new(
            "/api",
            [
                "/company",
                "/company/{company_id}",
                "/company/{company_id}/employees",
                "/card/{company_slug}/{employee_slug}",
                "/card/{company_slug}/{employee_slug}/vcard",
                "/card/{company_slug}/{employee_slug}/{other}",
                "/health",
                "/health/live",
            ],
            PAGE_ROUTES,
        )
    }

    #[test]
    fn concrete_paths_are_named_by_their_template() {
        let t = templates();
        let company = "7a4f0c2e-5d1b-4d8e-9a1c-0b6f2e3d4c5a";
        for (path, template) in [
            (
                format!("/api/company/{company}/employees"),
                "/api/company/:company_id/employees",
            ),
            (
                format!("/api/company/{company}"),
                "/api/company/:company_id",
            ),
            ("/api/company".into(), "/api/company"),
            ("/api/health/live".into(), "/api/health/live"),
            (
                "/api/card/acme/jane-doe/vcard".into(),
                "/api/card/:company_slug/:employee_slug/vcard",
            ),
            (
                "/api/card/acme/jane-doe/qr.png".into(),
                "/api/card/:company_slug/:employee_slug/:other",
            ),
            (
                "/card/acme/jane-doe".into(),
                "/card/:company_slug/:employee_slug",
            ),
            (
                format!("/media/photos/{company}/abc.jpg"),
                "/media/:kind/:company_id/:file",
            ),
            ("/".into(), "/"),
            ("/docs".into(), "/docs"),
            ("/docs/swagger-ui.css".into(), "/docs/*"),
            ("/openapi.json".into(), "/openapi.json"),
        ] {
            assert_eq!(&*t.template_of(&path), template, ":path");
        }
    }

    #[test]
    fn a_literal_segment_wins_wherever_it_stands() {
        let t = RouteTemplates::new("", ["/a/{x}/c", "/a/b/{y}", "/{z}/b/c"], &[]);
        assert_eq!(&*t.template_of("/a/b/c"), "/a/b/:y");
        assert_eq!(&*t.template_of("/a/q/c"), "/a/:x/c");
        assert_eq!(&*t.template_of("/q/b/c"), "/:z/b/c");
    }

    #[test]
    fn anything_else_is_unmatched() {
        let t = templates();
        for path in [
            "/metrics",
            "/api",
            "/api/",
            "/api/company/",
            "/api/company//employees",
            "/api/company/x/employees/extra",
            "/api/nope",
            "/card/acme",
            "/card/acme/",
            "/docs/",
            "/wp-login.php",
        ] {
            assert_eq!(&*t.template_of(path), UNMATCHED, "{path:?}");
        }
    }

    #[test]
    fn the_spec_of_the_service_gives_every_api_path() {
        let spec = crate::api::spec_value();
        let t = RouteTemplates::of_spec("/api", &spec);
        let paths = spec["paths"].as_object().unwrap();
        assert!(paths.len() > 10);
        for path in paths.keys() {
            // The template itself, taken as a concrete path, names itself (as the router
            // writes it).
            let concrete = format!("/api{path}");
            let template = concrete.replace('{', ":").replace('}', "");
            assert_eq!(&*t.template_of(&concrete), template);
        }
        assert_eq!(
            &*t.template_of("/api/card/acme/jane/qr.png"),
            "/api/card/:company_slug/:employee_slug/qr.png"
        );
        assert_eq!(
            &*t.template_of(
                "/api/analytics/company/00000000-0000-0000-0000-000000000000/timeseries"
            ),
            "/api/analytics/company/:company_id/timeseries"
        );
    }
}
