//! The proxy's side toward the service: the `--url` as a target (host, port, path prefix), and
//! connections to it over TLS (rustls with the system roots plus `--ca-file`, as every other request of
//! iap-token) or, to loopback only, plain TCP. A connection can be read and written like a socket, and
//! polled for a tunnel (websockets) without blocking on TLS records.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use crate::error::{Error, Result, clean};
use crate::http::{NetSettings, ca_certificates};

/// Where requests go: `https://host[:port]/prefix`.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The `Host` header: the host, with the port when it is not the scheme's.
    pub authority: String,
    /// The URL's path without a trailing `/` ("" for the root), put before each request's path.
    pub prefix: String,
}

impl Target {
    /// `url` was checked by config: https, or http to loopback.
    pub fn parse(url: &str) -> Result<Target> {
        let parsed = url::Url::parse(url).map_err(|e| Error::Usage(format!("--url: {e}")))?;
        let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let https = parsed.scheme() == "https";
        let port = parsed.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        let authority = match parsed.port() {
            Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_string(),
        };
        let prefix = parsed.path().trim_end_matches('/').to_string();
        Ok(Target { https, host, port, authority, prefix })
    }

    /// The request target upstream: the prefix, then the client's origin-form target.
    pub fn path_for(&self, target: &str) -> String {
        format!("{}{target}", self.prefix)
    }
}

/// Opens connections to the target.
pub struct Connector {
    target: Target,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl Connector {
    pub fn new(target: Target, net: &NetSettings, io_timeout: Duration) -> Result<Connector> {
        let tls = if target.https {
            let mut roots = RootCertStore::empty();
            let certs = ca_certificates(net.ca_file.as_deref())?;
            if certs.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            roots.add_parsable_certificates(certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| Error::Usage(format!("TLS: {e}")))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| Error::Usage(format!("--url: '{}' is not a TLS server name", clean(&target.host, 100))))?;
            Some((Arc::new(config), name))
        } else {
            None
        };
        Ok(Connector { target, tls, connect_timeout: net.timeout.min(Duration::from_secs(10)), io_timeout })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// A new connection, TLS handshake included.
    pub fn connect(&self) -> io::Result<Upstream> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{} has no address", self.target.host));
        let addresses = (self.target.host.as_str(), self.target.port).to_socket_addrs()?;
        for address in addresses {
            match TcpStream::connect_timeout(&address, self.connect_timeout) {
                Ok(tcp) => {
                    tcp.set_nodelay(true)?;
                    tcp.set_read_timeout(Some(self.io_timeout))?;
                    tcp.set_write_timeout(Some(self.io_timeout))?;
                    let tls = match &self.tls {
                        Some((config, name)) => {
                            let mut connection = ClientConnection::new(config.clone(), name.clone())
                                .map_err(|e| io::Error::other(e.to_string()))?;
                            let mut tcp = &tcp;
                            while connection.is_handshaking() {
                                connection.complete_io(&mut tcp)?;
                            }
                            Some(connection)
                        }
                        None => None,
                    };
                    return Ok(Upstream { tcp, tls });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// One connection to the service.
pub struct Upstream {
    tcp: TcpStream,
    tls: Option<ClientConnection>,
}

impl Upstream {
    pub fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }

    /// Plaintext that is already decrypted, without touching the socket: `Some(0)` when the service
    /// closed, `None` when more must be read from the socket first.
    pub fn read_buffered(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(tls) = &mut self.tls else { return Ok(None) };
        match tls.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// After the socket polled readable: what it brought (`Some(0)`: closed; `None`: only part of a
    /// TLS record, nothing to pass on yet).
    pub fn read_socket(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(tls) = &mut self.tls else { return self.tcp.read(buf).map(Some) };
        if tls.read_tls(&mut self.tcp)? == 0 {
            return Ok(Some(0));
        }
        tls.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        while tls.wants_write() {
            tls.write_tls(&mut self.tcp)?;
        }
        match tls.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// No more bytes toward the service (the client half-closed a tunnel).
    pub fn shutdown_write(&mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut self.tcp).is_err() {
                    break;
                }
            }
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }
}

impl Read for Upstream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => match rustls::Stream::new(tls, &mut self.tcp).read(buf) {
                // A service that closes without close_notify ends its body all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            None => self.tcp.read(buf),
        }
    }
}

impl Write for Upstream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(tls) => rustls::Stream::new(tls, &mut self.tcp).write(buf),
            None => self.tcp.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(tls) => rustls::Stream::new(tls, &mut self.tcp).flush(),
            None => self.tcp.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        let t = Target::parse("https://flyte.example.com/console/").unwrap();
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.authority.as_str()),
            (true, "flyte.example.com", 443, "flyte.example.com")
        );
        assert_eq!(t.path_for("/api?x=1"), "/console/api?x=1");
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((t.https, t.port, t.authority.as_str(), t.prefix.as_str()), (false, 8080, "127.0.0.1:8080", ""));
        let t = Target::parse("https://[::1]:8443/").unwrap();
        assert_eq!((t.host.as_str(), t.authority.as_str()), ("::1", "[::1]:8443"));
    }
}
