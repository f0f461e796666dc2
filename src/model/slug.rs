//! The slugs of public card URLs: made once, from a name, and never changed.

/// A URL slug from a name: `Jane Smith` → `jane-smith`, at most `max` characters.
pub fn slug_base(name: &str, max: usize, fallback: &str) -> String {
    let slug = slug::slugify(name);
    let mut cut: String = slug.chars().take(max).collect();
    while cut.ends_with('-') {
        cut.pop();
    }
    if cut.is_empty() {
        fallback.to_owned()
    } else {
        cut
    }
}

/// Six random hex digits for slugs that must not be guessed or collide.
pub fn random_suffix() -> String {
    use rand::Rng;
    format!("{:06x}", rand::rng().random_range(0..0x100_0000u32))
}
