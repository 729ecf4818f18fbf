//! The options of `iap-token proxy`, validated: where it listens (loopback unless `--allow-remote`),
//! which web origins it admits besides its own, and how many connections it serves at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::error::{Error, Result, clean};

/// What `iap-token proxy` was asked to do, beside the settings of its credential.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub listen: SocketAddr,
    pub allow_remote: bool,
    /// Origins (`scheme://host[:port]`) whose pages may use the proxy, as given.
    pub allowed_origins: Vec<String>,
    pub max_connections: usize,
}

impl ProxyOptions {
    pub fn new(
        listen: Option<&str>,
        allow_remote: bool,
        allowed_origins: Vec<String>,
        max_connections: usize,
    ) -> Result<ProxyOptions> {
        let listen = match listen.map(str::trim).filter(|l| !l.is_empty()) {
            Some(text) => parse_listen(text)?,
            None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        };
        if !listen.ip().is_loopback() && !allow_remote {
            return Err(Error::Usage(format!(
                "--listen {listen} is not a loopback address: everyone who can reach it would act as you; add --allow-remote if that is meant"
            )));
        }
        for origin in &allowed_origins {
            let valid = url::Url::parse(origin)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/")
                && !origin.ends_with('/');
            if !valid {
                return Err(Error::Usage(format!(
                    "--allow-origin '{}' is not an origin: give scheme://host[:port], as browsers send it (e.g. http://localhost:3000)",
                    clean(origin, 200)
                )));
            }
        }
        if max_connections == 0 {
            return Err(Error::Usage("--max-connections must be at least 1".into()));
        }
        Ok(ProxyOptions { listen, allow_remote, allowed_origins, max_connections })
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a bare `PORT` (on 127.0.0.1).
fn parse_listen(text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = text.strip_prefix("localhost:").and_then(|p| p.parse::<u16>().ok()) {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        Error::Usage(format!(
            "--listen '{}' is not an address: give IP:PORT, localhost:PORT or a PORT (e.g. 127.0.0.1:8088)",
            clean(text, 100)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_and_origins() {
        let options = |listen: &str, remote: bool| ProxyOptions::new(Some(listen), remote, Vec::new(), 64);
        assert_eq!(options("8088", false).unwrap().listen.to_string(), "127.0.0.1:8088");
        assert_eq!(options("localhost:8088", false).unwrap().listen.to_string(), "127.0.0.1:8088");
        assert_eq!(options("[::1]:0", false).unwrap().listen.to_string(), "[::1]:0");
        assert_eq!(ProxyOptions::new(None, false, Vec::new(), 64).unwrap().listen.to_string(), "127.0.0.1:0");
        assert!(options("0.0.0.0:8088", false).unwrap_err().to_string().contains("--allow-remote"));
        assert!(options("0.0.0.0:8088", true).is_ok());
        assert!(options("example.com:80", false).is_err());
        let origin = |o: &str| ProxyOptions::new(None, false, vec![o.into()], 64);
        assert!(origin("http://localhost:3000").is_ok());
        for bad in ["localhost:3000", "http://localhost:3000/", "http://localhost:3000/app", "null", "file:///x"] {
            assert!(origin(bad).is_err(), "{bad}");
        }
        assert!(ProxyOptions::new(None, false, Vec::new(), 0).is_err());
    }
}
