//! The "form started at" token of a card's lead form: when the page was served, signed for that
//! card, so that a submission can be refused when it comes too soon after (a script posting at
//! once) or too long after (a token copied once and replayed).
//!
//! `<unix seconds>.<HMAC-SHA256 hex, 128 bits>` over the card's company and employee ids and the
//! time, keyed by a secret derived from the token secret (as visitor ids are).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::hex;

/// How long a served form stays good. The card page's ETag changes daily when it holds a form
/// (see `api::cards`), so a page revalidated from a browser's cache carries a token of that day.
pub const MAX_AGE: Duration = Duration::from_secs(48 * 3600);

/// Signs and checks form tokens.
#[derive(Clone)]
pub struct FormTokens {
    key: Vec<u8>,
}

/// Why a token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Missing, malformed, or not signed by us for this card.
    Invalid,
    /// Sent back sooner than the minimum time to fill the form.
    TooFast,
    /// Older than [`MAX_AGE`].
    Expired,
}

impl FormTokens {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, company_id: Uuid, employee_id: Uuid, issued: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(company_id.as_bytes());
        mac.update(employee_id.as_bytes());
        mac.update(&issued.to_be_bytes());
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        hex::lower(&bytes[..16])
    }

    /// The token of a form of this card served at `now` (unix seconds).
    pub fn issue(&self, company_id: Uuid, employee_id: Uuid, now: i64) -> String {
        format!("{now}.{}", self.mac(company_id, employee_id, now))
    }

    /// Checks a token sent back at `now` with the form of this card.
    pub fn check(
        &self,
        token: &str,
        company_id: Uuid,
        employee_id: Uuid,
        now: i64,
        min_fill: Duration,
    ) -> Result<(), Refused> {
        let (issued, mac) = token.split_once('.').ok_or(Refused::Invalid)?;
        let issued: i64 = issued.parse().map_err(|_| Refused::Invalid)?;
        let expected = self.mac(company_id, employee_id, issued);
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return Err(Refused::Invalid);
        }
        let age = now - issued;
        if age < i64::try_from(min_fill.as_secs()).unwrap_or(i64::MAX) {
            return Err(Refused::TooFast);
        }
        if age > i64::try_from(MAX_AGE.as_secs()).unwrap_or(i64::MAX) {
            return Err(Refused::Expired);
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hold_for_their_card_between_the_minimum_and_the_maximum_age() {
        let tokens = FormTokens::new(b"secret");
        let (company, employee) = (Uuid::new_v4(), Uuid::new_v4());
        let min = Duration::from_secs(3);
        let token = tokens.issue(company, employee, 1_000);
        assert_eq!(
            tokens.check(&token, company, employee, 1_001, min),
            Err(Refused::TooFast)
        );
        assert_eq!(tokens.check(&token, company, employee, 1_003, min), Ok(()));
        let late = 1_000 + MAX_AGE.as_secs() as i64 + 1;
        assert_eq!(
            tokens.check(&token, company, employee, late, min),
            Err(Refused::Expired)
        );
        // Another card, another key, a changed time or a mangled token: not ours.
        assert_eq!(
            tokens.check(&token, company, Uuid::new_v4(), 1_010, min),
            Err(Refused::Invalid)
        );
        let other = FormTokens::new(b"other");
        assert_eq!(
            other.check(&token, company, employee, 1_010, min),
            Err(Refused::Invalid)
        );
        let moved = token.replacen("1000", "900", 1);
        assert_eq!(
            tokens.check(&moved, company, employee, 1_010, min),
            Err(Refused::Invalid)
        );
        for bad in ["", ".", "abc", "1000.", "x.y"] {
            assert_eq!(
                tokens.check(bad, company, employee, 1_010, min),
                Err(Refused::Invalid)
            );
        }
    }
}
