//! An HTTPS front for a plain-HTTP fake (Google, IAP): TLS with a server certificate for 127.0.0.1 signed
//! by a fresh CA, each request relayed to the fake and its answer relayed back. For the tests of
//! `--ca-file` (given the CA) and of certificate checking.

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
                thread::spawn(move || relay(tls, tcp, &upstream));
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
