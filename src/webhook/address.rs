//! Where a webhook may point: no server-side request forgery. A URL is checked when an endpoint
//! is created or changed and again before every delivery (DNS answers change): `https` only, and
//! every address its host resolves to must be public — not loopback, private, link-local (cloud
//! metadata at 169.254.169.254 among them), shared (CGNAT), multicast, unspecified or reserved,
//! nor an IPv6 address embedding one of those. The delivery then connects to the address that was
//! checked, never resolving again (DNS rebinding between the check and the connection gains
//! nothing). `WEBHOOK_ALLOW_PRIVATE_NETWORKS=true` lifts the address check and allows `http`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use url::{Host, Url};

/// Longest URL an endpoint may have.
pub const MAX_URL_LENGTH: usize = 2048;
/// The longest a host's name may take to resolve: a request creating an endpoint waits for it.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a URL cannot be a webhook's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("{0}")]
    Malformed(String),
    #[error("webhook URLs must use https")]
    NotHttps,
    #[error("{host} resolves to {address}, which is not a public address")]
    NotPublic { host: String, address: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
}

impl UrlRefusal {
    /// The error code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "invalid_webhook_url",
            Self::NotHttps => "webhook_url_not_https",
            Self::NotPublic { .. } => "webhook_url_not_public",
            Self::Unresolvable { .. } => "webhook_url_unresolvable",
        }
    }
}

/// Parses and checks the URL's form (not its addresses): absolute, `https` (or `http` when
/// `allow_private`), a host, no user or password in it, no fragment.
pub fn parse(raw: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LENGTH {
        return Err(UrlRefusal::Malformed(format!(
            "webhook URLs are at most {MAX_URL_LENGTH} characters"
        )));
    }
    let url = Url::parse(raw).map_err(|e| UrlRefusal::Malformed(format!("not a URL: {e}")))?;
    // Spelled out (an international domain in punycode, escapes) it may have grown.
    if url.as_str().len() > MAX_URL_LENGTH {
        return Err(UrlRefusal::Malformed(format!(
            "webhook URLs are at most {MAX_URL_LENGTH} characters"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err(UrlRefusal::NotHttps),
        _ => return Err(UrlRefusal::NotHttps),
    }
    if url.host().is_none() {
        return Err(UrlRefusal::Malformed("the URL names no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Malformed(
            "the URL must not hold a user name or password".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Malformed(
            "the URL must not have a #fragment".into(),
        ));
    }
    Ok(url)
}

/// The addresses to connect to for `url`, each checked (unless `allow_private`). A host with
/// any address that is not public is refused, even if others are: which one a connection would
/// use is not ours to pick by luck.
pub async fn resolve(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, UrlRefusal> {
    let port = url.port_or_known_default().unwrap_or(443);
    let host_text = url.host_str().unwrap_or_default().to_owned();
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(domain)) => {
            let unresolvable = |reason: String| UrlRefusal::Unresolvable {
                host: host_text.clone(),
                reason,
            };
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((domain, port)))
                .await
                .map_err(|_| unresolvable(format!("no answer within {RESOLVE_TIMEOUT:?}")))?
                .map_err(|e| unresolvable(e.to_string()))?
                .collect()
        }
        None => return Err(UrlRefusal::Malformed("the URL names no host".into())),
    };
    if addresses.is_empty() {
        return Err(UrlRefusal::Unresolvable {
            host: host_text,
            reason: "no address".into(),
        });
    }
    if !allow_private && let Some(blocked) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(UrlRefusal::NotPublic {
            host: host_text,
            address: blocked.ip(),
        });
    }
    Ok(addresses)
}

/// Whether `ip` is an address on the public internet, which a webhook may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let blocked = ip.is_unspecified()
        || a == 0 // "this network", 0.0.0.0/8
        || ip.is_loopback() // 127/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16: cloud metadata lives here
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || ip.is_multicast() // 224/4
        || a >= 240; // reserved 240/4, broadcast
    !blocked
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Addresses that carry an IPv4 address are judged by it: mapped (::ffff:a.b.c.d),
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    let blocked = ip.is_unspecified()
        || ip.is_loopback()
        || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated), ::/96
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast() // ff00::/8
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard-only, 100::/64
    !blocked
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn urls_must_be_https_with_a_host_and_no_credentials() {
        assert!(parse("https://hooks.example.com/in", false).is_ok());
        assert_eq!(
            parse("http://hooks.example.com/in", false),
            Err(UrlRefusal::NotHttps)
        );
        assert!(parse("http://127.0.0.1:9/in", true).is_ok());
        assert_eq!(parse("ftp://example.com/", true), Err(UrlRefusal::NotHttps));
        assert_eq!(parse("file:///etc/passwd", true), Err(UrlRefusal::NotHttps));
        for bad in [
            "hooks.example.com/in",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#x",
        ] {
            assert!(
                matches!(parse(bad, false), Err(UrlRefusal::Malformed(_))),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(matches!(parse(&long, false), Err(UrlRefusal::Malformed(_))));
        // Short as typed, too long once its spaces are escaped.
        let grows = format!(
            "https://example.com/{}",
            " x".repeat(MAX_URL_LENGTH / 2 - 20)
        );
        assert!(grows.len() <= MAX_URL_LENGTH);
        assert!(matches!(
            parse(&grows, false),
            Err(UrlRefusal::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn literal_and_spelled_out_addresses_are_checked() {
        for url in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:7f00:1]/",
            "https://169.254.169.254/latest/meta-data/",
            // The URL standard reads these as 127.0.0.1.
            "https://2130706433/",
            "https://0x7f.1/",
            "https://localhost/",
        ] {
            let parsed = parse(url, false).unwrap();
            assert!(
                matches!(
                    resolve(&parsed, false).await,
                    Err(UrlRefusal::NotPublic { .. })
                ),
                "{url}"
            );
            assert!(resolve(&parsed, true).await.is_ok(), "{url} when allowed");
        }
        let public = parse("https://93.184.216.34:8443/", false).unwrap();
        assert_eq!(
            resolve(&public, false).await.unwrap(),
            vec!["93.184.216.34:8443".parse().unwrap()]
        );
    }
}
