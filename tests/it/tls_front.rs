//! An HTTPS front for a plain-HTTP fake (Google, IAP): TLS with a server certificate for 127.0.0.1 signed
//! by a fresh CA, each request relayed to the fake and its answer relayed back. For the tests of
//! `--ca-file` (given the CA) and of certificate checking.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub struct TlsFront {
    pub port: u16,
    pub ca_pem: String,
}

/// How a TLS front passes a connection on.
#[derive(Clone, Copy)]
enum Relay {
    /// One request per connection, answered with `Connection: close`.
    OneRequest,
    /// Every byte both ways until either side closes: keep-alive, streaming, upgrades.
    Bytes,
}

impl TlsFront {
    /// Listens on 127.0.0.1 and relays to `upstream` (`127.0.0.1:PORT` of the fake Google).
    pub fn start(upstream: String) -> TlsFront {
        TlsFront::listen(upstream, Relay::OneRequest)
    }

    /// Listens on 127.0.0.1 and relays every byte both ways to `upstream` (the fake IAP).
    pub fn relaying_bytes(upstream: String) -> TlsFront {
        TlsFront::listen(upstream, Relay::Bytes)
    }

    fn listen(upstream: String, mode: Relay) -> TlsFront {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "iap-token test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().expect("a CA key"))
            .expect("the CA certificate");
        let server_key = rcgen::KeyPair::generate().expect("a server key");
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("server parameters")
            .signed_by(&server_key, &ca)
            .expect("the server certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let tls = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![server.der().clone()], key)
            .expect("the server certificate");
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
        let port = listener.local_addr().expect("its address").port();
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (tls, upstream) = (Arc::clone(&tls), upstream.clone());
                thread::spawn(move || match mode {
                    Relay::OneRequest => relay(tls, tcp, &upstream),
                    Relay::Bytes => relay_bytes(tls, tcp, &upstream),
                });
            }
        });
        TlsFront { port, ca_pem: ca.pem() }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

/// One request: read it over TLS, send it upstream with `Connection: close`, copy the answer back.
fn relay(tls: Arc<ServerConfig>, tcp: TcpStream, upstream: &str) -> Option<()> {
    let connection = ServerConnection::new(tls).ok()?;
    let mut stream = BufReader::new(StreamOwned::new(connection, tcp));
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
        if line == "\r\n" {
            break;
        }
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    stream.read_exact(&mut body).ok()?;
    let mut up = TcpStream::connect(upstream).ok()?;
    up.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes()).ok()?;
    up.write_all(&body).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    let stream = stream.get_mut();
    stream.write_all(&answer).ok()?;
    stream.flush().ok()?;
    stream.conn.send_close_notify();
    stream.flush().ok()
}

/// Bytes both ways: this thread reads TLS (polling with a short timeout, so the writer can take the
/// connection in between), another writes what the upstream sends.
fn relay_bytes(tls: Arc<ServerConfig>, tcp: TcpStream, upstream: &str) -> Option<()> {
    tcp.set_read_timeout(Some(Duration::from_millis(2))).ok()?;
    let stream = Arc::new(Mutex::new(StreamOwned::new(ServerConnection::new(tls).ok()?, tcp)));
    let mut plain = TcpStream::connect(upstream).ok()?;
    let mut from_upstream = plain.try_clone().ok()?;
    let back = Arc::clone(&stream);
    let writer = thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = from_upstream.read(&mut buf) {
            let mut stream = back.lock().unwrap();
            if stream.write_all(&buf[..n]).and_then(|()| stream.flush()).is_err() {
                break;
            }
        }
        let mut stream = back.lock().unwrap();
        stream.conn.send_close_notify();
        let _ = stream.flush();
        let _ = stream.sock.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0; 64 * 1024];
    loop {
        let read = stream.lock().unwrap().read(&mut buf);
        match read {
            Ok(0) => break,
            Ok(n) => {
                if plain.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = plain.shutdown(Shutdown::Write);
    writer.join().ok()
}
