//! The console's static files, compiled into the binary: served same-origin under
//! `/assets/<name>.<hash>.<ext>`, so a name changes whenever its content does and every answer
//! can be cached `immutable`. Each is gzipped once, at first use, not per request.

use std::{collections::HashMap, sync::LazyLock};

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::Path,
};
use sha2::{Digest, Sha256};

/// htmx, from its npm package (`scripts/refresh-htmx` fetches it and checks the registry's
/// integrity). Pinned here too: a copy changed by hand fails `htmx_is_the_pinned_release`.
pub const HTMX_VERSION: &str = "2.0.11";
pub const HTMX_SHA256: &str = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717";

/// Every static file: its logical name (what templates ask for), its content type and bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htmx.min.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console/console.js"),
    ),
];

struct Asset {
    content_type: &'static str,
    raw: &'static [u8],
    gzip: Vec<u8>,
}

struct Assets {
    /// Logical name → served path (`/assets/console.3f2a9c01d4.css`).
    paths: HashMap<&'static str, String>,
    /// Served file name → the file.
    files: HashMap<String, Asset>,
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut paths = HashMap::new();
    let mut files = HashMap::new();
    for &(name, content_type, raw) in FILES {
        let hash = crate::hex::lower(&Sha256::digest(raw)[..5]);
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        let served = format!("{stem}.{hash}.{ext}");
        paths.insert(name, format!("/assets/{served}"));
        files.insert(
            served,
            Asset {
                content_type,
                raw,
                gzip: gzip(raw),
            },
        );
    }
    Assets { paths, files }
});

fn gzip(raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(raw);
    encoder.finish().unwrap_or_default()
}

/// The served path of the static file `name` (`"console.css"`): what a page links to.
///
/// # Panics
/// For a name that is not one of [`FILES`]: a template naming a file that does not exist is a
/// programming error, caught by every test that renders the page.
pub fn path(name: &str) -> &'static str {
    match ASSETS.paths.get(name) {
        Some(path) => path,
        None => panic!("no static file named {name}"),
    }
}

/// `GET /assets/:file`: a fingerprinted file, gzipped when the client accepts it.
#[handler]
pub fn serve(req: &Request, Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.files.get(&file) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("Not found");
    };
    let accepts_gzip = req
        .header(header::ACCEPT_ENCODING)
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let builder = Response::builder()
        .content_type(asset.content_type)
        .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
        .header(header::VARY, "Accept-Encoding")
        .header("X-Content-Type-Options", "nosniff");
    if accepts_gzip {
        builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(asset.gzip.clone())
    } else {
        builder.body(asset.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htmx_is_the_pinned_release() {
        let htmx = FILES.iter().find(|f| f.0 == "htmx.js").unwrap().2;
        assert_eq!(crate::hex::lower(&Sha256::digest(htmx)), HTMX_SHA256);
    }

    #[test]
    fn every_file_has_a_fingerprinted_path_and_a_gzip_that_inflates_back() {
        use std::io::Read;
        for &(name, _, raw) in FILES {
            let served = path(name).trim_start_matches("/assets/");
            let asset = &ASSETS.files[served];
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&asset.gzip[..])
                .read_to_end(&mut inflated)
                .unwrap();
            assert_eq!(inflated, raw, "{name}");
        }
    }
}
