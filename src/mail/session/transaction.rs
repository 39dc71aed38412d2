//! One transaction on an open session: MAIL FROM, RCPT TO, DATA, the
//! message with its dots stuffed, the final dot; pipelined when offered.

use super::*;

impl Session {
    /// One transaction: MAIL FROM, RCPT TO, DATA, the message, the dot.
    /// `message` is the whole formatted message with CRLF line ends. Nothing
    /// is sent once `deadline` leaves less than two steps' time, and the
    /// transaction is cut off at `deadline`.
    pub async fn send(
        &mut self,
        from: &str,
        to: &str,
        message: &[u8],
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Sent, Broken> {
        let eight_bit = !message.is_ascii();
        let utf8 = !from.is_ascii() || !to.is_ascii();
        if utf8 && !self.offers.smtputf8 {
            return Ok(Sent::Refused {
                stage: Stage::RcptTo,
                reply: Reply {
                    code: 553,
                    text: "5.6.7 the address is not ASCII and the server does not offer SMTPUTF8".into(),
                },
            });
        }
        let Some(deadline) = deadline else {
            return self.transaction(from, to, message, eight_bit, utf8).await;
        };
        // A transaction needs at least two steps' time (the message and its
        // reply); with less left, nothing is sent. Past the deadline the
        // transaction is cut off: in doubt once the message began to go.
        if tokio::time::Instant::now() + self.timeout * 2 > deadline {
            return Ok(Sent::Abandoned);
        }
        self.data_sent = false;
        let transaction = self.transaction(from, to, message, eight_bit, utf8);
        match tokio::time::timeout_at(deadline, transaction).await {
            Ok(sent) => sent,
            Err(_) => {
                self.usable = false;
                Err(Broken {
                    error: SessionError::Io {
                        error: "the transaction outlasted the row's lease: cut off".into(),
                    },
                    after_data: self.data_sent,
                })
            }
        }
    }

    async fn transaction(
        &mut self,
        from: &str,
        to: &str,
        message: &[u8],
        eight_bit: bool,
        utf8: bool,
    ) -> Result<Sent, Broken> {
        let before = |error: SessionError| Broken {
            error,
            after_data: false,
        };
        let mut mail = format!("MAIL FROM:<{from}>");
        if eight_bit && self.offers.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let steps = [
            (Stage::MailFrom, mail, &[250][..]),
            (Stage::RcptTo, format!("RCPT TO:<{to}>"), &[250, 251][..]),
            (Stage::Data, "DATA".to_string(), &[354][..]),
        ];
        let mut refusal = None;
        let mut data_open = false;
        if self.offers.pipelining {
            self.out.clear();
            for (_, command, _) in &steps {
                self.out.extend_from_slice(command.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
            let out = std::mem::take(&mut self.out);
            let written = self.write(Stage::MailFrom, &out).await;
            self.out = out;
            written.map_err(before)?;
            for (stage, _, codes) in &steps {
                let reply = self.read_reply(*stage).await.map_err(before)?;
                if *stage == Stage::Data {
                    data_open = reply.code == 354;
                }
                match self.check(*stage, reply, codes) {
                    Ok(_) => {}
                    // After a 421 the server hangs up: no more replies come.
                    Err(SessionError::Refused { stage, reply }) if !self.usable => {
                        return Ok(Sent::Refused { stage, reply });
                    }
                    Err(SessionError::Refused { stage, reply }) => {
                        refusal.get_or_insert((stage, reply));
                    }
                    Err(e) => return Err(before(e)),
                }
            }
        } else {
            for (stage, command, codes) in &steps {
                match self.command(*stage, command, codes).await {
                    Ok(_) => data_open = *stage == Stage::Data,
                    Err(SessionError::Refused { stage, reply }) => {
                        refusal = Some((stage, reply));
                        break;
                    }
                    Err(e) => return Err(before(e)),
                }
            }
        }
        if let Some((stage, reply)) = refusal {
            if !self.usable {
                return Ok(Sent::Refused { stage, reply });
            }
            if data_open {
                // A server that refused a command but opened DATA anyway: close it empty.
                match self.command(Stage::EndOfData, ".", &[250]).await {
                    Ok(_) | Err(SessionError::Refused { .. }) => {}
                    Err(e) => return Err(before(e)),
                }
            }
            // RSET so the session can take the next transaction; a session
            // that will not reset is dropped, the refusal stands.
            if self.command(Stage::Reset, "RSET", &[250]).await.is_err() {
                self.usable = false;
            }
            return Ok(Sent::Refused { stage, reply });
        }
        self.out.clear();
        stuff_dots(message, &mut self.out);
        if !self.out.ends_with(b"\r\n") {
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b".\r\n");
        let out = std::mem::take(&mut self.out);
        self.data_sent = true;
        let written = self.write(Stage::EndOfData, &out).await;
        self.out = if out.capacity() > 1024 * 1024 {
            Vec::with_capacity(64 * 1024)
        } else {
            out
        };
        let after = |error: SessionError| Broken {
            error,
            after_data: true,
        };
        written.map_err(after)?;
        let reply = self.read_reply(Stage::EndOfData).await.map_err(after)?;
        match self.check(Stage::EndOfData, reply, &[250]) {
            Ok(reply) => Ok(Sent::Accepted(reply)),
            Err(SessionError::Refused { stage, reply }) => Ok(Sent::Refused { stage, reply }),
            Err(e) => Err(after(e)),
        }
    }
}

/// Copies `message` to `out` with a dot added before every line that starts
/// with one (RFC 5321 section 4.5.2), a line at a time.
fn stuff_dots(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + 16);
    let mut rest = message;
    if rest.first() == Some(&b'.') {
        out.push(b'.');
    }
    while let Some(at) = memchr::memmem::find(rest, b"\n.") {
        out.extend_from_slice(&rest[..=at]);
        out.push(b'.');
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled() {
        let mut out = Vec::new();
        stuff_dots(b".first\r\nmiddle.\r\n.\r\n..two\r\nend", &mut out);
        assert_eq!(out, b"..first\r\nmiddle.\r\n..\r\n...two\r\nend");
        out.clear();
        stuff_dots(b"no dots here\r\n", &mut out);
        assert_eq!(out, b"no dots here\r\n");
    }
}
