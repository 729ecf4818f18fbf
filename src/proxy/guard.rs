//! Which requests the proxy lends the credential to. Only the user's own local clients: the `Host` must
//! name the listen address (`127.0.0.1:PORT`, `localhost:PORT`, `[::1]:PORT`; with `--allow-remote`
//! any IP literal with that port), which defeats DNS rebinding (a rebound name arrives as that name); and
//! a browser request from another origin (`Origin` not the proxy's own, or a `Sec-Fetch-Site` other than
//! `same-origin` or `none`) is refused unless `--allow-origin` names that origin, so a web page cannot
//! borrow the identity.

use std::net::IpAddr;

/// The admission rule of one proxy.
#[derive(Debug, Clone)]
pub struct Admission {
    pub port: u16,
    pub allow_remote: bool,
    pub allowed_origins: Vec<String>,
}

impl Admission {
    /// `Ok` to forward, else why not (answered with 403).
    pub fn check(&self, host: Option<&[u8]>, origin: Option<&[u8]>, fetch_site: Option<&[u8]>) -> Result<(), String> {
        let host = host.map(String::from_utf8_lossy).unwrap_or_default();
        if !self.is_own_authority(&host) {
            return Err(format!(
                "Host '{}' is not this proxy's address: use http://127.0.0.1:{} (requests for other names are refused against DNS rebinding)",
                crate::error::clean(&host, 100),
                self.port
            ));
        }
        let origin = origin.map(String::from_utf8_lossy);
        if let Some(origin) = &origin
            && self.allowed_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return Ok(());
        }
        // Only the proxy's own pages (same-origin) and what the user typed or bookmarked (none): a page of
        // another port on localhost is same-site, and its GETs (images, scripts, links) carry no Origin.
        let cross_site = fetch_site
            .is_some_and(|site| !site.eq_ignore_ascii_case(b"same-origin") && !site.eq_ignore_ascii_case(b"none"));
        let foreign = origin.as_deref().is_some_and(|origin| {
            !origin.strip_prefix("http://").is_some_and(|authority| self.is_own_authority(authority))
        });
        if cross_site || foreign {
            let origin = origin.as_deref().unwrap_or("another site");
            return Err(format!(
                "a web page of {} may not use this proxy (it would act as you): start the proxy with --allow-origin {} if you trust it",
                crate::error::clean(origin, 100),
                crate::error::clean(origin, 100)
            ));
        }
        Ok(())
    }

    /// Whether `authority` (a `Host` value) names this proxy: a loopback name or address, or with
    /// `--allow-remote` any IP literal, with this port.
    fn is_own_authority(&self, authority: &str) -> bool {
        let Some((host, port)) = authority.rsplit_once(':') else { return false };
        if port.parse::<u16>() != Ok(self.port) {
            return false;
        }
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().map(IpAddr::V6),
            None => host.parse::<std::net::Ipv4Addr>().map(IpAddr::V4),
        };
        ip.is_ok_and(|ip| ip.is_loopback() || self.allow_remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(allow_remote: bool) -> Admission {
        Admission { port: 8088, allow_remote, allowed_origins: vec!["http://localhost:3000".into()] }
    }

    #[test]
    fn only_the_listen_address_and_own_or_allowed_origins() {
        let a = admission(false);
        let ok = |host: &str, origin: Option<&str>, site: Option<&str>| {
            a.check(Some(host.as_bytes()), origin.map(str::as_bytes), site.map(str::as_bytes))
        };
        for host in ["127.0.0.1:8088", "localhost:8088", "LOCALHOST:8088", "[::1]:8088", "127.0.0.2:8088"] {
            assert!(ok(host, None, None).is_ok(), "{host}");
        }
        for host in ["evil.example:8088", "127.0.0.1:8089", "127.0.0.1", "10.0.0.5:8088", "localhost.evil:8088", ""] {
            assert!(ok(host, None, None).is_err(), "{host}");
        }
        assert!(a.check(None, None, None).is_err(), "no Host at all");
        assert!(ok("127.0.0.1:8088", Some("http://127.0.0.1:8088"), Some("same-origin")).is_ok());
        assert!(ok("127.0.0.1:8088", Some("http://localhost:3000"), Some("cross-site")).is_ok(), "allowed");
        let refused = ok("127.0.0.1:8088", Some("https://evil.example"), None).unwrap_err();
        assert!(refused.contains("--allow-origin https://evil.example"), "{refused}");
        assert!(ok("127.0.0.1:8088", Some("null"), None).is_err());
        assert!(ok("127.0.0.1:8088", None, Some("cross-site")).is_err());
        assert!(ok("127.0.0.1:8088", None, Some("none")).is_ok(), "typed in the address bar");
        assert!(ok("127.0.0.1:8088", None, Some("same-site")).is_err(), "a page on another local port");
        assert!(ok("127.0.0.1:8088", None, Some("same-origin")).is_ok());
        let remote = admission(true);
        assert!(remote.check(Some(b"10.0.0.5:8088"), None, None).is_ok());
        assert!(remote.check(Some(b"proxy.corp.example:8088"), None, None).is_err(), "names never, even remote");
    }
}
