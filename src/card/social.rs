//! How a social link is labelled, on the card page and in the saved contact alike: the same link
//! must not read "Stackoverflow" on one and "Stack Overflow" on the other.

/// Services written their own way (brand capitalization, spaces). Matched on letters and digits
/// only, case-insensitively, so `stack_overflow`, `Stack-Overflow` and `stackoverflow` all match.
const KNOWN: &[&str] = &[
    "Behance",
    "Bluesky",
    "Calendly",
    "Discord",
    "Dribbble",
    "Facebook",
    "GitHub",
    "GitLab",
    "Instagram",
    "LinkedIn",
    "Mastodon",
    "Medium",
    "Pinterest",
    "Reddit",
    "Snapchat",
    "Stack Overflow",
    "Substack",
    "Telegram",
    "Threads",
    "TikTok",
    "Twitch",
    "Twitter",
    "Vimeo",
    "WhatsApp",
    "X",
    "XING",
    "YouTube",
];

/// The label of a social link named `name` (its key in the profile, e.g. `linkedin`): the brand's
/// spelling for known services, otherwise the name, control characters dropped, whitespace
/// collapsed, first letter capitalized. `None` when nothing is left.
pub fn label(name: &str) -> Option<String> {
    let name = name
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    if let Some(known) = KNOWN.iter().find(|known| key(known) == key(&name)) {
        return Some((*known).to_owned());
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_services_keep_their_spelling() {
        assert_eq!(label("linkedin").as_deref(), Some("LinkedIn"));
        assert_eq!(label("GitHub").as_deref(), Some("GitHub"));
        assert_eq!(label(" YouTube ").as_deref(), Some("YouTube"));
        assert_eq!(label("stack-overflow").as_deref(), Some("Stack Overflow"));
        assert_eq!(label("stack_overflow").as_deref(), Some("Stack Overflow"));
        assert_eq!(label("stackoverflow").as_deref(), Some("Stack Overflow"));
        assert_eq!(label("x").as_deref(), Some("X"));
        assert_eq!(label("twitter").as_deref(), Some("Twitter"));
        assert_eq!(label("xing").as_deref(), Some("XING"));
    }

    #[test]
    fn other_names_get_a_capital() {
        assert_eq!(label("mastodon").as_deref(), Some("Mastodon"));
        assert_eq!(label("my  blog").as_deref(), Some("My blog"));
        assert_eq!(label("ñandú").as_deref(), Some("Ñandú"));
        assert_eq!(label("élan").as_deref(), Some("Élan"));
        assert_eq!(label(" \u{7} "), None);
        assert_eq!(label(""), None);
    }

    /// The label each of the card's links gets on the page and in the saved contact.
    #[test]
    fn page_and_contact_label_a_link_alike() {
        use crate::card::{CardProfile, CardUrls, page, vcard};

        let names = [
            "linkedin",
            "stack_overflow",
            "Stack-Overflow",
            "bluesky",
            "xing",
            "youtube",
            "calendly",
            "my  blog",
            "mastodon",
        ];
        let mut card = CardProfile::minimal("acme", "jane", "Jane");
        card.social_links = names
            .iter()
            .enumerate()
            .map(|(i, name)| ((*name).to_owned(), format!("https://s{i}.example/p")))
            .collect();
        let urls = CardUrls::new("https://c.example", "acme", "jane");
        let html = page::render(&card, &urls).html;
        let contact = vcard::v3(&card, &urls, None);

        for (i, name) in names.iter().enumerate() {
            let url = format!("https://s{i}.example/p");
            let on_page = html
                .split_once(&format!("href=\"{url}\""))
                .and_then(|(_, rest)| rest.split_once("<span class=\"l\">"))
                .and_then(|(_, rest)| rest.split_once('<'))
                .map(|(label, _)| label)
                .unwrap_or_else(|| panic!("no button for {url} in\n{html}"));
            let group = contact
                .lines()
                .find_map(|line| line.strip_suffix(&format!(".URL:{url}")))
                .unwrap_or_else(|| panic!("no URL {url} in\n{contact}"));
            let in_contact = contact
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{group}.X-ABLabel:")))
                .unwrap_or_else(|| panic!("no label for {group} in\n{contact}"));
            assert_eq!(on_page, in_contact, "{name}");
            assert_eq!(Some(on_page.to_owned()), label(name), "{name}");
        }
    }
}
