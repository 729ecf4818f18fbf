//! `iap-token proxy`: the service behind IAP on a local port, with the credential added, for clients
//! that cannot run a command (notebooks, SDKs, websockets, tools with a fixed base URL). A thread per
//! connection (at most `--max-connections`), plain blocking sockets and httparse: no async runtime, so
//! nothing of it touches the credential commands. The token is fetched before it listens (a sign-in, if
//! one is needed, happens first), then renewed as it ages. SIGINT/SIGTERM stop accepting, let requests
//! in flight finish, and exit 0 within 10 s.

mod conn;
mod credential;
mod guard;
mod upstream;
mod wire;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config::{ProxyOptions, Settings};
use crate::error::{Error, Result};
use crate::http::display_url;
use crate::{log, output};

/// How long a service may stay silent in the middle of an answer.
const UPSTREAM_IDLE: Duration = Duration::from_secs(300);
/// How long requests in flight may take to finish once a stop is asked.
const DRAIN: Duration = Duration::from_secs(9);
/// A connection thread's stack: buffers live on the heap, TLS needs little.
const STACK: usize = 512 * 1024;

/// Set by SIGINT or SIGTERM.
static STOPPING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOPPING.store(true, Ordering::SeqCst);
}

pub fn run(settings: &Settings, options: &ProxyOptions) -> Result<ExitCode> {
    let url = settings.url.clone().ok_or_else(|| Error::Usage("proxy needs --url".into()))?;
    let target = upstream::Target::parse(&url)?;
    let connector = upstream::Connector::new(target, &settings.net, UPSTREAM_IDLE)?;
    let held = credential::Held::new(settings.clone());
    held.token()?;
    let listener = TcpListener::bind(options.listen)
        .map_err(|e| Error::io(format!("could not listen on {}", options.listen), e))?;
    let address = listener.local_addr().map_err(|e| Error::io("could not read the listen address", e))?;
    listener.set_nonblocking(true).map_err(|e| Error::io("could not set up the listener", e))?;
    let shared = Arc::new(conn::Shared {
        held,
        connector,
        admission: guard::Admission {
            port: address.port(),
            allow_remote: options.allow_remote,
            allowed_origins: options.allowed_origins.clone(),
        },
        stopping: &STOPPING,
    });
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_stop_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_stop_signal as *const () as libc::sighandler_t);
    }
    let local = local_url(address);
    output::write_text(&format!("{local}\n"))?;
    log::notice(format_args!("proxy {local} -> {} (Ctrl-C stops)", display_url(&url)));
    let active = Arc::new(AtomicUsize::new(0));
    while !STOPPING.load(Ordering::SeqCst) {
        if !conn::poll_readable(&[listener.as_raw_fd()], Duration::from_millis(250)).is_ok_and(|r| r[0]) {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => admit(stream, &shared, &active, options.max_connections),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::info(format_args!("accept failed: {e}"));
                    break;
                }
            }
        }
    }
    drop(listener);
    let waiting = active.load(Ordering::SeqCst);
    if waiting > 0 {
        log::notice(format_args!("stopping: letting {waiting} connection(s) finish"));
    }
    let deadline = Instant::now() + DRAIN;
    while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves `stream` on a thread of its own, or answers 503 when `max` are being served.
fn admit(stream: TcpStream, shared: &Arc<conn::Shared>, active: &Arc<AtomicUsize>, max: usize) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    if active.fetch_add(1, Ordering::SeqCst) >= max {
        active.fetch_sub(1, Ordering::SeqCst);
        conn::answer(&stream, 503, &format!("{max} connections are being served already (--max-connections)"));
        return;
    }
    let (shared, done) = (Arc::clone(shared), Arc::clone(active));
    let spawned = std::thread::Builder::new().stack_size(STACK).spawn(move || {
        conn::serve(stream, &shared);
        done.fetch_sub(1, Ordering::SeqCst);
    });
    if spawned.is_err() {
        active.fetch_sub(1, Ordering::SeqCst);
        log::notice(format_args!("could not start a connection thread"));
    }
}

/// `http://127.0.0.1:PORT` (or `http://[::1]:PORT`).
fn local_url(address: SocketAddr) -> String {
    format!("http://{address}")
}
