//! The DHCP message (RFC 2131 §2): the BOOTP header, the magic cookie and the options
//! (RFC 2132), read in place.

/// Header (236 bytes) and magic cookie.
pub const MIN_LEN: usize = 240;
const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Why a datagram is not a DHCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header and cookie.
    Short,
    /// No magic cookie (plain BOOTP) or an op that is neither request nor reply.
    NotDhcp,
}

/// A DHCP message over `buf`.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub buf: &'a [u8],
}

impl<'a> Message<'a> {
    pub fn parse(buf: &'a [u8]) -> Result<Self, Malformed> {
        if buf.len() < MIN_LEN {
            return Err(Malformed::Short);
        }
        if !matches!(buf[0], 1 | 2) || buf[236..240] != MAGIC {
            return Err(Malformed::NotDhcp);
        }
        Ok(Message { buf })
    }

    /// BOOTREPLY (from a server), else BOOTREQUEST.
    pub fn is_reply(&self) -> bool {
        self.buf[0] == 2
    }

    /// The transaction id.
    pub fn xid(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    fn addr(&self, at: usize) -> [u8; 4] {
        [self.buf[at], self.buf[at + 1], self.buf[at + 2], self.buf[at + 3]]
    }

    /// `ciaddr`: the client's address, when it has one.
    pub fn client_ip(&self) -> [u8; 4] {
        self.addr(12)
    }
    /// `yiaddr`: the address the server gives.
    pub fn your_ip(&self) -> [u8; 4] {
        self.addr(16)
    }
    /// `siaddr`: the next server (boot).
    pub fn server_ip(&self) -> [u8; 4] {
        self.addr(20)
    }
    /// `giaddr`: the relay agent.
    pub fn relay_ip(&self) -> [u8; 4] {
        self.addr(24)
    }

    /// The client's hardware address (`chaddr`, `hlen` bytes, at most 16).
    pub fn client_hw(&self) -> &'a [u8] {
        let n = (self.buf[2] as usize).min(16);
        &self.buf[28..28 + n]
    }

    /// The options in order (pads skipped; up to the end option or a truncated one).
    pub fn options(&self) -> Options<'a> {
        Options { rest: &self.buf[MIN_LEN..] }
    }

    /// The message type (option 53).
    pub fn msg_type(&self) -> Option<u8> {
        self.options().find(|(c, v)| *c == 53 && !v.is_empty()).map(|(_, v)| v[0])
    }

    /// The client's host name (option 12).
    pub fn hostname(&self) -> Option<&'a [u8]> {
        self.options().find(|(c, v)| *c == 12 && !v.is_empty()).map(|(_, v)| v)
    }
}

/// Iterator over a message's options: `(code, value)`.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        loop {
            let (&code, after) = self.rest.split_first()?;
            match code {
                0 => self.rest = after,
                255 => {
                    self.rest = &[];
                    return None;
                }
                _ => {
                    let (&len, after) = after.split_first()?;
                    let Some(v) = after.get(..len as usize) else {
                        self.rest = &[];
                        return None;
                    };
                    self.rest = &after[len as usize..];
                    return Some((code, v));
                }
            }
        }
    }
}

/// The name of a message type as Suricata logs it (`dhcp_type`).
pub fn type_name(t: u8) -> &'static str {
    match t {
        1 => "discover",
        2 => "offer",
        3 => "request",
        4 => "decline",
        5 => "ack",
        6 => "nak",
        7 => "release",
        8 => "inform",
        _ => "unknown",
    }
}

/// The name of a requested parameter (option 55) as Suricata logs it (`params`); Suricata
/// logs only these.
pub fn param_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "subnet_mask",
        3 => "router",
        6 => "dns_server",
        15 => "domain",
        35 => "arp_timeout",
        42 => "ntp_server",
        66 => "tftp_server_name",
        150 => "tftp_server_ip",
        _ => return None,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn msg(options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; MIN_LEN];
        m[0] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        m[28..34].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        m[236..240].copy_from_slice(&MAGIC);
        m.extend_from_slice(options);
        m
    }

    #[test]
    fn header_and_options() {
        let b = msg(&[0, 53, 1, 3, 12, 4, b'h', b'o', b's', b't', 255, 9, 9]);
        let m = Message::parse(&b).unwrap();
        assert!(!m.is_reply());
        assert_eq!(m.xid(), 0xdeadbeef);
        assert_eq!(m.client_hw(), &[2, 0, 0, 0, 0, 1]);
        assert_eq!(m.msg_type(), Some(3));
        assert_eq!(m.hostname(), Some(&b"host"[..]));
        assert_eq!(m.options().count(), 2);
    }

    #[test]
    fn bad_input_is_refused_or_cut_short() {
        assert_eq!(Message::parse(&[1; 100]).unwrap_err(), Malformed::Short);
        let mut b = msg(&[]);
        b[236] = 0;
        assert_eq!(Message::parse(&b).unwrap_err(), Malformed::NotDhcp);
        // An option whose length runs past the datagram ends the list; hlen past 16 is capped.
        let mut b = msg(&[53, 1, 5, 12, 200, b'x']);
        b[2] = 255;
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.options().collect::<Vec<_>>(), vec![(53, &[5][..])]);
        assert_eq!(m.client_hw().len(), 16);
    }
}
