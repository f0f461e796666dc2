//! The `X-CallingCard-Signature` header, as Stripe signs its webhooks: `t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the endpoint's secret. The timestamp is signed
//! with the body, so a receiver that refuses old timestamps refuses replays too.

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// How a new endpoint's secret starts, so people recognize it (and secret scanners too).
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 32 random bytes, hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", crate::hex::lower(&bytes))
}

/// The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    crate::hex::lower(&mac.finalize().into_bytes())
}

/// The header's value.
pub fn header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_timestamp_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            sign("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        let h = header("whsec_test", 1_700_000_000, b"{}");
        assert!(h.starts_with("t=1700000000,v1="), "{h}");
        assert_ne!(
            sign("whsec_test", 1_700_000_001, b"{}"),
            sign("whsec_test", 1_700_000_000, b"{}")
        );
        let secret = new_secret();
        assert!(
            secret.starts_with(SECRET_PREFIX) && secret.len() == 70,
            "{secret}"
        );
        assert_ne!(new_secret(), secret);
    }
}
