//! Privacy-preserving visitor ids: unique visitors can be counted per day, never followed.
//!
//! The id of a visitor is a keyed hash (HMAC-SHA256) of the client's address and user agent under
//! a key derived from a server secret and the UTC date:
//!
//! ```text
//! day_key    = HMAC-SHA256(secret, "visitor:" || "YYYY-MM-DD")
//! visitor_id = hex(HMAC-SHA256(day_key, ip_bytes || 0x00 || user_agent)[..16])
//! rate_key   = HMAC-SHA256(HMAC-SHA256(secret, "ratelimit"), ip_bytes)[..16]
//! ```
//!
//! The same visitor gets the same id all day and an unrelated one the next day, so the ids count
//! unique visitors per day but cannot link a person's visits across days, and the raw address is
//! never stored. Without the secret the ids cannot be recomputed from a guessed address (the IPv4
//! space is small enough to enumerate against a plain hash, not against a keyed one).
//!
//! `ip_bytes` is the 4-byte IPv4 address, or the first 8 bytes (the /64 prefix) of an IPv6
//! address: privacy extensions (RFC 8981) rotate the low 64 bits every day or so, and one
//! household or phone gets one /64, so the prefix is what identifies a client as stably as an
//! IPv4 address does (and hashing less of the address is better for privacy too). An
//! IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as seen by a dual-stack socket) is the IPv4
//! address it maps.
//!
//! HMAC is the `hmac` crate's over `sha2`, checked here against RFC 4231.

use std::fmt;
use std::net::IpAddr;

use chrono::NaiveDate;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::hex;

/// The secret behind visitor ids and rate-limit keys.
#[derive(Clone)]
pub struct VisitorKey {
    secret: Vec<u8>,
    /// `HMAC(secret, "ratelimit")`, the fixed key of [`VisitorKey::rate_key`].
    rate: [u8; 32],
}

/// Never prints the secret.
impl fmt::Debug for VisitorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VisitorKey(..)")
    }
}

impl VisitorKey {
    /// A key from a server secret (which should be at least 32 random bytes).
    pub fn new(secret: &[u8]) -> Self {
        VisitorKey {
            secret: secret.to_vec(),
            rate: hmac_sha256(secret, &[b"ratelimit"]),
        }
    }

    /// A daily-rotating keyed hash of the client's IP and user agent: HMAC-SHA256(key =
    /// HMAC(secret, "visitor:" + UTC date "YYYY-MM-DD"), ip_bytes || 0x00 || user_agent), first
    /// 16 bytes, lowercase hex (32 chars). The same visitor gets the same id all day (UTC) and an
    /// unrelated one the next day, so ids can count unique visitors per day but never follow a
    /// person across days, and the raw IP is never stored.
    ///
    /// IPv6 addresses count by their /64 prefix, IPv4-mapped ones as IPv4 (see the module docs).
    pub fn visitor_id(&self, ip: IpAddr, user_agent: &str, day: NaiveDate) -> String {
        let label = format!("visitor:{}", day.format("%Y-%m-%d"));
        let day_key = hmac_sha256(&self.secret, &[label.as_bytes()]);
        let mac = hmac_sha256(&day_key, &[&ip_bytes(&ip), &[0], user_agent.as_bytes()]);
        hex::lower(&mac[..16])
    }

    /// Also a key for the rate limiter: the IP alone (no UA, so switching UA does not escape),
    /// not rotating: HMAC(HMAC(secret, "ratelimit"), ip_bytes), first 16 bytes.
    ///
    /// IPv6 addresses count by their /64 prefix (so rotating the low bits does not escape either),
    /// IPv4-mapped ones as IPv4.
    pub fn rate_key(&self, ip: IpAddr) -> [u8; 16] {
        let mac = hmac_sha256(&self.rate, &[&ip_bytes(&ip)]);
        let mut out = [0; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }
}

/// The bytes of an address that identify a client: all 4 of IPv4 (IPv4-mapped IPv6 included),
/// the /64 prefix of IPv6.
fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets()[..8].to_vec(),
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenation of `message` parts.
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Mobile/15E148";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn key() -> VisitorKey {
        VisitorKey::new(b"test-secret")
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        assert_eq!(
            hex::lower(&hmac_sha256(&[0x0b; 20], &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2: a key shorter than the output.
        assert_eq!(
            hex::lower(&hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The message may come in parts.
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya ", b"", b"want for nothing?"]),
            hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])
        );
        // Test case 6: a key longer than the block size, hashed first.
        assert_eq!(
            hex::lower(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn known_answers() {
        // Computed independently (Python's hmac module) from the construction in the module
        // docs, so the format is pinned: changing it would silently split every day's counts.
        let key = key();
        let d = day("2024-03-01");
        assert_eq!(
            key.visitor_id(ip("203.0.113.7"), "Mozilla/5.0", d),
            "cdb837f87acc83125f2f05b674005d8e"
        );
        assert_eq!(
            key.visitor_id(ip("2001:db8:1234:5678::1"), "Mozilla/5.0", d),
            "43b0818cc2fe43c2d5089c112d040d91"
        );
        assert_eq!(
            hex::lower(&key.rate_key(ip("203.0.113.7"))),
            "7b1080ea4e38a95e3e3090198604f073"
        );
        assert_eq!(
            hex::lower(&key.rate_key(ip("2001:db8:1234:5678::1"))),
            "1b5ad65fd4721f4440b73277817416f2"
        );
    }

    #[test]
    fn same_inputs_same_id() {
        let d = day("2024-03-01");
        let a = key().visitor_id(ip("198.51.100.23"), UA, d);
        let b = key().visitor_id(ip("198.51.100.23"), UA, d);
        assert_eq!(a, b);
    }

    #[test]
    fn id_is_32_lowercase_hex() {
        for addr in [
            "198.51.100.23",
            "0.0.0.0",
            "::",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            for ua in ["", UA, "curl/8.4.0"] {
                let id = key().visitor_id(ip(addr), ua, day("2024-03-01"));
                assert_eq!(id.len(), 32, "{id}");
                assert!(
                    id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{id}"
                );
            }
        }
    }

    #[test]
    fn a_different_day_gives_an_unrelated_id() {
        let k = key();
        let a = ip("198.51.100.23");
        let ids = [
            k.visitor_id(a, UA, day("2024-03-01")),
            k.visitor_id(a, UA, day("2024-03-02")),
            k.visitor_id(a, UA, day("2025-03-01")),
        ];
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        assert_ne!(ids[1], ids[2]);
    }

    #[test]
    fn a_different_secret_gives_a_different_id() {
        let d = day("2024-03-01");
        let a = ip("198.51.100.23");
        assert_ne!(
            VisitorKey::new(b"secret one").visitor_id(a, UA, d),
            VisitorKey::new(b"secret two").visitor_id(a, UA, d)
        );
        assert_ne!(
            VisitorKey::new(b"secret one").rate_key(a),
            VisitorKey::new(b"secret two").rate_key(a)
        );
        // Long secrets (hashed inside HMAC) work too, and differ from their prefixes.
        assert_ne!(
            VisitorKey::new(&[1; 100]).visitor_id(a, UA, d),
            VisitorKey::new(&[1; 99]).visitor_id(a, UA, d)
        );
    }

    #[test]
    fn a_different_address_or_user_agent_gives_a_different_id() {
        let k = key();
        let d = day("2024-03-01");
        let base = k.visitor_id(ip("198.51.100.23"), UA, d);
        assert_ne!(base, k.visitor_id(ip("198.51.100.24"), UA, d));
        assert_ne!(base, k.visitor_id(ip("198.51.100.23"), "curl/8.4.0", d));
        assert_ne!(base, k.visitor_id(ip("198.51.100.23"), "", d));
        assert_ne!(
            k.visitor_id(ip("2001:db8:0:1::1"), UA, d),
            k.visitor_id(ip("2001:db8:0:2::1"), UA, d),
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix() {
        let k = key();
        let d = day("2024-03-01");
        // Same /64, different interface identifiers (privacy extensions).
        let a = ip("2001:db8:1234:5678:a1b2:c3d4:e5f6:789a");
        let b = ip("2001:db8:1234:5678::1");
        let c = ip("2001:db8:1234:5678:ffff:ffff:ffff:ffff");
        assert_eq!(k.visitor_id(a, UA, d), k.visitor_id(b, UA, d));
        assert_eq!(k.visitor_id(a, UA, d), k.visitor_id(c, UA, d));
        assert_eq!(k.rate_key(a), k.rate_key(b));
        assert_eq!(k.rate_key(a), k.rate_key(c));
        // The next /64 is someone else.
        let other = ip("2001:db8:1234:5679:a1b2:c3d4:e5f6:789a");
        assert_ne!(k.visitor_id(a, UA, d), k.visitor_id(other, UA, d));
        assert_ne!(k.rate_key(a), k.rate_key(other));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_ipv4_address() {
        let k = key();
        let d = day("2024-03-01");
        let v4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
        assert_eq!(mapped, ip("::ffff:203.0.113.7"));
        assert_eq!(k.visitor_id(v4, UA, d), k.visitor_id(mapped, UA, d));
        assert_eq!(k.rate_key(v4), k.rate_key(mapped));
        // Other addresses in ::ffff:0:0/96 (different IPv4s) stay apart: the whole IPv4 counts,
        // not the /64 prefix they share.
        let mapped_other = ip("::ffff:203.0.113.8");
        assert_ne!(
            k.visitor_id(mapped, UA, d),
            k.visitor_id(mapped_other, UA, d)
        );
        assert_ne!(k.rate_key(mapped), k.rate_key(mapped_other));
        // An ordinary IPv6 address is not confused with an IPv4 one.
        let v6 = IpAddr::V6(Ipv6Addr::new(0xcb00, 0x7107, 0, 0, 0, 0, 0, 0));
        assert_ne!(k.rate_key(v4), k.rate_key(v6));
    }

    #[test]
    fn the_address_does_not_appear_in_the_id() {
        let k = key();
        let a = ip("10.0.0.1");
        let id = k.visitor_id(a, UA, day("2024-03-01"));
        assert!(!id.contains("10.0.0.1"));
        assert!(!id.contains("0a000001"), "hex of the address");
        assert!(!hex::lower(&k.rate_key(a)).contains("0a000001"));
    }

    #[test]
    fn the_rate_key_ignores_the_day_and_differs_from_the_visitor_id() {
        let k = key();
        let a = ip("198.51.100.23");
        let rate = hex::lower(&k.rate_key(a));
        assert_eq!(rate, hex::lower(&key().rate_key(a)));
        assert_ne!(rate, k.visitor_id(a, "", day("2024-03-01")));
        assert_ne!(k.rate_key(a), k.rate_key(ip("198.51.100.24")));
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", VisitorKey::new(b"hunter2"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("104")); // b'h', had it printed the bytes
    }
}
