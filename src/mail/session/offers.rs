//! What a server offers in its EHLO reply.

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone)]
pub struct Offers {
    pub pipelining: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
    /// The AUTH line as offered, for messages.
    pub auth: Option<String>,
}

impl Offers {
    /// Reads the EHLO reply's lines (the first is the greeting, the rest keywords).
    pub(super) fn parse(lines: &[String]) -> Offers {
        let mut offers = Offers::default();
        for line in lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split_whitespace();
            match words.next() {
                Some("PIPELINING") => offers.pipelining = true,
                Some("8BITMIME") => offers.eight_bit = true,
                Some("SMTPUTF8") => offers.smtputf8 = true,
                Some("STARTTLS") => offers.starttls = true,
                Some("AUTH") => {
                    offers.auth = Some(line.clone());
                    for mechanism in words {
                        match mechanism {
                            "PLAIN" => offers.auth_plain = true,
                            "LOGIN" => offers.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        offers
    }
}
