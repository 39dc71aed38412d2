//! SMTP over TLS against a real TLS server (aiosmtpd, installed by
//! scripts/test): STARTTLS and implicit TLS, AUTH, a private CA trusted
//! through `mail.smtp.ca_file`, and an untrusted certificate pausing the channel.
//! (A refused AUTH pausing the channel is tested against smtp-sink in `faults`.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{KillOnDrop, Workspace, article_txt, base_config, certificates, free_port, show, stdout};

struct TlsServer {
    port: u16,
    inbox: tempfile::TempDir,
    _process: KillOnDrop,
}

fn start(mode: &str, cert: &str, key: &str) -> TlsServer {
    let port = free_port();
    let inbox = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_smtp_server.py");
    let process = Command::new("python3")
        .arg(script)
        .args([mode, &port.to_string(), cert, key, &inbox.path().display().to_string()])
        .args(["herald", "s3cret-pass"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let process = KillOnDrop(process);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the TLS SMTP server did not start (scripts/test installs aiosmtpd)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsServer {
        port,
        inbox,
        _process: process,
    }
}

fn mail_config(tls: &str, port: u16, ca_file: Option<&str>, password: &str) -> String {
    let ca = ca_file.map(|f| format!("ca_file = \"{f}\"\n")).unwrap_or_default();
    format!(
        "[mail]\ntransport = \"smtp\"\nmax_connections = 2\nsend_timeout_secs = 10\n[mail.smtp]\nhost = \"localhost\"\nport = {port}\ntls = \"{tls}\"\nusername = \"herald\"\npassword = \"{password}\"\n{ca}"
    )
}

fn received(server: &TlsServer) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(server.inbox.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).to_string())
        .collect()
}

#[test]
fn starttls_and_implicit_tls_deliver_with_auth_to_a_server_signed_by_a_private_ca() {
    let keys = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(keys.path());
    for mode in ["starttls", "tls"] {
        let server = start(if mode == "tls" { "implicit" } else { mode }, &cert, &key);
        let ws = Workspace::new(&base_config(&mail_config(mode, server.port, Some(&ca), "s3cret-pass")));
        ws.subscribers(3);
        ws.write("articles/quay.txt", &article_txt("Quay wall repaired", "quay"));
        let out = ws.herald(&["digest", "daily"]);
        assert!(out.status.success(), "{mode}: {}", show(&out));
        assert!(stdout(&out).contains("deliveries: 3 sent"), "{mode}: {}", show(&out));
        let messages = received(&server);
        assert_eq!(messages.len(), 3, "{mode}");
        for m in &messages {
            assert!(m.contains("X-TLS: yes"), "{mode}: sent in the clear");
            assert!(m.contains("Quay wall repaired"), "{mode}");
            assert!(
                m.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
                "{mode}"
            );
        }
    }
}

#[test]
fn an_untrusted_certificate_pauses_the_channel_and_sends_nothing() {
    let keys = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(keys.path());
    let server = start("starttls", &cert, &key);

    // Without the CA the certificate is not trusted: the operator's to fix
    // (mail.smtp.ca_file), so the channel pauses naming it; the row stays
    // queued as it was, not tried, not in doubt, and no password went out.
    let ws = Workspace::new(&base_config(&mail_config("starttls", server.port, None, "s3cret-pass")));
    ws.subscribers(1);
    ws.write("articles/quay.txt", &article_txt("Quay wall repaired", "quay"));
    let out = ws.herald(&["digest", "daily"]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PAUSED") && err.contains("at STARTTLS") && err.contains("TLS with localhost failed"),
        "{text}"
    );
    let rows = stdout(&ws.herald(&["deliveries", "--limit", "10"]));
    assert_eq!(crate::support::state_count(&rows, "queued"), (1, 0), "{rows}");
    assert!(rows.contains("tries 0 "), "{rows}");

    assert!(received(&server).is_empty());
}
