//! Connections for the network sinks: TCP and TLS (rustls) streams with timeouts, and a check
//! that the peer has not closed before more is written.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long a connect or a blocked write may take before the peer is taken as down.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// TLS settings: the CA that signs the collector's certificate, and an optional client
/// certificate and key (PEM files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; default the host of the address.
    pub server_name: Option<String>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl TlsOptions {
    /// Builds the client configuration (reading the PEM files): done once, when the sink is
    /// set up, so a bad file is an error at start.
    pub fn client_config(&self) -> io::Result<Arc<rustls::ClientConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &self.ca else {
            return Err(invalid("a TLS sink needs `ca` (the PEM file of the collector's CA)".into()));
        };
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| invalid(format!("{}: {e}", ca.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
        if certs.is_empty() {
            return Err(invalid(format!("{}: no certificate", ca.display())));
        }
        for c in certs {
            roots.add(c).map_err(|e| invalid(format!("{}: {e}", ca.display())))?;
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_root_certificates(roots);
        let cfg = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => {
                let chain = CertificateDer::pem_file_iter(c)
                    .map_err(|e| invalid(format!("{}: {e}", c.display())))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(format!("{}: {e}", c.display())))?;
                let key = PrivateKeyDer::from_pem_file(k).map_err(|e| invalid(format!("{}: {e}", k.display())))?;
                b.with_client_auth_cert(chain, key).map_err(|e| invalid(format!("client certificate: {e}")))?
            }
            (None, None) => b.with_no_client_auth(),
            _ => return Err(invalid("a TLS client certificate needs both `cert` and `key`".into())),
        };
        Ok(Arc::new(cfg))
    }
}

/// A TLS sink's client configuration (the files read now, so a bad one fails the start) and
/// the name the server's certificate must carry (`server_name`, else the host of `addr`).
pub fn tls_setup(addr: &str, o: &TlsOptions) -> io::Result<(Arc<rustls::ClientConfig>, String)> {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_matches(['[', ']']);
    Ok((o.client_config()?, o.server_name.clone().unwrap_or_else(|| host.to_string())))
}

/// `host:port` resolved, the first address that answers.
pub fn connect_tcp(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                s.set_nodelay(true)?;
                s.set_write_timeout(Some(TIMEOUT))?;
                s.set_read_timeout(Some(TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A connected UDP socket towards `addr`.
pub fn connect_udp(addr: &str) -> io::Result<UdpSocket> {
    let a: SocketAddr =
        addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, addr.to_string()))?;
    let local: SocketAddr =
        if a.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }.expect("a literal address");
    let s = UdpSocket::bind(local)?;
    s.connect(a)?;
    Ok(s)
}

/// A stream to a collector: plain TCP or TLS over it.
pub enum Conn {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    pub fn tcp(addr: &str) -> io::Result<Conn> {
        Ok(Conn::Tcp(connect_tcp(addr)?))
    }

    /// Connects and completes the TLS handshake (so a certificate problem shows here).
    pub fn tls(addr: &str, cfg: &Arc<rustls::ClientConfig>, server_name: &str) -> io::Result<Conn> {
        let tcp = connect_tcp(addr)?;
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| invalid(format!("TLS server name {server_name}: {e}")))?;
        let c = rustls::ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
        let mut s = rustls::StreamOwned::new(c, tcp);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Conn::Tls(Box::new(s)))
    }

    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Whether the peer closed its side (or sent something on plain TCP, which a syslog or
    /// IPFIX collector does only to close). Over TLS what the server sent is taken in by
    /// rustls first (TLS 1.3 session tickets come after the handshake): only a close_notify,
    /// an alert or the end of the stream count. Checked before writing, so what is written next
    /// does not go into a connection the peer has already left.
    pub fn peer_closed(&mut self) -> bool {
        if self.socket().set_nonblocking(true).is_err() {
            return true;
        }
        let closed = match self {
            Conn::Tcp(s) => {
                let mut b = [0u8; 1];
                match s.peek(&mut b) {
                    Ok(_) => true,
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                }
            }
            Conn::Tls(s) => {
                let mut b = [0u8; 4096];
                loop {
                    match s.read(&mut b) {
                        Ok(0) => break true,
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                        Err(_) => break true,
                    }
                }
            }
        };
        let _ = self.socket().set_nonblocking(false);
        closed
    }

    /// Writes `buf` whole, after checking the peer is still there ([`Conn::peer_closed`]).
    pub fn send_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.peer_closed() {
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the collector closed the connection"));
        }
        self.write_all(buf)?;
        self.flush()
    }

    /// How long a read may wait (None: for ever).
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(d)
    }

    /// Reads what the peer sent (Redis replies).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }

    pub fn shutdown(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.socket().shutdown(std::net::Shutdown::Both);
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(b),
            Conn::Tls(s) => s.write(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}
