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
    i.put_opt(SNI, t.sni());
    i.put_opt(CERT_SUBJECT, t.subject());
    i.put_opt(CERT_ISSUER, t.issuer());
    i.put_opt(JA3_HASH, t.ja3_hash().as_ref().map(|h| &h[..]));
    i.put_opt(JA3S_HASH, t.ja3s_hash().as_ref().map(|h| &h[..]));
    i.run(false);
    i.run_each(CERTS, t.certificates());
}
