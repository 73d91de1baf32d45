//! SSH rule buffers.

use super::SshState;
use crate::app::Inspect;
use crate::rules::BufSpec;

crate::rule_buffers! { super::Ssh;
    SOFTWARE = BufSpec::new("ssh.software", &["ssh.software", "ssh_software"]);
}

/// ssh.software is per side: the client's, then the server's (its view faces from the server).
pub fn inspect<I: Inspect>(s: &SshState, i: &mut I) {
    for dir in 0..2 {
        if let Some(side) = s.side(dir) {
            i.begin();
            i.put(SOFTWARE, side.software_version);
            i.run(dir == 1);
        }
    }
}
