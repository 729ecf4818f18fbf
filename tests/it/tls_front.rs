//! An HTTPS front for the fake Google: TLS with a fresh self-signed certificate for 127.0.0.1, each
//! request relayed to the plain-HTTP fake and its answer relayed back. For the tests of `--ca-file` and
//! of certificate checking.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub struct TlsFront {
    pub port: u16,
    pub ca_pem: String,
}

impl TlsFront {
    /// Listens on 127.0.0.1 and relays to `upstream` (`127.0.0.1:PORT` of the fake Google).
    pub fn start(upstream: String) -> TlsFront {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let tls = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("the server certificate");
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
        let port = listener.local_addr().expect("its address").port();
        thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (tls, upstream) = (Arc::clone(&tls), upstream.clone());
                thread::spawn(move || relay(tls, tcp, &upstream));
            }
        });
        TlsFront { port, ca_pem: certified.cert.pem() }
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
