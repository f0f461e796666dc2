//! Colors as the card shows them: one parser for the hex forms people write, and the WCAG 2
//! luminance and contrast that choose text on a brand color and keep a QR code scannable.

use std::fmt;

/// An sRGB color, 8 bits a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const BLACK: Rgb = Rgb(0, 0, 0);
    pub const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);

    /// `#rgb`, `#rrggbb`, or either without the `#` (a `#` must be written `%23` in a query
    /// string, and people forget), case-insensitive.
    pub fn parse_hex(value: &str) -> Option<Self> {
        let hex = value.strip_prefix('#').unwrap_or(value);
        // Checked first because `from_str_radix` would also accept a leading `+`, and so that
        // the slicing below is on ASCII only.
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |digits: &str| u8::from_str_radix(digits, 16).ok();
        match hex.len() {
            3 => {
                let short = |i: usize| channel(&hex[i..=i]).map(|c| c * 0x11);
                Some(Rgb(short(0)?, short(1)?, short(2)?))
            }
            6 => Some(Rgb(
                channel(&hex[0..2])?,
                channel(&hex[2..4])?,
                channel(&hex[4..6])?,
            )),
            _ => None,
        }
    }

    /// `#rgb` or `#rrggbb` with its `#`, as CSS and the stored brand color write it.
    pub fn parse_css(value: &str) -> Option<Self> {
        value.strip_prefix('#').and_then(Self::parse_hex)
    }

    /// WCAG 2 relative luminance: sRGB channels linearized, then weighted by how bright each
    /// primary looks. From 0 (black) to 1 (white).
    pub fn relative_luminance(self) -> f64 {
        fn linear(channel: u8) -> f64 {
            let c = f64::from(channel) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    pub fn is_gray(self) -> bool {
        self.0 == self.1 && self.1 == self.2
    }
}

/// `#rrggbb`, lowercase: the only form a color takes in our output.
impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// WCAG contrast ratio between two colors, from 1:1 (same) to 21:1 (black on white).
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (a.relative_luminance(), b.relative_luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(Rgb::parse_hex("#1a237e"), Some(Rgb(0x1a, 0x23, 0x7e)));
        assert_eq!(Rgb::parse_hex("1A237E"), Some(Rgb(0x1a, 0x23, 0x7e)));
        assert_eq!(Rgb::parse_hex("#fff"), Some(Rgb::WHITE));
        assert_eq!(Rgb::parse_hex("abc"), Some(Rgb(0xaa, 0xbb, 0xcc)));
        for bad in [
            "", "#", "#abcd", "#ggg", "#é12", "+ab", "##abc", "#12345", "#1234567",
        ] {
            assert_eq!(Rgb::parse_hex(bad), None, "{bad:?}");
        }
        assert_eq!(Rgb::parse_css("#abc"), Some(Rgb(0xaa, 0xbb, 0xcc)));
        assert_eq!(Rgb::parse_css("abc"), None);
        assert_eq!(Rgb::parse_css("red; } body { display:none"), None);
        assert_eq!(Rgb(0x1a, 0x23, 0x7e).to_string(), "#1a237e");
    }

    #[test]
    fn luminance_and_contrast_match_wcag() {
        assert_eq!(Rgb::BLACK.relative_luminance(), 0.0);
        assert!((Rgb::WHITE.relative_luminance() - 1.0).abs() < 1e-9);
        assert!((contrast_ratio(Rgb::BLACK, Rgb::WHITE) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(Rgb::WHITE, Rgb::BLACK) - 21.0).abs() < 1e-9);
        assert!((contrast_ratio(Rgb(0x77, 0x77, 0x77), Rgb::WHITE) - 4.48).abs() < 0.01);
    }
}
