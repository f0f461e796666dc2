//! Uploaded employee photos and company logos: validated, then re-encoded from pixels.
//!
//! Uploads are the only way in: the service never fetches a remote URL for an image. Every upload
//! is treated as hostile. The format is detected from the content (magic bytes), never from the
//! file name or the declared content type; only JPEG, PNG and WebP are decoded. The byte length is
//! checked first, then the dimensions are read from the header and checked *before* any pixel
//! buffer is allocated (decompression bombs), and the decoder itself runs under
//! [`image::Limits`]. The output is always re-encoded from decoded pixels, which drops every
//! metadata segment of the upload (EXIF including GPS position, XMP, ICC profiles, comments).
//!
//! Everything here is pure and CPU-bound (decoding and resampling a 40-megapixel upload takes a
//! noticeable fraction of a second): async callers must run it under
//! `tokio::task::spawn_blocking`, never directly on a runtime worker thread. The same input always
//! gives the same bytes, so [`content_hash`] can name the stored file.
//!
//! Memory is the decoded pixels and little more: they are made 8-bit, flattened and cropped in
//! their own buffer, and only the small downscaled image is turned upright. [`probe`] reads the
//! header alone, so a caller can budget [`ImageHeader::decode_cost`] before decoding.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{
    ColorType, DynamicImage, GenericImageView, ImageDecoder, ImageEncoder, ImageFormat,
    ImageReader, Limits, RgbImage, RgbaImage,
};
use sha2::{Digest, Sha256};

/// The largest accepted upload, in bytes.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// The side of a stored photo, a square JPEG: `PHOTO_PX` × `PHOTO_PX`, or the shorter side of
/// the upload when that is smaller (photos are never upscaled).
pub const PHOTO_PX: u32 = 512;
/// A stored logo fits in `LOGO_MAX_PX` × `LOGO_MAX_PX`, aspect ratio kept, never upscaled.
pub const LOGO_MAX_PX: u32 = 512;
/// The side of the square photo embedded in a vCard (smaller stored photos are kept as they are).
pub const VCARD_PHOTO_PX: u32 = 200;
/// The largest accepted width or height of an upload, read from its header before decoding.
pub const MAX_SIDE_PX: u32 = 10_000;
/// The largest accepted pixel count of an upload (40 megapixels), read from its header.
pub const MAX_PIXELS: u64 = 40_000_000;
/// The smallest accepted width or height of an upload.
pub const MIN_SIDE_PX: u32 = 32;

/// What the decoder may allocate for one image. 40 megapixels of 8-bit RGBA is 160 MB; a 16-bit
/// RGBA image over ~33 megapixels exceeds this and is refused as [`ImageError::TooManyPixels`].
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;
const PHOTO_JPEG_QUALITY: u8 = 85;
/// vCard thumbnails start at this quality and step down until they fit [`VCARD_TARGET_BYTES`].
const VCARD_JPEG_QUALITIES: [u8; 4] = [80, 70, 60, 50];
/// The size a vCard thumbnail aims for: a vCard with a bigger inline photo is refused or
/// truncated by some address books, and base64 adds a third on top.
const VCARD_TARGET_BYTES: usize = 20 * 1024;
/// Resampling filter for every resize: sharp, little ringing at photo scales.
const RESIZE_FILTER: FilterType = FilterType::Lanczos3;

/// Why an upload was refused. The messages are written for the person who uploaded the file.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("Images are limited to 5 MB")]
    TooLarge,
    #[error("The file is not a JPEG, PNG or WebP image")]
    NotAnImage,
    /// A recognized image (or image-like) format that is not accepted, e.g. `"GIF"`, `"HEIC"`.
    #[error("{0} images are not accepted; upload a JPEG, PNG or WebP")]
    Unsupported(&'static str),
    #[error("The image has too many pixels: at most 40 megapixels and 10000 px a side")]
    TooManyPixels,
    #[error("The image is too small: at least 32 px a side")]
    TooSmall,
    #[error("The image could not be decoded")]
    Corrupt,
}

impl ImageError {
    /// A stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::TooLarge => "image_too_large",
            ImageError::NotAnImage => "not_an_image",
            ImageError::Unsupported(_) => "unsupported_image_format",
            ImageError::TooManyPixels => "image_too_many_pixels",
            ImageError::TooSmall => "image_too_small",
            ImageError::Corrupt => "image_corrupt",
        }
    }
}

/// A normalized image, ready to be stored under `{hash}.{extension}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredImage {
    pub bytes: Vec<u8>,
    /// `"image/jpeg"` or `"image/png"`.
    pub content_type: &'static str,
    /// `"jpg"` or `"png"`.
    pub extension: &'static str,
    /// hex of the first 16 bytes of SHA-256 of `bytes` (32 hex chars): the content hash in the public URL
    pub hash: String,
    pub width: u32,
    pub height: u32,
}

impl StoredImage {
    fn jpeg(bytes: Vec<u8>, width: u32, height: u32) -> Self {
        StoredImage {
            hash: content_hash(&bytes),
            bytes,
            content_type: "image/jpeg",
            extension: "jpg",
            width,
            height,
        }
    }

    fn png(bytes: Vec<u8>, width: u32, height: u32) -> Self {
        StoredImage {
            hash: content_hash(&bytes),
            bytes,
            content_type: "image/png",
            extension: "png",
            width,
            height,
        }
    }
}

/// Employee photo: decode (JPEG/PNG/WebP, detected by content — magic bytes via image::guess_format — never by name or content type), apply the EXIF orientation, center-crop to a square, resize to PHOTO_PX, flatten any alpha onto white, encode JPEG quality 85. Re-encoding from pixels drops every metadata segment (EXIF incl. GPS, XMP, ICC, comments).
///
/// A source whose shorter side is under `PHOTO_PX` is not upscaled: the output is
/// `min(shorter side, PHOTO_PX)` square. Upscaling adds bytes but no detail; the page scales
/// the image with CSS either way.
///
/// Peak memory is the decoded pixels and little more (see [`ImageHeader::decode_cost`]).
pub fn normalize_photo(upload: &[u8]) -> Result<StoredImage, ImageError> {
    let square = square_photo(decode_upload(upload)?, PHOTO_PX)?;
    let bytes = encode_jpeg(&square, PHOTO_JPEG_QUALITY)?;
    Ok(StoredImage::jpeg(bytes, square.width(), square.height()))
}

/// Company logo: same validation; fit within LOGO_MAX_PX (aspect kept, never upscaled), keep transparency, encode PNG.
///
/// An opaque source gives an RGB PNG, a source with an alpha channel an RGBA PNG.
pub fn normalize_logo(upload: &[u8]) -> Result<StoredImage, ImageError> {
    let decoded = decode_upload(upload)?;
    let (width, height) = (decoded.width, decoded.height);
    let orientation = decoded.orientation;
    // Fitted as stored, oriented once small: turning a full-size image would copy it.
    let (fit_w, fit_h) = fit_within(width, height, LOGO_MAX_PX);
    let has_alpha = decoded.color.has_alpha();
    let image = decoded.into_8bit((0, 0, width, height), false)?;
    let mut small = if has_alpha {
        resize_premultiplied(image, fit_w, fit_h)
    } else {
        downscale(image, fit_w, fit_h)
    };
    small.apply_orientation(orientation);
    let (out_w, out_h) = small.dimensions();
    let bytes = if has_alpha {
        let rgba = small.into_rgba8();
        encode_png(rgba.as_raw(), out_w, out_h, image::ExtendedColorType::Rgba8)?
    } else {
        let rgb = small.into_rgb8();
        encode_png(rgb.as_raw(), out_w, out_h, image::ExtendedColorType::Rgb8)?
    };
    Ok(StoredImage::png(bytes, out_w, out_h))
}

/// A stored photo downscaled for embedding in a vCard (~VCARD_PHOTO_PX square JPEG, quality 80, small: aim < 20 KB).
///
/// The input goes through the same validation as an upload (it is read back from storage).
/// A non-square input is center-cropped; a smaller one is not upscaled. When quality 80 exceeds
/// 20 KB (very noisy photos), the quality steps down to 70, 60, then 50, and the last attempt is
/// returned whatever its size.
pub fn vcard_thumbnail(stored_jpeg: &[u8]) -> Result<Vec<u8>, ImageError> {
    let square = square_photo(decode_upload(stored_jpeg)?, VCARD_PHOTO_PX)?;
    let mut bytes = Vec::new();
    for quality in VCARD_JPEG_QUALITIES {
        bytes = encode_jpeg(&square, quality)?;
        if bytes.len() <= VCARD_TARGET_BYTES {
            break;
        }
    }
    Ok(bytes)
}

/// What an upload's header says, read before any pixel buffer exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The decoded pixels in the decoder's own color type (8 or 16 bits a sample).
    pub pixel_bytes: u64,
    /// A progressive JPEG, whose decoder keeps every coefficient until the last scan.
    pub progressive: bool,
}

impl ImageHeader {
    /// The most memory normalizing this image may take at once, in bytes: the decoded pixels
    /// (turned to 8-bit, flattened and cropped in the same buffer, oriented only once small),
    /// what the decoder keeps beside them, and the small images after the first downscale.
    ///
    /// Measured peaks (6000×6600, one decode): PNG RGB8 3.3 B/px (estimate 3.6), baseline
    /// JPEG 3.3 (3.6), lossless WebP 7.0 (7.4: its decoder makes ARGB first), PNG RGBA16 8.0
    /// (9.5). A progressive JPEG's decoder keeps a 16-bit coefficient per sample (+6 B/px).
    pub fn decode_cost(&self) -> u64 {
        let pixels = u64::from(self.width) * u64::from(self.height);
        let channels = (self.pixel_bytes / pixels.max(1)).clamp(1, 8);
        let decoder = match self.format {
            ImageFormat::Jpeg if self.progressive => pixels * channels.min(3) * 2,
            // A lossless frame is decoded as 4-byte ARGB first, then converted.
            ImageFormat::WebP => pixels * 4,
            _ => self.pixel_bytes / 16,
        };
        self.pixel_bytes + decoder + DOWNSCALED_BYTES
    }
}

/// Room for the downscaled copies (at most twice 512 px a side, RGBA and float
/// intermediates) and the encoders' buffers.
const DOWNSCALED_BYTES: u64 = 16 * 1024 * 1024;

/// Checks an upload and reads its header, without decoding any pixels: cheap, so a caller can
/// budget the decode before it starts.
pub fn probe(upload: &[u8]) -> Result<ImageHeader, ImageError> {
    let format = check_upload(upload)?;
    std::panic::catch_unwind(|| {
        let decoder = open_decoder(upload, format)?;
        let (width, height) = decoder.dimensions();
        Ok(ImageHeader {
            format,
            width,
            height,
            pixel_bytes: decoder.total_bytes(),
            progressive: format == ImageFormat::Jpeg
                && !matches!(jpeg_frame_marker(upload), Some(0xC0 | 0xC1)),
        })
    })
    .unwrap_or(Err(ImageError::Corrupt))
}

/// The checks that need no decoder: size, format by content, a JPEG's end marker.
fn check_upload(upload: &[u8]) -> Result<ImageFormat, ImageError> {
    if upload.len() > MAX_UPLOAD_BYTES {
        return Err(ImageError::TooLarge);
    }
    let format = detect_format(upload)?;
    if format == ImageFormat::Jpeg && !jpeg_has_end_of_image(upload) {
        // The JPEG decoder is lenient and would fill a truncated scan with gray.
        return Err(ImageError::Corrupt);
    }
    Ok(format)
}

/// Decoded pixels as the decoder gave them, not yet oriented.
struct Decoded {
    color: ColorType,
    width: u32,
    height: u32,
    /// `width * height` pixels of `color`, native-endian samples.
    pixels: Vec<u8>,
    orientation: Orientation,
}

/// Detects the format from the content, checks sizes and decodes. Returns pixels whose sides
/// are within [`MIN_SIDE_PX`]..=[`MAX_SIDE_PX`], with their EXIF orientation beside them.
fn decode_upload(upload: &[u8]) -> Result<Decoded, ImageError> {
    let format = check_upload(upload)?;
    // Third-party decoders fed hostile bytes: a panic in one of them becomes a refusal rather
    // than a failed blocking task.
    std::panic::catch_unwind(|| decode_checked(upload, format)).unwrap_or(Err(ImageError::Corrupt))
}

/// A decoder that has parsed the header (no pixel buffer yet) and passed the size checks.
fn open_decoder(upload: &[u8], format: ImageFormat) -> Result<impl ImageDecoder + '_, ImageError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODE_BYTES);

    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    if decoder.total_bytes() > MAX_DECODE_BYTES {
        return Err(ImageError::TooManyPixels);
    }
    Ok(decoder)
}

fn decode_checked(upload: &[u8], format: ImageFormat) -> Result<Decoded, ImageError> {
    let mut decoder = open_decoder(upload, format)?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    // A malformed EXIF block is not worth refusing the photo over.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let len = usize::try_from(decoder.total_bytes()).map_err(|_| ImageError::TooManyPixels)?;
    // Zeroed by the allocator (fresh pages), so untouched memory costs nothing yet.
    let mut pixels = vec![0u8; len];
    decoder.read_image(&mut pixels).map_err(from_image_error)?;
    Ok(Decoded {
        color,
        width,
        height,
        pixels,
        orientation,
    })
}

impl Decoded {
    /// The `crop` rectangle `(x, y, width, height)` as an 8-bit image, alpha flattened onto
    /// white when `flatten`, rewritten in the decoded buffer itself: every step only shrinks a
    /// pixel or drops pixels, so writing runs behind reading and no second full-size buffer is
    /// ever made. Pixels stay gray or color as decoded (widened only once downscaled).
    fn into_8bit(
        self,
        crop: (u32, u32, u32, u32),
        flatten: bool,
    ) -> Result<DynamicImage, ImageError> {
        use ColorType as C;
        let (channels, wide) = match self.color {
            C::L8 => (1, false),
            C::La8 => (2, false),
            C::Rgb8 => (3, false),
            C::Rgba8 => (4, false),
            C::L16 => (1, true),
            C::La16 => (2, true),
            C::Rgb16 => (3, true),
            C::Rgba16 => (4, true),
            _ => return Err(ImageError::Corrupt),
        };
        let has_alpha = self.color.has_alpha();
        let drop_alpha = has_alpha && flatten;
        let out_channels = channels - usize::from(drop_alpha);
        let sample = if wide { 2 } else { 1 };
        let in_px = channels * sample;
        let (x0, y0, crop_w, crop_h) = (
            crop.0 as usize,
            crop.1 as usize,
            crop.2 as usize,
            crop.3 as usize,
        );
        let width = self.width as usize;
        let mut buf = self.pixels;
        if !wide && !drop_alpha {
            // Only the crop: whole rows move at once.
            for row in 0..crop_h {
                let src = ((y0 + row) * width + x0) * in_px;
                buf.copy_within(src..src + crop_w * in_px, row * crop_w * in_px);
            }
        } else {
            let mut out = 0;
            for row in 0..crop_h {
                let mut src = ((y0 + row) * width + x0) * in_px;
                for _ in 0..crop_w {
                    let mut px = [0u8; 4];
                    for (c, value) in px.iter_mut().enumerate().take(channels) {
                        *value = if wide {
                            let at = src + 2 * c;
                            narrow(u16::from_ne_bytes([buf[at], buf[at + 1]]))
                        } else {
                            buf[src + c]
                        };
                    }
                    if drop_alpha {
                        let a = u32::from(px[channels - 1]);
                        for c in &mut px[..channels - 1] {
                            *c = ((u32::from(*c) * a + 255 * (255 - a) + 127) / 255) as u8;
                        }
                    }
                    buf[out..out + out_channels].copy_from_slice(&px[..out_channels]);
                    out += out_channels;
                    src += in_px;
                }
            }
        }
        buf.truncate(crop_w * crop_h * out_channels);
        let (w, h) = (crop.2, crop.3);
        let image = match (out_channels, has_alpha && !drop_alpha) {
            (1, _) => image::GrayImage::from_raw(w, h, buf).map(DynamicImage::ImageLuma8),
            (2, _) => image::GrayAlphaImage::from_raw(w, h, buf).map(DynamicImage::ImageLumaA8),
            (3, _) => RgbImage::from_raw(w, h, buf).map(DynamicImage::ImageRgb8),
            _ => RgbaImage::from_raw(w, h, buf).map(DynamicImage::ImageRgba8),
        };
        image.ok_or(ImageError::Corrupt)
    }
}

/// A 16-bit sample as 8 bits, rounded.
fn narrow(sample: u16) -> u8 {
    ((u32::from(sample) * 255 + 32_767) / 65_535) as u8
}

/// Lowercase hex of the first 16 bytes of the SHA-256 of `bytes` (32 characters).
pub fn content_hash(bytes: &[u8]) -> String {
    crate::hex::lower(&Sha256::digest(bytes)[..16])
}

fn check_dimensions(width: u32, height: u32) -> Result<(), ImageError> {
    if width > MAX_SIDE_PX
        || height > MAX_SIDE_PX
        || u64::from(width) * u64::from(height) > MAX_PIXELS
    {
        return Err(ImageError::TooManyPixels);
    }
    if width < MIN_SIDE_PX || height < MIN_SIDE_PX {
        return Err(ImageError::TooSmall);
    }
    Ok(())
}

fn from_image_error(error: image::ImageError) -> ImageError {
    match error {
        image::ImageError::Limits(_) => ImageError::TooManyPixels,
        _ => ImageError::Corrupt,
    }
}

/// The format by magic bytes: JPEG, PNG and WebP are accepted, other recognized formats are
/// refused by name, anything else is not an image.
fn detect_format(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    if let Ok(format) = image::guess_format(bytes) {
        let name = match format {
            ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP => return Ok(format),
            ImageFormat::Gif => "GIF",
            ImageFormat::Tiff => "TIFF",
            ImageFormat::Avif => "AVIF",
            ImageFormat::Ico => "ICO",
            ImageFormat::Qoi => "QOI",
            ImageFormat::Hdr => "HDR",
            ImageFormat::OpenExr => "OpenEXR",
            ImageFormat::Dds => "DDS",
            ImageFormat::Farbfeld => "Farbfeld",
            // Two-byte signatures ("BM", "P1".."P7") also start plenty of text files: only name
            // the format when the next bytes agree.
            ImageFormat::Bmp if bytes.len() >= 14 && bytes[6..10] == [0; 4] => "BMP",
            ImageFormat::Pnm if bytes.get(2).is_some_and(u8::is_ascii_whitespace) => "PNM",
            _ => return Err(ImageError::NotAnImage),
        };
        return Err(ImageError::Unsupported(name));
    }
    // Formats people commonly try that the image crate does not know: HEIC (iPhone photos),
    // identified by the major brand of their ISO-BMFF `ftyp` box, PDF and SVG (logos).
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let name = match &bytes[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" => Some("HEIC"),
            b"mif1" | b"msf1" => Some("HEIF"),
            b"avif" | b"avis" => Some("AVIF"),
            _ => None,
        };
        if let Some(name) = name {
            return Err(ImageError::Unsupported(name));
        }
    }
    if bytes.starts_with(b"%PDF-") {
        return Err(ImageError::Unsupported("PDF"));
    }
    if looks_like_svg(bytes) {
        return Err(ImageError::Unsupported("SVG"));
    }
    Err(ImageError::NotAnImage)
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| head[i] == b'<')
        && head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

/// Whether a JPEG has an end-of-image marker after its first scan: walks the marker segments to
/// the first SOS, then looks for `FF D9` in what follows (inside entropy-coded data `FF` is only
/// ever followed by `00` or a restart marker, so `FF D9` there is the real end). A file cut
/// short anywhere fails this; bytes after the end (e.g. the video of a "motion photo") do not
/// matter.
fn jpeg_has_end_of_image(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    loop {
        // Like libjpeg, skip stray bytes between segments (some encoders leave a few).
        while bytes.get(i).is_some_and(|&b| b != 0xFF) {
            i += 1;
        }
        if i >= bytes.len() {
            return false;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i + 1) else {
            return false;
        };
        match marker {
            // Standalone markers, no length.
            0x01 | 0xD0..=0xD8 => i += 2,
            // EOI before any scan: no image data.
            0xD9 => return false,
            _ => {
                let Some(length) = bytes.get(i + 2..i + 4) else {
                    return false;
                };
                let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return false;
                }
                i += 2 + length;
                if marker == 0xDA {
                    return bytes
                        .get(i..)
                        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]));
                }
            }
        }
    }
}

/// The start-of-frame marker of a JPEG (`C0` baseline, `C1` extended, `C2` progressive…),
/// walking the marker segments as [`jpeg_has_end_of_image`] does.
fn jpeg_frame_marker(bytes: &[u8]) -> Option<u8> {
    let mut i = 2;
    loop {
        while bytes.get(i).is_some_and(|&b| b != 0xFF) {
            i += 1;
        }
        while bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let marker = *bytes.get(i + 1)?;
        match marker {
            0x01 | 0xD0..=0xD8 => i += 2,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return Some(marker),
            0xD9 | 0xDA => return None,
            _ => {
                let length = bytes.get(i + 2..i + 4)?;
                i += 2 + usize::from(u16::from_be_bytes([length[0], length[1]])).max(2);
            }
        }
    }
}

/// The center square of a decoded image, flattened onto white (before resampling: resampling
/// straight alpha would bleed the arbitrary color of transparent pixels into their
/// neighbors), downscaled to `max_side` when larger, then turned upright.
fn square_photo(decoded: Decoded, max_side: u32) -> Result<RgbImage, ImageError> {
    let (width, height) = (decoded.width, decoded.height);
    let orientation = decoded.orientation;
    let side = width.min(height);
    let crop = ((width - side) / 2, (height - side) / 2, side, side);
    let square = decoded.into_8bit(crop, true)?;
    let out_side = side.min(max_side);
    // The center square of the upright image is the upright center square, so turning the
    // small result instead of the full-size one gives the same picture without a copy.
    let mut small = downscale(square, out_side, out_side);
    small.apply_orientation(orientation);
    Ok(small.into_rgb8())
}

/// `(width, height)` scaled down to fit in `max` × `max`, aspect kept; unchanged when it fits.
fn fit_within(width: u32, height: u32, max: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled =
            (u64::from(side) * u64::from(max) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max).clamp(1, max)
    };
    (scale(width), scale(height))
}

/// Resamples `image` to exactly `width` × `height` (a downscale, or a copy at the same size).
///
/// Large reductions go in two steps: an area-averaging reduction to twice the target, then
/// [`RESIZE_FILTER`]. The result is indistinguishable from a single Lanczos pass, whose kernel
/// grows with the reduction factor, at a fraction of the cost on multi-megapixel uploads.
///
/// Works on [`DynamicImage`] rather than calling the generic `imageops` functions: those would be
/// instantiated, and optimized or not, in this crate, while `DynamicImage`'s methods are
/// compiled with the `image` crate (optimized even in dev builds, see `Cargo.toml`).
fn downscale(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    const STEP: u32 = 2;
    let (src_w, src_h) = image.dimensions();
    if (src_w, src_h) == (width, height) {
        return image;
    }
    let far = |src: u32, dst: u32| src.checked_div(dst).is_some_and(|ratio| ratio > STEP);
    if far(src_w, width) && far(src_h, height) {
        image
            .thumbnail_exact(width * STEP, height * STEP)
            .resize_exact(width, height, RESIZE_FILTER)
    } else {
        image.resize_exact(width, height, RESIZE_FILTER)
    }
}

/// Resamples in premultiplied alpha, as the resampler assumes: with straight alpha the color of
/// fully transparent pixels (often black) would darken the edges of the logo. Premultiplies in
/// place; the result is small, and comes back as straight RGBA.
fn resize_premultiplied(image: DynamicImage, width: u32, height: u32) -> DynamicImage {
    if image.dimensions() == (width, height) {
        return image;
    }
    let premultiplied = match image {
        DynamicImage::ImageLumaA8(mut gray) => {
            premultiply(&mut gray, 2);
            DynamicImage::ImageLumaA8(gray)
        }
        DynamicImage::ImageRgba8(mut rgba) => {
            premultiply(&mut rgba, 4);
            DynamicImage::ImageRgba8(rgba)
        }
        opaque => return downscale(opaque, width, height),
    };
    let mut resized = downscale(premultiplied, width, height).into_rgba8();
    for pixel in resized.pixels_mut() {
        let a = u32::from(pixel[3]);
        for c in &mut pixel.0[..3] {
            // Fully transparent pixels get black; their color is never seen.
            *c = (u32::from(*c) * 255 + a / 2)
                .checked_div(a)
                .map_or(0, |v| v.min(255) as u8);
        }
    }
    DynamicImage::ImageRgba8(resized)
}

/// Multiplies the color samples of each pixel of `channels` samples (alpha last) by its alpha.
fn premultiply(samples: &mut [u8], channels: usize) {
    for pixel in samples.chunks_exact_mut(channels) {
        let a = u32::from(pixel[channels - 1]);
        for c in &mut pixel[..channels - 1] {
            *c = ((u32::from(*c) * a + 127) / 255) as u8;
        }
    }
}

fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        // Encoding a well-formed buffer does not fail; if it ever did, refuse rather than panic.
        .map_err(|_| ImageError::Corrupt)?;
    Ok(out)
}

fn encode_png(
    raw: &[u8],
    width: u32,
    height: u32,
    color: image::ExtendedColorType,
) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Default, PngFilter::Adaptive)
        .write_image(raw, width, height, color)
        .map_err(|_| ImageError::Corrupt)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::webp::WebPEncoder;
    use image::{Rgb, Rgba};

    const RED: Rgb<u8> = Rgb([220, 20, 20]);
    const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

    // ---- building test uploads ----

    fn jpeg_of(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 92)
            .write_image(
                image.as_raw(),
                image.width(),
                image.height(),
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode test JPEG");
        out
    }

    fn png_of(image: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode test PNG");
        out.into_inner()
    }

    fn webp_of(image: &DynamicImage) -> Vec<u8> {
        let mut out = Vec::new();
        image
            .write_with_encoder(WebPEncoder::new_lossless(&mut out))
            .expect("encode test WebP");
        out
    }

    /// A landscape whose outer bands — exactly what a center crop to a square removes — are red,
    /// and whose central square is blue.
    fn banded_landscape(width: u32, height: u32) -> RgbImage {
        let band = (width - height) / 2;
        RgbImage::from_fn(width, height, |x, _| {
            if x < band || x >= band + height {
                RED
            } else {
                BLUE
            }
        })
    }

    /// Left half red, right half blue.
    fn left_red(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, _| if x < width / 2 { RED } else { BLUE })
    }

    /// Smooth gradients with some detail: a stand-in for a portrait.
    fn photo_like(side: u32) -> RgbImage {
        photo_like_rect(side, side)
    }

    fn photo_like_rect(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let ring = ((x as f32 - width as f32 / 2.0).hypot(y as f32 - height as f32 / 2.0) / 9.0)
                .sin()
                .mul_add(40.0, 128.0) as u8;
            Rgb([(x * 255 / width) as u8, ring, (y * 255 / height) as u8])
        })
    }

    fn noise(width: u32, height: u32, mut seed: u64) -> RgbImage {
        RgbImage::from_fn(width, height, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let [a, b, c, ..] = seed.to_le_bytes();
            Rgb([a, b, c])
        })
    }

    /// Inserts whole segments right after the SOI marker of a JPEG.
    fn splice_after_soi(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
        assert_eq!(&jpeg[..2], [0xFF, 0xD8]);
        let mut out = jpeg[..2].to_vec();
        for segment in segments {
            out.extend_from_slice(segment);
        }
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len() + 2).expect("segment fits");
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A little-endian TIFF block with one IFD holding `entries` (tag, type, count, value/offset)
    /// followed by `extra` (data the entries point into, starting right after the IFD).
    fn tiff(entries: &[(u16, u16, u32, [u8; 4])], extra: &[u8]) -> Vec<u8> {
        let mut out = b"II*\0".to_vec();
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(value);
        }
        out.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        out.extend_from_slice(extra);
        out
    }

    /// TIFF with the orientation tag (0x0112, SHORT, 1 value).
    fn orientation_tiff(orientation: u16) -> Vec<u8> {
        let [lo, hi] = orientation.to_le_bytes();
        tiff(&[(0x0112, 3, 1, [lo, hi, 0, 0])], &[])
    }

    fn exif_app1(tiff: &[u8]) -> Vec<u8> {
        jpeg_segment(0xE1, &[b"Exif\0\0".as_slice(), tiff].concat())
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&out[4..]).to_be_bytes());
        out
    }

    /// Inserts chunks right after IHDR (signature 8 bytes + IHDR chunk 25 bytes).
    fn splice_after_ihdr(png: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
        assert_eq!(&png[12..16], b"IHDR");
        let mut out = png[..33].to_vec();
        for chunk in chunks {
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&png[33..]);
        out
    }

    /// A real PNG whose IHDR claims other dimensions (CRC fixed), so only the header is valid.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut png = png_of(&DynamicImage::ImageRgb8(RgbImage::new(40, 40)));
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    // ---- checking outputs ----

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).expect("output decodes")
    }

    fn assert_jpeg(bytes: &[u8]) {
        assert_eq!(&bytes[..3], [0xFF, 0xD8, 0xFF], "JPEG magic");
    }

    fn assert_png(bytes: &[u8]) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG magic");
    }

    fn is_blue(p: Rgb<u8>) -> bool {
        p[2] > 170 && p[0] < 80 && p[1] < 80
    }

    fn is_red(p: Rgb<u8>) -> bool {
        p[0] > 170 && p[1] < 80 && p[2] < 80
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    }

    fn assert_square_blue_photo(stored: &StoredImage) {
        assert_eq!((stored.width, stored.height), (PHOTO_PX, PHOTO_PX));
        assert_eq!(
            (stored.content_type, stored.extension),
            ("image/jpeg", "jpg")
        );
        assert_jpeg(&stored.bytes);
        let out = decode(&stored.bytes).to_rgb8();
        assert_eq!(out.dimensions(), (PHOTO_PX, PHOTO_PX));
        // The red bands were cropped away: center and all four edges are blue.
        for (x, y) in [(256, 256), (1, 256), (510, 256), (256, 1), (256, 510)] {
            assert!(
                is_blue(*out.get_pixel(x, y)),
                "({x}, {y}) = {:?}",
                out.get_pixel(x, y)
            );
        }
    }

    // ---- photos ----

    #[test]
    fn jpeg_landscape_is_center_cropped_to_a_512_square_jpeg() {
        let upload = jpeg_of(&banded_landscape(1200, 800));
        assert_square_blue_photo(&normalize_photo(&upload).expect("accepted"));
    }

    #[test]
    fn png_landscape_is_center_cropped_to_a_512_square_jpeg() {
        let upload = png_of(&DynamicImage::ImageRgb8(banded_landscape(1200, 800)));
        assert_square_blue_photo(&normalize_photo(&upload).expect("accepted"));
    }

    #[test]
    fn webp_landscape_is_center_cropped_to_a_512_square_jpeg() {
        let upload = webp_of(&DynamicImage::ImageRgb8(banded_landscape(1200, 800)));
        assert_eq!(&upload[8..12], b"WEBP");
        assert_square_blue_photo(&normalize_photo(&upload).expect("accepted"));
    }

    #[test]
    fn portrait_is_center_cropped_too() {
        // Transposed bands: top and bottom red.
        let landscape = banded_landscape(900, 600);
        let portrait = RgbImage::from_fn(600, 900, |x, y| *landscape.get_pixel(y, x));
        assert_square_blue_photo(&normalize_photo(&jpeg_of(&portrait)).expect("accepted"));
    }

    #[test]
    fn small_photo_is_cropped_but_not_upscaled() {
        let stored = normalize_photo(&jpeg_of(&banded_landscape(300, 200))).expect("accepted");
        assert_eq!((stored.width, stored.height), (200, 200));
        assert_eq!(decode(&stored.bytes).dimensions(), (200, 200));

        let stored = normalize_photo(&jpeg_of(&photo_like(MIN_SIDE_PX))).expect("accepted");
        assert_eq!((stored.width, stored.height), (MIN_SIDE_PX, MIN_SIDE_PX));
    }

    #[test]
    fn photo_metadata_is_stripped() {
        let gps = tiff(
            &[(0x010E, 2, 19, 26u32.to_le_bytes())],
            b"GPSLatitude-secret\0",
        );
        let upload = splice_after_soi(
            &jpeg_of(&photo_like(600)),
            &[
                exif_app1(&gps),
                jpeg_segment(
                    0xE1,
                    b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>GPS secret xmp</x:xmpmeta>",
                ),
                jpeg_segment(0xE2, b"ICC_PROFILE\0\x01\x01secret icc profile bytes"),
                jpeg_segment(0xFE, b"secret comment"),
            ],
        );
        for needle in [
            b"Exif".as_slice(),
            b"secret",
            b"GPS",
            b"ICC_PROFILE",
            b"adobe",
        ] {
            assert!(
                contains(&upload, needle),
                "the upload itself has {needle:?}"
            );
        }
        let stored = normalize_photo(&upload).expect("accepted");
        for needle in [
            b"Exif".as_slice(),
            b"secret",
            b"GPS",
            b"ICC_PROFILE",
            b"adobe",
        ] {
            assert!(
                !contains(&stored.bytes, needle),
                "output still has {needle:?}"
            );
        }
    }

    #[test]
    fn exif_orientation_6_is_applied() {
        // Orientation 6: the stored pixels must be rotated 90° clockwise for display, so the
        // stored left edge becomes the displayed top edge. A 1024×512 image with a red left half
        // shows as 512×1024 with a red top half; its center square (rows 256..768) has red
        // on top and blue at the bottom.
        let plain = jpeg_of(&left_red(1024, 512));
        let rotated = splice_after_soi(&plain, &[exif_app1(&orientation_tiff(6))]);

        let out = decode(&normalize_photo(&rotated).expect("accepted").bytes).to_rgb8();
        assert!(
            is_red(*out.get_pixel(256, 100)),
            "top: {:?}",
            out.get_pixel(256, 100)
        );
        assert!(
            is_blue(*out.get_pixel(256, 400)),
            "bottom: {:?}",
            out.get_pixel(256, 400)
        );

        // Control: without the tag the square is red on the left, blue on the right.
        let out = decode(&normalize_photo(&plain).expect("accepted").bytes).to_rgb8();
        assert!(is_red(*out.get_pixel(100, 256)));
        assert!(is_blue(*out.get_pixel(400, 256)));
        assert!(is_red(*out.get_pixel(100, 400)));
    }

    #[test]
    fn png_exif_orientation_is_applied_to_logos() {
        // Same semantics through a PNG eXIf chunk, on the logo path (no crop): 1024×512 with
        // orientation 6 displays as 512×1024, fitted to 256×512, red on top.
        let png = png_of(&DynamicImage::ImageRgb8(left_red(1024, 512)));
        let upload = splice_after_ihdr(&png, &[png_chunk(b"eXIf", &orientation_tiff(6))]);
        let stored = normalize_logo(&upload).expect("accepted");
        assert_eq!((stored.width, stored.height), (256, 512));
        let out = decode(&stored.bytes).to_rgb8();
        assert!(is_red(*out.get_pixel(128, 100)));
        assert!(is_blue(*out.get_pixel(128, 400)));
    }

    fn half_transparent(width: u32, height: u32) -> RgbaImage {
        // The transparent half hides black: a flatten or resize that ignores alpha shows it.
        RgbaImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([0, 200, 0, 255])
            }
        })
    }

    #[test]
    fn photo_alpha_is_flattened_onto_white() {
        let upload = png_of(&DynamicImage::ImageRgba8(half_transparent(64, 64)));
        let stored = normalize_photo(&upload).expect("accepted");
        assert_jpeg(&stored.bytes);
        let out = decode(&stored.bytes);
        assert!(!out.color().has_alpha());
        let out = out.to_rgb8();
        let Rgb([r, g, b]) = *out.get_pixel(8, 32);
        assert!(
            r > 240 && g > 240 && b > 240,
            "transparent became {r},{g},{b}"
        );
        let Rgb([r, g, b]) = *out.get_pixel(56, 32);
        assert!(
            r < 40 && g > 170 && b < 40,
            "opaque green became {r},{g},{b}"
        );
    }

    #[test]
    fn logo_keeps_transparency() {
        let upload = png_of(&DynamicImage::ImageRgba8(half_transparent(64, 64)));
        let stored = normalize_logo(&upload).expect("accepted");
        assert_eq!(
            (stored.content_type, stored.extension),
            ("image/png", "png")
        );
        assert_png(&stored.bytes);
        let out = decode(&stored.bytes);
        assert!(out.color().has_alpha());
        let out = out.to_rgba8();
        assert_eq!(out.get_pixel(8, 32)[3], 0);
        assert_eq!(*out.get_pixel(56, 32), Rgba([0, 200, 0, 255]));
    }

    #[test]
    fn logo_resize_does_not_darken_transparent_edges() {
        // Transparent black on the left, opaque white on the right: resampled in premultiplied
        // alpha, the partly transparent pixels at the border stay white.
        let logo = RgbaImage::from_fn(2000, 500, |x, _| {
            if x < 1000 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([255, 255, 255, 255])
            }
        });
        let stored = normalize_logo(&png_of(&DynamicImage::ImageRgba8(logo))).expect("accepted");
        assert_eq!((stored.width, stored.height), (512, 128));
        let out = decode(&stored.bytes).to_rgba8();
        assert_eq!(out.get_pixel(100, 64)[3], 0);
        assert_eq!(*out.get_pixel(400, 64), Rgba([255, 255, 255, 255]));
        for x in 0..512 {
            let Rgba([r, g, b, a]) = *out.get_pixel(x, 64);
            if a > 0 {
                assert!(r >= 250 && g >= 250 && b >= 250, "x={x}: {r},{g},{b},{a}");
            }
        }
    }

    #[test]
    fn wide_logo_is_fitted_within_512() {
        let upload = jpeg_of(&photo_like_rect(2000, 500));
        let stored = normalize_logo(&upload).expect("accepted");
        assert_eq!((stored.width, stored.height), (512, 128));
        assert_png(&stored.bytes);
        assert_eq!(decode(&stored.bytes).dimensions(), (512, 128));
    }

    #[test]
    fn small_logo_keeps_its_size_and_pixels() {
        let logo = RgbImage::from_fn(100, 50, |x, y| Rgb([x as u8, y as u8, 7]));
        let stored =
            normalize_logo(&png_of(&DynamicImage::ImageRgb8(logo.clone()))).expect("accepted");
        assert_eq!((stored.width, stored.height), (100, 50));
        assert_eq!(decode(&stored.bytes).to_rgb8(), logo);
    }

    #[test]
    fn logo_metadata_is_stripped() {
        let png = png_of(&DynamicImage::ImageRgb8(photo_like(64)));
        let upload = splice_after_ihdr(
            &png,
            &[
                png_chunk(b"tEXt", b"Comment\0secret text"),
                png_chunk(
                    b"eXIf",
                    &tiff(
                        &[(0x010E, 2, 19, 26u32.to_le_bytes())],
                        b"GPSLatitude-secret\0",
                    ),
                ),
            ],
        );
        let stored = normalize_logo(&upload).expect("accepted");
        for needle in [b"secret".as_slice(), b"GPS", b"tEXt", b"eXIf"] {
            assert!(
                !contains(&stored.bytes, needle),
                "output still has {needle:?}"
            );
        }
    }

    // ---- refusals ----

    fn all_refuse(upload: &[u8], expected: ImageError) {
        assert_eq!(normalize_photo(upload), Err(expected), "photo");
        assert_eq!(normalize_logo(upload), Err(expected), "logo");
        assert_eq!(vcard_thumbnail(upload), Err(expected), "vcard");
    }

    #[test]
    fn refuses_uploads_over_5_mb() {
        all_refuse(&vec![0u8; MAX_UPLOAD_BYTES + 1], ImageError::TooLarge);
        // Even a valid image: the length is checked before anything else.
        let mut padded = jpeg_of(&photo_like(64));
        padded.resize(MAX_UPLOAD_BYTES + 1, 0);
        all_refuse(&padded, ImageError::TooLarge);
        // Exactly the limit is not too large (just not an image).
        all_refuse(&vec![0u8; MAX_UPLOAD_BYTES], ImageError::NotAnImage);
    }

    #[test]
    fn refuses_random_bytes_and_empty_input() {
        let random = noise(64, 64, 0x9E37_79B9_7F4A_7C15).into_raw();
        all_refuse(&random, ImageError::NotAnImage);
        all_refuse(&[], ImageError::NotAnImage);
        all_refuse(b"BMW is a car, not a bitmap", ImageError::NotAnImage);
        all_refuse(b"P1ease note: plain text", ImageError::NotAnImage);
    }

    #[test]
    fn refuses_other_formats_by_name() {
        let gif = b"GIF89a\x20\x00\x20\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,";
        all_refuse(gif, ImageError::Unsupported("GIF"));
        let err = normalize_photo(gif).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GIF images are not accepted; upload a JPEG, PNG or WebP"
        );
        assert_eq!(err.code(), "unsupported_image_format");

        let mut bmp = b"BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00".to_vec();
        bmp.resize(70, 0);
        all_refuse(&bmp, ImageError::Unsupported("BMP"));
        all_refuse(b"II*\0\x08\0\0\0\0\0", ImageError::Unsupported("TIFF"));
        all_refuse(
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
            ImageError::Unsupported("HEIC"),
        );
        all_refuse(
            b"\0\0\0\x1cftypavis\0\0\0\0avis",
            ImageError::Unsupported("AVIF"),
        );
        all_refuse(
            b"\0\0\0\x1cftypmif1\0\0\0\0mif1",
            ImageError::Unsupported("HEIF"),
        );
        all_refuse(
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            ImageError::Unsupported("PDF"),
        );
        all_refuse(
            b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<SVG xmlns=\"http://www.w3.org/2000/svg\"/>",
            ImageError::Unsupported("SVG"),
        );
        all_refuse(b"<html><body>not svg</body></html>", ImageError::NotAnImage);
    }

    #[test]
    fn refuses_truncated_images_as_corrupt() {
        let jpeg = jpeg_of(&photo_like(256));
        all_refuse(&jpeg[..jpeg.len() / 2], ImageError::Corrupt);
        // Cut inside the headers, too.
        all_refuse(&jpeg[..40], ImageError::Corrupt);
        all_refuse(&jpeg[..3], ImageError::Corrupt);

        let png = png_of(&DynamicImage::ImageRgb8(noise(256, 256, 7)));
        all_refuse(&png[..png.len() / 2], ImageError::Corrupt);

        let webp = webp_of(&DynamicImage::ImageRgb8(noise(256, 256, 7)));
        all_refuse(&webp[..webp.len() / 2], ImageError::Corrupt);
    }

    #[test]
    fn jpeg_end_marker_check_is_not_too_strict() {
        let jpeg = jpeg_of(&photo_like(256));
        // Only the final EOI missing: the decoder would accept it, the walk does not.
        all_refuse(&jpeg[..jpeg.len() - 2], ImageError::Corrupt);

        // Data after the end of the image (a "motion photo" video, a second picture).
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"\0\0\0\x18ftypmp42 secret trailing video");
        let stored = normalize_photo(&trailing).expect("accepted");
        assert!(!contains(&stored.bytes, b"secret"));

        // Stray bytes between two segments, skipped as libjpeg does.
        let with_junk = splice_after_soi(&jpeg, &[jpeg_segment(0xFE, b"note"), vec![0x00, 0x17]]);
        assert_eq!(normalize_photo(&with_junk).map(|s| s.width), Ok(256));
    }

    #[test]
    fn refuses_bombs_from_the_header_alone() {
        // The IDAT still holds 40×40 pixels: only the header is read before refusing, so this
        // neither allocates 1.6 GB nor spends time decoding.
        all_refuse(&png_claiming(20_000, 20_000), ImageError::TooManyPixels);
        all_refuse(&png_claiming(20_000, 100), ImageError::TooManyPixels);
        // Under 10000 a side, over 40 megapixels.
        all_refuse(&png_claiming(9_000, 9_000), ImageError::TooManyPixels);

        // A JPEG whose frame header (SOF0) claims 20000×20000.
        let mut jpeg = jpeg_of(&photo_like(64));
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF0");
        jpeg[sof + 5..sof + 7].copy_from_slice(&20_000u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&20_000u16.to_be_bytes());
        all_refuse(&jpeg, ImageError::TooManyPixels);
    }

    #[test]
    fn the_header_tells_the_cost_before_any_decode() {
        // The IDAT holds 40×40 pixels, the header claims 6000×6000: only the header is read.
        let header = probe(&png_claiming(6_000, 6_000)).expect("within the limits");
        assert_eq!((header.width, header.height), (6_000, 6_000));
        assert_eq!(header.pixel_bytes, 6_000 * 6_000 * 3);
        assert!(header.decode_cost() >= header.pixel_bytes);
        assert!(
            header.decode_cost() < header.pixel_bytes * 2,
            "a PNG costs its pixels"
        );
        assert_eq!(
            probe(&png_claiming(20_000, 20_000)),
            Err(ImageError::TooManyPixels)
        );
        assert_eq!(probe(b"not an image"), Err(ImageError::NotAnImage));

        // A progressive JPEG's decoder keeps its coefficients: it costs more than a baseline one.
        let baseline = jpeg_of(&photo_like(256));
        assert_eq!(jpeg_frame_marker(&baseline), Some(0xC0));
        let header = probe(&baseline).unwrap();
        assert!(!header.progressive);
        let progressive = ImageHeader {
            progressive: true,
            ..header
        };
        assert!(progressive.decode_cost() >= header.decode_cost() + 256 * 256 * 5);
        let mut sof2 = baseline.clone();
        let sof = sof2.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        sof2[sof + 1] = 0xC2;
        assert_eq!(jpeg_frame_marker(&sof2), Some(0xC2));
    }

    #[test]
    fn refuses_tiny_images() {
        all_refuse(
            &png_of(&DynamicImage::ImageRgb8(photo_like(16))),
            ImageError::TooSmall,
        );
        all_refuse(&jpeg_of(&photo_like_rect(200, 31)), ImageError::TooSmall);
    }

    #[test]
    fn error_codes_and_messages() {
        let cases = [
            (
                ImageError::TooLarge,
                "image_too_large",
                "Images are limited to 5 MB",
            ),
            (
                ImageError::NotAnImage,
                "not_an_image",
                "The file is not a JPEG, PNG or WebP image",
            ),
            (
                ImageError::Unsupported("HEIC"),
                "unsupported_image_format",
                "HEIC images are not accepted; upload a JPEG, PNG or WebP",
            ),
            (
                ImageError::TooManyPixels,
                "image_too_many_pixels",
                "The image has too many pixels: at most 40 megapixels and 10000 px a side",
            ),
            (
                ImageError::TooSmall,
                "image_too_small",
                "The image is too small: at least 32 px a side",
            ),
            (
                ImageError::Corrupt,
                "image_corrupt",
                "The image could not be decoded",
            ),
        ];
        for (error, code, message) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(MAX_PIXELS, 40_000_000);
        assert_eq!((MAX_SIDE_PX, MIN_SIDE_PX), (10_000, 32));
    }

    // ---- vCard thumbnails ----

    #[test]
    fn vcard_thumbnail_is_a_small_200_square_jpeg() {
        let stored = normalize_photo(&jpeg_of(&photo_like(700))).expect("accepted");
        let thumb = vcard_thumbnail(&stored.bytes).expect("thumbnail");
        assert_jpeg(&thumb);
        assert_eq!(
            decode(&thumb).dimensions(),
            (VCARD_PHOTO_PX, VCARD_PHOTO_PX)
        );
        assert!(thumb.len() < 20 * 1024, "{} bytes", thumb.len());
    }

    #[test]
    fn vcard_thumbnail_of_noise_still_works() {
        let stored = normalize_photo(&jpeg_of(&noise(512, 512, 3))).expect("accepted");
        let thumb = vcard_thumbnail(&stored.bytes).expect("thumbnail");
        assert_eq!(
            decode(&thumb).dimensions(),
            (VCARD_PHOTO_PX, VCARD_PHOTO_PX)
        );
    }

    #[test]
    fn vcard_thumbnail_does_not_upscale() {
        let stored = normalize_photo(&jpeg_of(&photo_like(120))).expect("accepted");
        let thumb = vcard_thumbnail(&stored.bytes).expect("thumbnail");
        assert_eq!(decode(&thumb).dimensions(), (120, 120));
    }

    // ---- hashes and determinism ----

    #[test]
    fn content_hash_is_truncated_sha256_hex() {
        // SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 ...
        assert_eq!(content_hash(b""), "e3b0c44298fc1c149afbf4c8996fb924");
        let hash = content_hash(b"hello");
        assert_eq!(hash.len(), 32);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(hash, content_hash(b"hello"));
    }

    #[test]
    fn normalization_is_deterministic_and_hashed() {
        let upload = jpeg_of(&photo_like(600));
        let first = normalize_photo(&upload).expect("accepted");
        assert_eq!(first, normalize_photo(&upload).expect("accepted"));
        assert_eq!(first.hash, content_hash(&first.bytes));

        let other = normalize_photo(&jpeg_of(&banded_landscape(1200, 800))).expect("accepted");
        assert_ne!(first.hash, other.hash);

        let logo = normalize_logo(&upload).expect("accepted");
        assert_eq!(logo, normalize_logo(&upload).expect("accepted"));
        assert_eq!(logo.hash, content_hash(&logo.bytes));
    }
}
