//! The QR code of a card's public URL, rendered in-process as PNG or SVG.
//!
//! Pure: no I/O, the same input always gives the same bytes, so the HTTP handlers can cache the
//! output by `(url, options)`. Options come from a query string and are validated here, where the
//! rules that keep a code scannable (quiet zone, contrast, whole-pixel modules) live.

use std::fmt;

pub use super::color::Rgb;
use super::color::contrast_ratio;

/// Error correction level: how much of the code may be damaged (or covered) and still scan,
/// about 7 %, 15 %, 25 % and 30 %. Higher levels make a denser code for the same URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ecc {
    L,
    M,
    Q,
    H,
}

impl Ecc {
    fn level(self) -> qrcode::EcLevel {
        match self {
            Ecc::L => qrcode::EcLevel::L,
            Ecc::M => qrcode::EcLevel::M,
            Ecc::Q => qrcode::EcLevel::Q,
            Ecc::H => qrcode::EcLevel::H,
        }
    }
}

/// How to render a code. Hashable so it can be part of a cache key.
///
/// [`QrOptions::parse`] enforces every rule; options built by hand get `size` and `margin`
/// clamped to their bounds when rendered, and no contrast check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct QrOptions {
    /// Width and height of the PNG in pixels (of the SVG's `width`/`height`).
    pub size: u32,
    pub ecc: Ecc,
    /// Color of the dark modules.
    pub fg: Rgb,
    /// Color of the light modules and of the quiet zone around the code.
    pub bg: Rgb,
    /// Quiet zone around the code, in modules.
    pub margin: u32,
}

impl Default for QrOptions {
    fn default() -> Self {
        Self {
            size: 512,
            ecc: Ecc::M,
            fg: Rgb::BLACK,
            bg: Rgb::WHITE,
            margin: MIN_MARGIN,
        }
    }
}

pub const MIN_SIZE: u32 = 64;
pub const MAX_SIZE: u32 = 2048;
/// The quiet zone the QR standard requires, in modules: without it scanners miss the finder
/// patterns when the code sits next to other ink.
pub const MIN_MARGIN: u32 = 4;
pub const MAX_MARGIN: u32 = 16;
/// WCAG non-text contrast floor (3:1), which phone cameras in ordinary light read reliably.
pub const MIN_CONTRAST: f64 = 3.0;

impl QrOptions {
    /// From raw query-string values; each `None` (or empty value, as an HTML form sends for a
    /// blank field) takes the default. `Err` carries a message for a person (it becomes a 422
    /// `{"detail": msg}`), e.g. "`size` must be between 64 and 2048 pixels".
    pub fn parse(
        size: Option<&str>,
        ecc: Option<&str>,
        fg: Option<&str>,
        bg: Option<&str>,
        margin: Option<&str>,
    ) -> Result<Self, String> {
        fn given(value: Option<&str>) -> Option<&str> {
            value.map(str::trim).filter(|v| !v.is_empty())
        }
        let defaults = Self::default();

        let size = match given(size) {
            None => defaults.size,
            Some(raw) => match raw.parse::<u32>() {
                Ok(size) if (MIN_SIZE..=MAX_SIZE).contains(&size) => size,
                _ => {
                    return Err(format!(
                        "`size` must be between {MIN_SIZE} and {MAX_SIZE} pixels"
                    ));
                }
            },
        };

        let ecc = match given(ecc) {
            None => defaults.ecc,
            Some(raw) => match raw.to_ascii_uppercase().as_str() {
                "L" => Ecc::L,
                "M" => Ecc::M,
                "Q" => Ecc::Q,
                "H" => Ecc::H,
                _ => {
                    return Err(
                        "`ecc` must be one of L, M, Q or H (error correction level)".to_owned()
                    );
                }
            },
        };

        let color = |name: &str, value: Option<&str>, default: Rgb| match given(value) {
            None => Ok(default),
            Some(raw) => Rgb::parse_hex(raw).ok_or_else(|| {
                format!(
                    "`{name}` must be a hex color, #rgb or #rrggbb (the # is optional, \
                     and must be written %23 in a URL)"
                )
            }),
        };
        let fg = color("fg", fg, defaults.fg)?;
        let bg = color("bg", bg, defaults.bg)?;
        let margin = match given(margin) {
            None => defaults.margin,
            Some(raw) => match raw.parse::<u32>() {
                Ok(margin) if (MIN_MARGIN..=MAX_MARGIN).contains(&margin) => margin,
                Ok(margin) if margin < MIN_MARGIN => {
                    return Err(format!(
                        "`margin` must be at least {MIN_MARGIN} modules: the QR standard \
                         requires a {MIN_MARGIN}-module quiet zone, without which scanners \
                         miss the code"
                    ));
                }
                _ => {
                    return Err(format!(
                        "`margin` must be between {MIN_MARGIN} and {MAX_MARGIN} modules"
                    ));
                }
            },
        };

        // Refused rather than silently corrected: the caller asked for these colors, and a
        // brand color quietly altered on a printed card surprises more than a clear 422.
        if fg.relative_luminance() >= bg.relative_luminance() {
            return Err(format!(
                "`fg` ({fg}) must be darker than `bg` ({bg}): many scanners cannot read a \
                 light code on a dark background"
            ));
        }
        let ratio = contrast_ratio(fg, bg);
        if ratio < MIN_CONTRAST {
            // Rounded down, so that 2.996 is not shown as a "3.00:1" that was refused.
            let ratio = (ratio * 100.0).floor() / 100.0;
            return Err(format!(
                "`fg` ({fg}) and `bg` ({bg}) have a contrast ratio of {ratio:.2}:1, too low \
                 for a phone camera to read; it must be at least {MIN_CONTRAST}:1"
            ));
        }

        Ok(Self {
            size,
            ecc,
            fg,
            bg,
            margin,
        })
    }

    /// `(size, margin)` within the bounds [`QrOptions::parse`] enforces, for options built by
    /// hand: a stray `u32::MAX` must not become a 16-gigapixel buffer or an overflow.
    fn bounded(&self) -> (u32, u32) {
        (
            self.size.clamp(MIN_SIZE, MAX_SIZE),
            self.margin.clamp(MIN_MARGIN, MAX_MARGIN),
        )
    }
}

/// Encodes `data` at the requested level. A card URL (< 200 bytes) always fits, even at level H
/// (up to 1,273 bytes); should longer data ever come, level L (up to 2,953 bytes) is tried
/// before giving up, since a code that scans beats the error correction that was asked for.
/// `None` only for data no QR code can hold.
fn encode(data: &str, ecc: Ecc) -> Option<qrcode::QrCode> {
    qrcode::QrCode::with_error_correction_level(data.as_bytes(), ecc.level())
        .or_else(|_| qrcode::QrCode::with_error_correction_level(data.as_bytes(), Ecc::L.level()))
        .ok()
}

/// The dark modules of a code, row by row, as `(x, y, run)`: `run` dark modules from `(x, y)`
/// to the right. Runs keep the SVG path short and the PNG fill a slice copy.
fn dark_runs(code: &qrcode::QrCode) -> Vec<(usize, usize, usize)> {
    let width = code.width();
    let colors = code.to_colors();
    let mut runs = Vec::new();
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == qrcode::Color::Dark {
                let start = x;
                while x < width && row[x] == qrcode::Color::Dark {
                    x += 1;
                }
                runs.push((start, y, x - start));
            } else {
                x += 1;
            }
        }
    }
    runs
}

/// Where the code goes in a PNG of `options.size` pixels: `(image_px, module_px, offset_px)`,
/// `offset_px` being where module `(0, 0)` starts on both axes.
///
/// Modules are whole pixels (a code scaled by a fraction of a pixel blurs, and scans badly),
/// so the leftover pixels are split evenly around the code as background. When the code and
/// its requested margin do not fit at one pixel a module (a dense code, a small size, a wide
/// margin), the margin above the standard quiet zone gives way first, as it is only cosmetic,
/// and the image keeps the requested size; only if even the standard quiet zone does not fit
/// is the image larger than asked, since a cropped code or a sub-pixel module would not scan.
fn layout(modules: u32, options: &QrOptions) -> (u32, u32, u32) {
    let (size, margin) = options.bounded();
    let with_margin = modules + 2 * margin;
    let with_quiet_zone = modules + 2 * MIN_MARGIN;
    if size >= with_margin {
        let module_px = size / with_margin;
        let leftover = size - with_margin * module_px;
        (size, module_px, leftover / 2 + margin * module_px)
    } else if size >= with_quiet_zone {
        (size, 1, (size - modules) / 2)
    } else {
        (with_quiet_zone, 1, MIN_MARGIN)
    }
}

/// The code as a PNG of `options.size`×`options.size` pixels, modules of whole pixels centered
/// in the leftover background. Larger only when the code with the standard 4-module quiet zone
/// cannot fit at one pixel a module (a long URL at level H in 64 pixels): a cropped code would
/// not scan. Grayscale when both colors are grays, which is exact and a third of the size;
/// 8-bit RGB otherwise.
///
/// Data too long for any QR code (never a card URL) gives an image of background only: it
/// scans as nothing, rather than as something else.
pub fn png(data: &str, options: &QrOptions) -> Vec<u8> {
    let code = encode(data, options.ecc);
    let modules = code.as_ref().map_or(0, |code| code.width());
    let runs = code.as_ref().map(dark_runs).unwrap_or_default();
    let (image_px, module_px, offset_px) = layout(modules as u32, options);

    // One byte a pixel in grayscale, three in RGB; everything below works on these.
    let (fg, bg): (Vec<u8>, Vec<u8>) = if options.fg.is_gray() && options.bg.is_gray() {
        (vec![options.fg.0], vec![options.bg.0])
    } else {
        let Rgb(fr, fgreen, fb) = options.fg;
        let Rgb(br, bgreen, bb) = options.bg;
        (vec![fr, fgreen, fb], vec![br, bgreen, bb])
    };
    let channels = fg.len();
    let (image_px, module_px, offset_px) =
        (image_px as usize, module_px as usize, offset_px as usize);
    let row_bytes = image_px * channels;

    let mut pixels = bg.repeat(image_px * image_px);
    // Each module row is drawn once into its first pixel row, then copied down.
    let mut runs = runs.into_iter().peekable();
    for y in 0..modules {
        let top = (offset_px + y * module_px) * row_bytes;
        let first_row = top..top + row_bytes;
        while let Some((x, _, run)) = runs.next_if(|&(_, run_y, _)| run_y == y) {
            let start = top + (offset_px + x * module_px) * channels;
            let end = start + run * module_px * channels;
            for pixel in pixels[start..end].chunks_exact_mut(channels) {
                pixel.copy_from_slice(&fg);
            }
        }
        for copy in 1..module_px {
            pixels.copy_within(first_row.clone(), top + copy * row_bytes);
        }
    }

    let color_type = if channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        &pixels,
        image_px as u32,
        image_px as u32,
        color_type,
    )
    .expect("a PNG of a buffer sized for its dimensions, written to memory, cannot fail");
    out
}

/// The code as a standalone SVG: `width`/`height` of `options.size`, a `viewBox` in modules
/// (the viewer scales it; `crispEdges` keeps module edges sharp), a background `<rect>` and one
/// `<path>` of all dark modules. Nothing from the request is inserted but the two colors, which
/// are formatted here as `#rrggbb`.
///
/// Data too long for any QR code (never a card URL) gives the background only, as [`png`] does.
pub fn svg(data: &str, options: &QrOptions) -> String {
    use fmt::Write as _;

    let code = encode(data, options.ecc);
    let modules = code.as_ref().map_or(0, |code| code.width());
    let runs = code.as_ref().map(dark_runs).unwrap_or_default();
    let (size, margin) = options.bounded();
    let margin = margin as usize;
    let full = modules + 2 * margin;
    let (fg, bg) = (options.fg, options.bg);

    // The viewBox starts at minus the margin so the path uses plain module coordinates.
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"-{margin} -{margin} {full} {full}\" shape-rendering=\"crispEdges\">\
         <rect x=\"-{margin}\" y=\"-{margin}\" width=\"{full}\" height=\"{full}\" fill=\"{bg}\"/>"
    );
    if !runs.is_empty() {
        out.push_str("<path fill=\"");
        out.push_str(&fg.to_string());
        out.push_str("\" d=\"");
        for (x, y, run) in runs {
            // A `run`×1 rectangle: move to its corner, right, down, back left, close.
            write!(out, "M{x} {y}h{run}v1h-{run}z").expect("writing to a String cannot fail");
        }
        out.push_str("\"/>");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://cards.example.test/card/acme/jane-1a2b3c?src=qr";

    fn options(size: u32, ecc: Ecc, margin: u32) -> QrOptions {
        QrOptions {
            size,
            ecc,
            margin,
            ..QrOptions::default()
        }
    }

    /// What a scanner reads from a PNG: the text of its one QR code.
    fn scan(png: &[u8]) -> String {
        let image = image::load_from_memory(png)
            .expect("our PNG decodes")
            .to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one code in the image");
        let (_, text) = grids[0].decode().expect("the code decodes");
        text
    }

    fn rgb_image(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png)
            .expect("our PNG decodes")
            .to_rgb8()
    }

    fn pixel(color: Rgb) -> image::Rgb<u8> {
        image::Rgb([color.0, color.1, color.2])
    }

    /// The border `width` pixels wide all around the image is `color`.
    fn border_is(image: &image::RgbImage, width: u32, color: Rgb) -> bool {
        let side = image.width();
        image.enumerate_pixels().all(|(x, y, p)| {
            let inside = (width..side - width).contains(&x) && (width..side - width).contains(&y);
            inside || *p == pixel(color)
        })
    }

    fn modules(data: &str, ecc: Ecc) -> u32 {
        encode(data, ecc).expect("a card URL fits").width() as u32
    }

    #[test]
    fn png_scans_as_the_url() {
        assert_eq!(scan(&png(URL, &QrOptions::default())), URL);
    }

    #[test]
    fn png_scans_at_every_ecc_level() {
        for ecc in [Ecc::L, Ecc::M, Ecc::Q, Ecc::H] {
            assert_eq!(scan(&png(URL, &options(512, ecc, 4))), URL, "{ecc:?}");
        }
    }

    #[test]
    fn png_scans_in_brand_colors() {
        let options = QrOptions::parse(None, None, Some("#1a237e"), Some("fffde7"), None)
            .expect("dark blue on cream is readable");
        let png = png(URL, &options);
        assert_eq!(scan(&png), URL);
        let image = rgb_image(&png);
        assert!(border_is(&image, 4, options.bg));
        assert!(image.pixels().any(|p| *p == pixel(options.fg)));
        assert!(
            image
                .pixels()
                .all(|p| *p == pixel(options.fg) || *p == pixel(options.bg))
        );
    }

    #[test]
    fn png_scans_at_the_smallest_and_largest_size() {
        for size in [MIN_SIZE, MAX_SIZE] {
            let png = png(URL, &options(size, Ecc::M, 4));
            assert_eq!(rgb_image(&png).dimensions(), (size, size));
            assert_eq!(scan(&png), URL, "size {size}");
        }
    }

    #[test]
    fn png_scans_with_the_smallest_and_widest_margin() {
        for margin in [MIN_MARGIN, MAX_MARGIN] {
            assert_eq!(
                scan(&png(URL, &options(512, Ecc::M, margin))),
                URL,
                "margin {margin}"
            );
        }
    }

    #[test]
    fn png_is_exactly_the_size_with_whole_pixel_modules_and_the_quiet_zone() {
        for ecc in [Ecc::L, Ecc::H] {
            let modules = modules(URL, ecc);
            for size in [MIN_SIZE, 100, 333, 512, 1000, MAX_SIZE] {
                for margin in [MIN_MARGIN, 7, MAX_MARGIN] {
                    let full = modules + 2 * margin;
                    if full > size {
                        continue; // see png_keeps_the_size_by_narrowing_a_wide_margin
                    }
                    let image = rgb_image(&png(URL, &options(size, ecc, margin)));
                    assert_eq!(image.dimensions(), (size, size));
                    let module_px = size / full;
                    let leftover = size - full * module_px;
                    let quiet = margin * module_px + leftover / 2;
                    let case = format!("{ecc:?} size {size} margin {margin}");
                    assert!(border_is(&image, quiet, Rgb::WHITE), "{case}");
                    // The top-left finder pattern starts right after the quiet zone, and its
                    // dark edge is 7 modules of whole pixels.
                    for i in 0..7 * module_px {
                        assert_eq!(image[(quiet + i, quiet)], pixel(Rgb::BLACK), "{case}");
                        assert_eq!(image[(quiet, quiet + i)], pixel(Rgb::BLACK), "{case}");
                    }
                    assert_eq!(image[(quiet + 7 * module_px, quiet)], pixel(Rgb::WHITE));
                }
            }
        }
    }

    #[test]
    fn png_keeps_the_size_by_narrowing_a_wide_margin() {
        // Level H makes a 41-module code of this URL: with 16 modules of margin on each side it
        // needs 73 pixels, so the margin narrows to what 64 pixels leave, still over 4 modules.
        let modules = modules(URL, Ecc::H);
        assert!(modules + 2 * MAX_MARGIN > MIN_SIZE);
        let png = png(URL, &options(MIN_SIZE, Ecc::H, MAX_MARGIN));
        let image = rgb_image(&png);
        assert_eq!(image.dimensions(), (MIN_SIZE, MIN_SIZE));
        assert!(border_is(&image, (MIN_SIZE - modules) / 2, Rgb::WHITE));
        assert_eq!(scan(&png), URL);
    }

    #[test]
    fn png_grows_rather_than_crops_a_code_that_cannot_fit() {
        let long = format!(
            "https://cards.example.test/card/{}/jane?src=qr",
            "a".repeat(150)
        );
        let modules = modules(&long, Ecc::H);
        assert!(modules + 2 * MIN_MARGIN > MIN_SIZE);
        let png = png(&long, &options(MIN_SIZE, Ecc::H, MAX_MARGIN));
        let image = rgb_image(&png);
        let side = modules + 2 * MIN_MARGIN;
        assert_eq!(image.dimensions(), (side, side));
        assert!(border_is(&image, MIN_MARGIN, Rgb::WHITE));
        assert_eq!(scan(&png), long);
    }

    #[test]
    fn png_is_grayscale_for_grays_and_rgb_otherwise() {
        let gray = image::load_from_memory(&png(URL, &QrOptions::default())).expect("decodes");
        assert_eq!(gray.color(), image::ColorType::L8);
        let blue = QrOptions {
            fg: Rgb(0x1a, 0x73, 0xe8),
            ..QrOptions::default()
        };
        let blue = image::load_from_memory(&png(URL, &blue)).expect("decodes");
        assert_eq!(blue.color(), image::ColorType::Rgb8);
    }

    #[test]
    fn png_is_deterministic() {
        let options = options(300, Ecc::Q, 5);
        assert_eq!(png(URL, &options), png(URL, &options));
        assert_eq!(svg(URL, &options), svg(URL, &options));
    }

    #[test]
    fn options_built_by_hand_are_held_to_the_bounds() {
        let huge = QrOptions {
            size: u32::MAX,
            margin: u32::MAX,
            ..QrOptions::default()
        };
        let image = rgb_image(&png(URL, &huge));
        assert_eq!(image.dimensions(), (MAX_SIZE, MAX_SIZE));
        assert!(svg(URL, &huge).contains(" width=\"2048\" "));
        let tiny = QrOptions {
            size: 0,
            margin: 0,
            ..QrOptions::default()
        };
        let png = png(URL, &tiny);
        assert_eq!(rgb_image(&png).dimensions(), (MIN_SIZE, MIN_SIZE));
        assert_eq!(scan(&png), URL);
        assert!(svg(URL, &tiny).contains(" viewBox=\"-4 -4 "));
    }

    #[test]
    fn encoding_falls_back_to_level_l() {
        // 2,000 bytes: over level H's 1,273, under level L's 2,953.
        let long = "a".repeat(2000);
        let code = encode(&long, Ecc::H).expect("fits at level L");
        assert_eq!(code.error_correction_level(), qrcode::EcLevel::L);
        assert_eq!(
            encode(URL, Ecc::H).map(|c| c.error_correction_level()),
            Some(qrcode::EcLevel::H)
        );
    }

    #[test]
    fn data_no_code_can_hold_gives_background_only() {
        let too_long = "a".repeat(3000);
        let options = QrOptions::default();
        let image = rgb_image(&png(&too_long, &options));
        assert_eq!(image.dimensions(), (options.size, options.size));
        assert!(image.pixels().all(|p| *p == pixel(Rgb::WHITE)));
        let svg = svg(&too_long, &options);
        assert!(svg.starts_with("<svg ") && !svg.contains("<path"));
    }

    /// The `(x, y)` of every dark module drawn by an SVG path of `M{x} {y}h{run}v1h-{run}z`.
    fn dark_modules_of_path(d: &str) -> Vec<(usize, usize)> {
        let number = |s: &str| s.parse::<usize>().expect("a module coordinate");
        let mut dark = Vec::new();
        for rect in d.split('M').filter(|s| !s.is_empty()) {
            let rect = rect.strip_suffix('z').expect("each run is closed");
            let (corner, moves) = rect.split_once('h').expect("a horizontal edge");
            let (x, y) = corner.split_once(' ').expect("x y");
            let (run, back) = moves.split_once("v1h-").expect("down one module, back");
            assert_eq!(run, back, "the run is a rectangle");
            let (x, y) = (number(x), number(y));
            dark.extend((x..x + number(run)).map(|x| (x, y)));
        }
        dark
    }

    #[test]
    fn svg_is_standalone_with_a_viewbox_in_modules_and_one_path() {
        let options = options(300, Ecc::M, 6);
        let svg = svg(URL, &options);
        let full = modules(URL, Ecc::M) + 12;
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(" width=\"300\" height=\"300\" "));
        assert!(svg.contains(&format!(" viewBox=\"-6 -6 {full} {full}\" ")));
        assert!(svg.contains("shape-rendering=\"crispEdges\""));
        assert!(svg.contains("<rect x=\"-6\" y=\"-6\" "));
        assert_eq!(svg.matches("<path ").count(), 1);
        assert_eq!(svg.matches("<rect ").count(), 1);
        assert_eq!(svg.matches('<').count(), svg.matches('>').count());
        assert_eq!(
            svg.matches("/>").count(),
            2,
            "rect and path are self-closed"
        );
        assert!(
            !svg.contains(URL),
            "the URL is in the modules, not in the markup"
        );
    }

    #[test]
    fn svg_draws_exactly_the_dark_modules_of_the_code() {
        for ecc in [Ecc::L, Ecc::H] {
            let svg = svg(URL, &options(512, ecc, 4));
            let (_, path) = svg.split_once("<path ").expect("one path");
            let (_, d) = path.split_once(" d=\"").expect("a d attribute");
            let (d, _) = d.split_once('"').expect("closed");
            let mut drawn = dark_modules_of_path(d);
            drawn.sort_unstable();

            let code = encode(URL, ecc).expect("fits");
            let width = code.width();
            let mut dark: Vec<(usize, usize)> = (0..width)
                .flat_map(|y| (0..width).map(move |x| (x, y)))
                .filter(|&(x, y)| code[(x, y)] == qrcode::Color::Dark)
                .collect();
            dark.sort_unstable();
            assert_eq!(drawn.len(), dark.len(), "{ecc:?}");
            assert_eq!(drawn, dark, "{ecc:?}");
        }
    }

    #[test]
    fn svg_colors_are_our_own_lowercase_hex() {
        let options =
            QrOptions::parse(None, None, Some("1A237E"), Some("#FFF"), None).expect("readable");
        let svg = svg(URL, &options);
        assert!(svg.contains("<path fill=\"#1a237e\" d=\"M"));
        assert!(svg.contains("fill=\"#ffffff\"/>"));
    }

    #[test]
    fn parse_defaults() {
        let parsed = QrOptions::parse(None, None, None, None, None);
        assert_eq!(parsed, Ok(QrOptions::default()));
        let default = QrOptions::default();
        assert_eq!(
            (
                default.size,
                default.ecc,
                default.fg,
                default.bg,
                default.margin
            ),
            (512, Ecc::M, Rgb(0, 0, 0), Rgb(255, 255, 255), 4)
        );
        // A blank form field is no value.
        let blank = QrOptions::parse(Some(""), Some(" "), Some(""), Some(""), Some(""));
        assert_eq!(blank, Ok(QrOptions::default()));
    }

    fn parse_size(size: &str) -> Result<u32, String> {
        QrOptions::parse(Some(size), None, None, None, None).map(|o| o.size)
    }

    fn parse_margin(margin: &str) -> Result<u32, String> {
        QrOptions::parse(None, None, None, None, Some(margin)).map(|o| o.margin)
    }

    #[test]
    fn parse_size_bounds() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert_eq!(parse_size("300"), Ok(300));
        let message = "`size` must be between 64 and 2048 pixels";
        for bad in [
            "63",
            "2049",
            "0",
            "-512",
            "abc",
            "512px",
            "12.5",
            "99999999999",
        ] {
            assert_eq!(parse_size(bad), Err(message.to_owned()), "{bad}");
        }
    }

    #[test]
    fn parse_margin_bounds() {
        assert_eq!(parse_margin("4"), Ok(4));
        assert_eq!(parse_margin("16"), Ok(16));
        for below in ["3", "0"] {
            let message = parse_margin(below).expect_err(below);
            assert!(
                message.contains("at least 4") && message.contains("quiet zone"),
                "{message}"
            );
        }
        for bad in ["17", "-4", "four", "4.5"] {
            assert_eq!(
                parse_margin(bad),
                Err("`margin` must be between 4 and 16 modules".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn parse_ecc_any_case() {
        let ecc =
            |value: &str| QrOptions::parse(None, Some(value), None, None, None).map(|o| o.ecc);
        for (value, expected) in [("L", Ecc::L), ("m", Ecc::M), ("Q", Ecc::Q), ("h", Ecc::H)] {
            assert_eq!(ecc(value), Ok(expected));
        }
        for bad in ["X", "LL", "medium", "0", "é"] {
            let message = ecc(bad).expect_err(bad);
            assert!(
                message.starts_with("`ecc` must be one of L, M, Q or H"),
                "{message}"
            );
        }
    }

    fn colors(fg: &str, bg: &str) -> Result<(Rgb, Rgb), String> {
        QrOptions::parse(None, None, Some(fg), Some(bg), None).map(|o| (o.fg, o.bg))
    }

    #[test]
    fn parse_colors_with_or_without_hash_short_or_long() {
        let navy_on_cream = Ok((Rgb(0x1a, 0x23, 0x7e), Rgb(0xff, 0xfd, 0xe7)));
        assert_eq!(colors("#1a237e", "#fffde7"), navy_on_cream);
        assert_eq!(colors("1A237E", "FFFDE7"), navy_on_cream);
        assert_eq!(colors("#000", "fff"), Ok((Rgb::BLACK, Rgb::WHITE)));
        assert_eq!(
            colors("#123", "#FfF"),
            Ok((Rgb(0x11, 0x22, 0x33), Rgb::WHITE))
        );
        for bad in [
            "#12345", "#1234567", "#ggg", "12345g", "+12", "#", "##000", "black",
        ] {
            let message = colors(bad, "#fff").expect_err(bad);
            assert!(message.starts_with("`fg` must be a hex color"), "{message}");
            let message = colors("#000", bad).expect_err(bad);
            assert!(message.starts_with("`bg` must be a hex color"), "{message}");
        }
    }

    #[test]
    fn parse_refuses_colors_a_camera_cannot_read() {
        assert!(colors("#000000", "#ffffff").is_ok());
        assert!(
            colors("#1a73e8", "#ffffff").is_ok(),
            "a mid brand blue on white"
        );

        let inverted = colors("#ffffff", "#000000").expect_err("light on dark");
        assert!(inverted.contains("must be darker"), "{inverted}");
        let same = colors("#1a73e8", "#1a73e8").expect_err("no contrast at all");
        assert!(same.contains("must be darker"), "{same}");

        let faint = colors("#777777", "#888888").expect_err("low contrast");
        assert!(
            faint.contains("contrast ratio of 1.2") && faint.contains("at least 3:1"),
            "{faint}"
        );
        let yellow = colors("#ffd700", "#ffffff").expect_err("gold on white");
        assert!(yellow.contains("contrast ratio"), "{yellow}");
    }

    #[test]
    fn contrast_ratio_matches_wcag() {
        assert!((contrast_ratio(Rgb::BLACK, Rgb::WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(Rgb::WHITE, Rgb::WHITE) - 1.0).abs() < 1e-9);
        // Reference values from the WCAG contrast checker.
        assert!((contrast_ratio(Rgb(0x1a, 0x73, 0xe8), Rgb::WHITE) - 4.5).abs() < 0.05);
        assert!((contrast_ratio(Rgb(0x77, 0x77, 0x77), Rgb::WHITE) - 4.48).abs() < 0.01);
    }
}
