//! The SSRF guard: endpoint URLs must not reach loopback, private, link-local or metadata
//! addresses unless the config allows it, and the HTTP client connects only to addresses
//! this guard checked (its own DNS resolver), so DNS rebinding cannot slip past.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What endpoint URLs may point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub allow_http: bool,
}

/// The policy in force, shared by endpoint validation and the delivery client's resolver; a
/// configuration reload replaces it.
#[derive(Debug, Clone, Default)]
pub struct SharedPolicy(Arc<std::sync::RwLock<AddressPolicy>>);

impl SharedPolicy {
    pub fn new(policy: AddressPolicy) -> SharedPolicy {
        SharedPolicy(Arc::new(std::sync::RwLock::new(policy)))
    }

    /// The policy now.
    pub fn get(&self) -> AddressPolicy {
        *self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts `policy` in force.
    pub fn set(&self, policy: AddressPolicy) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UrlError {
    #[error("not a valid URL: {0}")]
    Parse(String),
    #[error("scheme must be https (http:// needs allow_http or allow_private in the config)")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("{0} is a loopback, private, link-local or metadata address (set webhooks.allow_private to allow)")]
    Forbidden(IpAddr),
    #[error("host {0} does not resolve")]
    Unresolvable(String),
}

impl AddressPolicy {
    /// Checks the URL's shape and, for IP literals, the address.
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlError> {
        let url = Url::parse(raw).map_err(|e| UrlError::Parse(e.to_string()))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http || self.allow_private => {}
            _ => return Err(UrlError::Scheme),
        }
        match url.host() {
            None => return Err(UrlError::NoHost),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(domain)) => {
                if !self.allow_private && (domain.eq_ignore_ascii_case("localhost") || domain.ends_with(".localhost")) {
                    return Err(UrlError::Forbidden(IpAddr::V4(Ipv4Addr::LOCALHOST)));
                }
            }
        }
        Ok(url)
    }

    /// Refuses forbidden addresses unless private addresses are allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlError> {
        if !self.allow_private && is_internal(ip) {
            return Err(UrlError::Forbidden(ip));
        }
        Ok(())
    }
}

/// Whether `ip` is loopback, private, link-local (incl. cloud metadata), CGNAT, unspecified,
/// multicast or otherwise not a public unicast address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    let first = segments[0];
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.to_ipv4().is_some_and(is_internal_v4)
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) reach the IPv4 address they
        // embed; so does 6to4 (2002::/16).
        || (first == 0x64 && segments[1] == 0xff9b && is_internal_v4(embedded(segments[6], segments[7])))
        || (first == 0x64 && segments[1] == 0xff9b && segments[2] == 1)
        || (first == 0x2002 && is_internal_v4(embedded(segments[1], segments[2])))
        // Teredo (2001::/32) tunnels to an obfuscated IPv4 address; documentation, 2001:db8::/32.
        || (first == 0x2001 && (segments[1] == 0 || segments[1] == 0xdb8))
        // Discard-only, 100::/64.
        || (first == 0x100 && segments[1..4] == [0, 0, 0])
}

/// `url` for logs: scheme, host, port and path only — query strings and user info can carry
/// receivers' tokens.
pub fn loggable(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "[unparseable url]".to_owned(),
    }
}

/// DNS resolver for the delivery client: resolves with the system resolver and drops every
/// address the policy forbids; fails when none is left.
pub struct GuardedResolver {
    pub policy: SharedPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.get();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| policy.check_ip(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                let error = match resolved.first() {
                    Some(addr) => UrlError::Forbidden(addr.ip()),
                    None => UrlError::Unresolvable(host),
                };
                return Err(Box::new(error) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client used for deliveries: guarded DNS, no proxies, no redirects.
pub fn delivery_client(policy: SharedPolicy) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("FluxCascade-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(64)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip} should be internal");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} should be public");
        }
    }

    #[test]
    fn url_policy() {
        let strict = AddressPolicy::default();
        assert!(strict.check_url("https://hooks.example.com/x").is_ok());
        assert_eq!(
            strict.check_url("http://hooks.example.com/x").unwrap_err(),
            UrlError::Scheme
        );
        assert!(matches!(
            strict.check_url("https://127.0.0.1/x"),
            Err(UrlError::Forbidden(_))
        ));
        assert!(matches!(
            strict.check_url("https://[::1]/x"),
            Err(UrlError::Forbidden(_))
        ));
        assert!(matches!(
            strict.check_url("https://169.254.169.254/latest"),
            Err(UrlError::Forbidden(_))
        ));
        assert!(matches!(
            strict.check_url("https://localhost/x"),
            Err(UrlError::Forbidden(_))
        ));
        assert!(matches!(strict.check_url("ftp://example.com"), Err(UrlError::Scheme)));
        assert!(matches!(strict.check_url("not a url"), Err(UrlError::Parse(_))));
        let open = AddressPolicy {
            allow_private: true,
            allow_http: false,
        };
        assert!(open.check_url("http://127.0.0.1:9000/hook").is_ok());
    }

    #[test]
    fn logged_urls_lose_queries_and_credentials() {
        assert_eq!(
            loggable("https://user:pw@hooks.example.com/in?token=abc"),
            "https://hooks.example.com/in"
        );
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_addresses() {
        let resolver = GuardedResolver {
            policy: SharedPolicy::default(),
        };
        let result = resolver.resolve("localhost".parse().unwrap()).await;
        assert!(result.is_err(), "localhost must not resolve for deliveries");
        let open = GuardedResolver {
            policy: SharedPolicy::new(AddressPolicy {
                allow_private: true,
                allow_http: true,
            }),
        };
        let addrs: Vec<_> = open.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
