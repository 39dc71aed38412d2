//! Which hosts a feed may not be redirected to without the operator's say-so:
//! loopback, private, link-local (cloud metadata services live there),
//! shared (carrier-grade NAT) and unspecified addresses, and `localhost`.
//! A feed on such an address is fine when configured directly; a public feed
//! that redirects there is how a server-side request forgery starts.

use std::net::{Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// True when `url`'s host is an internal address (an IP literal or a `localhost` name).
pub fn is_internal(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => internal_v4(ip),
        Some(Host::Ipv6(ip)) => internal_v6(ip),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b))
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback() || ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1/feed",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://api.LOCALHOST./",
        ] {
            assert!(is_internal(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://example.org/feed",
            "http://93.184.216.34/",
            "http://[2606:4700::1111]/",
            "http://100.128.0.1/",
            "http://localhost.example.org/",
        ] {
            assert!(!is_internal(&Url::parse(url).unwrap()), "{url}");
        }
    }
}
