//! A scripted SMTP relay that can misbehave at every step (greeting, EHLO,
//! STARTTLS, AUTH, MAIL, each RCPT, DATA, the final dot, QUIT): wrong codes,
//! refusals, silence, floods, dropped connections, plaintext injected after
//! STARTTLS and replies that are not UTF-8. It records every command it
//! hears and every message it keeps, so a test can tell what Herald sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the relay does at one step.
#[derive(Clone, Debug)]
pub enum Act {
    /// Sends these bytes as they are (CRLF included), in one write.
    Say(Vec<u8>),
    /// Sends these bytes after a while.
    Later(std::time::Duration, Vec<u8>),
    /// Says nothing and keeps the connection until the client closes it.
    Hang,
    /// Sends one endless line (up to 64 MiB) until the client closes.
    Flood,
}

/// A reply line (CRLF added).
pub fn say(reply: &str) -> Act {
    Act::Say(format!("{reply}\r\n").into_bytes())
}

/// Decides a step from the connection's number (1-based) and, for RCPT and
/// the final dot, the recipient.
pub type Rule = Arc<dyn Fn(usize, &str) -> Act + Send + Sync>;

pub fn always(act: Act) -> Rule {
    Arc::new(move |_, _| act.clone())
}

/// The relay's behaviour at each step; [`Script::default`] is a well-behaved
/// relay offering PIPELINING and 8BITMIME.
#[derive(Clone)]
pub struct Script {
    pub greeting: Rule,
    /// The EHLO keywords offered on each connection.
    pub extensions: Arc<dyn Fn(usize) -> Vec<&'static str> + Send + Sync>,
    pub ehlo: Option<Rule>,
    pub starttls: Rule,
    pub auth: Rule,
    pub mail: Rule,
    pub rcpt: Rule,
    pub data: Rule,
    pub end_of_data: Rule,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            greeting: always(say("220 relay.test ESMTP")),
            extensions: Arc::new(|_| vec!["PIPELINING", "8BITMIME"]),
            ehlo: None,
            starttls: always(say("454 4.7.0 TLS not available")),
            auth: always(say("235 2.7.0 Authentication successful")),
            mail: always(say("250 2.1.0 Ok")),
            rcpt: always(say("250 2.1.5 Ok")),
            data: always(say("354 End data with <CR><LF>.<CR><LF>")),
            end_of_data: always(say("250 2.0.0 Ok: queued")),
        }
    }
}

/// What the relay heard and kept.
#[derive(Default)]
pub struct Heard {
    /// Every command line, prefixed with its connection's number: `"2 RCPT TO:<a@b>"`.
    pub commands: Vec<String>,
    /// Every message kept: (recipient, the message as received, dot-unstuffed).
    pub kept: Vec<(String, Vec<u8>)>,
}

pub struct Relay {
    pub port: u16,
    heard: Arc<Mutex<Heard>>,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    pub fn start(script: Script) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (h, c) = (heard.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let (script, heard) = (script.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = serve(n, stream, &script, &heard);
                });
            }
        });
        Relay {
            port,
            heard,
            connections,
        }
    }

    pub fn commands(&self) -> Vec<String> {
        self.heard.lock().unwrap().commands.clone()
    }

    /// Commands that start with `verb` (any connection).
    pub fn heard(&self, verb: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|c| c.split_once(' ').is_some_and(|(_, rest)| rest.starts_with(verb)))
            .collect()
    }

    pub fn kept(&self) -> Vec<(String, Vec<u8>)> {
        self.heard.lock().unwrap().kept.clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Does `what`; `Ok(false)` when the connection is over.
fn act(what: Act, out: &mut TcpStream, reader: &mut BufReader<TcpStream>) -> std::io::Result<bool> {
    match what {
        Act::Say(bytes) => {
            out.write_all(&bytes)?;
            // A 421 closes the session (RFC 5321 section 3.8).
            Ok(!bytes.starts_with(b"421"))
        }
        Act::Later(wait, bytes) => {
            std::thread::sleep(wait);
            act(Act::Say(bytes), out, reader)
        }
        Act::Hang => {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
            Ok(false)
        }
        Act::Flood => {
            let chunk = vec![b'x'; 64 * 1024];
            out.write_all(b"220 ")?;
            for _ in 0..1024 {
                if out.write_all(&chunk).is_err() {
                    break;
                }
            }
            Ok(false)
        }
    }
}

fn serve(n: usize, stream: TcpStream, script: &Script, heard: &Mutex<Heard>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    if !act((script.greeting)(n, ""), &mut out, &mut reader)? {
        return Ok(());
    }
    let mut rcpts: Vec<String> = Vec::new();
    let mut mail_open = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        heard.lock().unwrap().commands.push(format!("{n} {command}"));
        let verb = command.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase();
        let next = match verb.as_str() {
            "EHLO" | "HELO" => match &script.ehlo {
                Some(rule) => rule(n, ""),
                None => {
                    let mut reply = String::from("250-relay.test\r\n");
                    let extensions = (script.extensions)(n);
                    for (i, e) in extensions.iter().enumerate() {
                        let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
                        reply.push_str(&format!("250{sep}{e}\r\n"));
                    }
                    if extensions.is_empty() {
                        reply = "250 relay.test\r\n".into();
                    }
                    Act::Say(reply.into_bytes())
                }
            },
            "STARTTLS" => script.starttls.as_ref()(n, ""),
            "AUTH" => script.auth.as_ref()(n, ""),
            "MAIL" => {
                rcpts.clear();
                let reply = script.mail.as_ref()(n, "");
                mail_open = matches!(&reply, Act::Say(b) if b.starts_with(b"250"));
                reply
            }
            "RCPT" if !mail_open => say("503 5.5.1 Error: need MAIL command"),
            "RCPT" => {
                let to = command
                    .split_once('<')
                    .and_then(|(_, rest)| rest.split_once('>'))
                    .map(|(to, _)| to.to_string())
                    .unwrap_or_default();
                let reply = script.rcpt.as_ref()(n, &to);
                if matches!(&reply, Act::Say(b) if b.starts_with(b"25")) {
                    rcpts.push(to);
                }
                reply
            }
            "DATA" => {
                let reply = if rcpts.is_empty() {
                    say("554 5.5.1 Error: no valid recipients")
                } else {
                    script.data.as_ref()(n, "")
                };
                let open = matches!(&reply, Act::Say(b) if b.starts_with(b"354"));
                if !act(reply, &mut out, &mut reader)? {
                    return Ok(());
                }
                if open {
                    mail_open = false;
                    let message = read_data(&mut reader)?;
                    let to = rcpts.first().cloned().unwrap_or_default();
                    let reply = script.end_of_data.as_ref()(n, &to);
                    if matches!(&reply, Act::Say(b) | Act::Later(_, b) if b.starts_with(b"250")) {
                        heard.lock().unwrap().kept.push((to, message));
                    }
                    if !act(reply, &mut out, &mut reader)? {
                        return Ok(());
                    }
                }
                continue;
            }
            "RSET" => {
                mail_open = false;
                rcpts.clear();
                say("250 2.0.0 Ok")
            }
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => say("250 2.0.0 Ok"),
        };
        if !act(next, &mut out, &mut reader)? {
            return Ok(());
        }
    }
}

/// Reads a message up to its final dot, undoing the dot-stuffing.
fn read_data(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut message = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" {
            return Ok(message);
        }
        let unstuffed = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
        message.extend_from_slice(unstuffed);
    }
}
