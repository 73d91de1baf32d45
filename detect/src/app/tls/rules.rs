//! TLS rule buffers.

use super::TlsInfo;
use crate::app::Inspect;
use crate::rules::BufSpec;

crate::rule_buffers! { super::Tls;
    SNI = BufSpec::new("tls.sni", &["tls.sni", "tls_sni"]).dotted();
    CERT_SUBJECT = BufSpec::new("tls.cert_subject", &["tls.cert_subject", "tls_cert_subject"]).to_client();
    CERT_ISSUER = BufSpec::new("tls.cert_issuer", &["tls.cert_issuer", "tls_cert_issuer"]).to_client();
    JA3_HASH = BufSpec::new("ja3.hash", &["ja3.hash", "ja3_hash"]);
    JA3S_HASH = BufSpec::new("ja3s.hash", &["ja3s.hash", "ja3s_hash"]).to_client();
    /// Each certificate of the server's chain (DER), one at a time.
    CERTS = BufSpec::new("tls.certs", &["tls.certs"]).to_client().multi();
}

/// One inspection of the handshake, then one per certificate for the rules on `tls.certs`.
pub fn inspect<I: Inspect>(t: &TlsInfo, i: &mut I) {
    i.begin();
    if let Some(x) = t.sni() {
        i.put(SNI, x);
    }
    if let Some(x) = t.subject() {
        i.put(CERT_SUBJECT, x);
    }
    if let Some(x) = t.issuer() {
        i.put(CERT_ISSUER, x);
    }
    if let Some(x) = t.ja3_hash() {
        i.put(JA3_HASH, &x);
    }
    if let Some(x) = t.ja3s_hash() {
        i.put(JA3S_HASH, &x);
    }
    i.run(false);
    i.run_each(CERTS, t.certificates());
}
