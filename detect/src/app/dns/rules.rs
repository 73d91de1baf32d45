//! DNS rule buffers.

use crate::app::Inspect;
use crate::rules::BufSpec;

crate::rule_buffers! { super::Dns;
    /// A question's name (one inspection per question).
    QUERY = BufSpec::new("dns.query", &["dns.query", "dns_query"]).dotted();
}

/// Each question of a query is its own inspection (dns.query is one name); responses are not
/// inspected.
pub fn inspect<I: Inspect>(msg: &super::Message<'_>, i: &mut I) {
    if msg.is_response() {
        return;
    }
    msg.for_each_question_name(|_, name| {
        i.begin();
        i.put(QUERY, name);
        i.run(false);
    });
}
