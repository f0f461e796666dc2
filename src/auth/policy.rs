//! What a new password must not be, after NIST SP 800-63B §3.1.1.2: shorter than 8 characters
//! (checked at the edge, with the longest allowed), a commonly used one, or one derived from the
//! account itself (its email, the person's name, the company's name, this service's name).
//!
//! Guessability is estimated by zxcvbn: its dictionaries of common passwords, words and names,
//! keyboard patterns, repeats, sequences and dates, plus the account's own words as a dictionary
//! of their own. A password needs an estimated 10^8 guesses or more (zxcvbn score 3): a long
//! phrase of unrelated words passes, composition rules play no part.

use poem::http::StatusCode;
use zxcvbn::{Score, matching::patterns::MatchPattern};

use crate::error::ApiError;

/// The weakest estimate accepted: at least 10^8 guesses.
const MIN_SCORE: Score = Score::Three;

/// How the service calls itself, a word nobody should build a password for it on.
const SERVICE_NAME: &str = "callingcard";

/// The words of the account a password must not be built on, each with the field it came from.
#[derive(Debug, Clone, Default)]
pub struct PasswordContext {
    /// Each word, with the fields it appears in.
    words: Vec<(String, Vec<&'static str>)>,
}

impl PasswordContext {
    /// An email: the whole address, its local part and the words in it.
    pub fn email(mut self, field: &'static str, email: &str) -> Self {
        let email = email.trim().to_lowercase();
        if let Some((local, domain)) = email.split_once('@') {
            self.push_words(field, local);
            self.add(field, local);
            // The domain's first label (`acme` of `acme.co.uk`); `com` and the like are no help.
            if let Some(label) = domain.split('.').next() {
                self.add(field, label);
            }
        }
        self.add(field, &email);
        self
    }

    /// A name: the whole of it and each of its words.
    pub fn name(mut self, field: &'static str, name: &str) -> Self {
        let name = name.trim().to_lowercase();
        self.push_words(field, &name);
        self.add(field, &name);
        self
    }

    fn push_words(&mut self, field: &'static str, text: &str) {
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            self.add(field, word);
        }
    }

    fn add(&mut self, field: &'static str, word: &str) {
        // Shorter fragments would match by chance inside unrelated words.
        if word.chars().count() < 3 {
            return;
        }
        match self.words.iter_mut().find(|(w, _)| w == word) {
            Some((_, fields)) if !fields.contains(&field) => fields.push(field),
            Some(_) => {}
            None => self.words.push((word.to_owned(), vec![field])),
        }
    }
}

/// `Ok` when `password` may be set; otherwise a 422 naming `field` and, for a password built on
/// the account, the field it was built on.
pub fn check(field: &str, password: &str, context: &PasswordContext) -> Result<(), ApiError> {
    let words: Vec<&str> = context
        .words
        .iter()
        .map(|(w, _)| w.as_str())
        .chain([SERVICE_NAME])
        .collect();
    let source = |word: &str| match context.words.iter().find(|(w, _)| w == word) {
        Some((_, fields)) => fields
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(" and "),
        None => "the name of this service".to_owned(),
    };
    // The whole value equal to one of the account's: refused whatever the estimate says.
    let whole = password.trim().to_lowercase();
    if let Some(word) = words.iter().find(|w| **w == whole) {
        return Err(built_on(field, &source(word)));
    }
    let estimate = zxcvbn::zxcvbn(password, &words);
    if estimate.score() >= MIN_SCORE {
        return Ok(());
    }
    // zxcvbn ranks the account's words by their position in `words` (from 1).
    let own_word = estimate.sequence().iter().find_map(|m| match &m.pattern {
        MatchPattern::Dictionary(d)
            if d.rank >= 1 && words.get(d.rank - 1) == Some(&d.matched_word.as_str()) =>
        {
            Some(d.matched_word.as_str())
        }
        _ => None,
    });
    if let Some(word) = own_word {
        return Err(built_on(field, &source(word)));
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({})", w.to_string().trim_end_matches('.')))
        .unwrap_or_default();
    Err(weak(format!(
        "`{field}` is too easy to guess{why}. A few unrelated words, or a longer phrase, \
             make a good password"
    )))
}

fn built_on(field: &str, source: &str) -> ApiError {
    weak(format!(
        "`{field}` is too easy to guess: it is built on {source}. Choose one unrelated to the \
         account"
    ))
}

fn weak(detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "weak_password", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> PasswordContext {
        PasswordContext::default()
            .email("email", "ada.lovelace@analytical-engines.example")
            .name("full_name", "Ada Lovelace")
            .name("company_name", "Analytical Engines")
    }

    fn refused(password: &str) -> String {
        let err = check("password", password, &account()).expect_err(password);
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        assert_eq!(err.code(), "weak_password");
        err.to_string()
    }

    #[test]
    fn common_and_patterned_passwords_are_refused() {
        for password in [
            "12345678",
            "password",
            "Password1",
            "        ",
            "qwertyuiop",
            "aaaaaaaaaaaa",
            "abcdefgh",
            "iloveyou",
            "p@ssw0rd",
            "letmein123",
            "19871987",
        ] {
            let detail = refused(password);
            assert!(
                detail.contains("`password` is too easy to guess"),
                "{detail}"
            );
        }
        assert!(refused("password").contains("common password"));
    }

    #[test]
    fn passwords_built_on_the_account_name_the_field() {
        for (password, field) in [
            ("ada.lovelace@analytical-engines.example", "`email`"),
            ("ADA.LOVELACE@analytical-engines.example", "`email`"),
            ("ada.lovelace", "`email`"),
            ("lovelace2024", "`email`"),
            ("Ada Lovelace", "`full_name`"),
            ("analytical engines", "`company_name`"),
            ("callingcard", "the name of this service"),
            ("CallingCard1", "the name of this service"),
        ] {
            let detail = refused(password);
            assert!(detail.contains(field), "{password}: {detail}");
        }
        // A name seen only in the full name or the company name is named after its own field.
        let context = PasswordContext::default()
            .email("email", "a1@example.com")
            .name("full_name", "Zebulon Quartermaine")
            .name("company_name", "Wyvernforge Holdings");
        let detail = check("new_password", "zebulonquartermaine", &context)
            .unwrap_err()
            .to_string();
        assert!(
            detail.contains("`new_password`") && detail.contains("`full_name`"),
            "{detail}"
        );
        let detail = check("new_password", "Wyvernforge Holdings!", &context)
            .unwrap_err()
            .to_string();
        assert!(detail.contains("`company_name`"), "{detail}");
    }

    #[test]
    fn unrelated_phrases_pass_without_composition_rules() {
        for password in [
            "correct horse battery staple",
            "violet anchor drizzle",
            "tr0ub4dor&3 horse",
            "Quiet-Otter-Harbor-1911",
            "gl4ss-marmot-teapot",
        ] {
            assert!(
                check("password", password, &account()).is_ok(),
                "{password}"
            );
        }
    }
}
