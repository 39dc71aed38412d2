//! A real Dovecot IMAP server, started by the test on a loopback port with
//! implicit TLS (a certificate for `localhost` from a private CA), one user
//! and a Maildir the test can drop messages into.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{KillOnDrop, certificates, free_port};

pub struct Dovecot {
    pub port: u16,
    pub user: &'static str,
    pub password: &'static str,
    /// The private CA that signed the server's certificate (for `ca_file`).
    pub ca: String,
    dir: tempfile::TempDir,
    _process: KillOnDrop,
}

/// The uid Dovecot keeps the user's mail as (nobody).
const MAIL_UID: u32 = 65534;

impl Dovecot {
    pub fn start() -> Dovecot {
        let binary = Path::new("/usr/sbin/dovecot");
        assert!(
            binary.exists(),
            "Dovecot is not installed (scripts/test installs it: apt-get install dovecot-imapd)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let (ca, cert, key) = certificates(d);
        for sub in ["run", "state", "home"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let (user, password) = ("bounces", "imap-test-password-1");
        std::fs::write(d.join("users"), format!("{user}:{{PLAIN}}{password}\n")).unwrap();
        let port = free_port();
        let config = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = required\n\
             ssl_cert = <{cert}\n\
             ssl_key = <{key}\n\
             ssl_dh = </usr/share/dovecot/dh.pem\n\
             auth_mechanisms = plain\n\
             default_internal_user = dovecot\n\
             default_login_user = dovenull\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  \
             inet_listener imaps {{\n    port = {port}\n    ssl = yes\n  }}\n}}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_UID} gid={MAIL_UID} home={d}/home/%u\n}}\n",
            d = d.display()
        );
        std::fs::write(d.join("dovecot.conf"), config).unwrap();
        let process = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let dovecot = Dovecot {
            port,
            user,
            password,
            ca,
            dir,
            _process: KillOnDrop(process),
        };
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dovecot.maildir().join(sub)).unwrap();
        }
        chown_all(&dovecot.dir.path().join("home"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Dovecot did not listen on port {port}: {}",
                dovecot.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dovecot
    }

    /// The user's Maildir (INBOX); other folders are `.NAME` inside it.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join(self.user).join("Maildir")
    }

    /// Delivers a message into INBOX as a local delivery agent would.
    pub fn deliver(&self, name: &str, message: &str) {
        let tmp = self.maildir().join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        let new = self.maildir().join("new").join(name);
        std::fs::rename(&tmp, &new).unwrap();
        chown_all(&new);
    }

    /// Messages in a folder (`""` for INBOX), new and seen.
    pub fn count(&self, folder: &str) -> usize {
        let root = match folder {
            "" => self.maildir(),
            name => self.maildir().join(format!(".{name}")),
        };
        ["new", "cur"]
            .iter()
            .map(|sub| std::fs::read_dir(root.join(sub)).map_or(0, |d| d.count()))
            .sum()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// The `[bounces.imap]` section for this server.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "\n[bounces.imap]\nhost = \"localhost\"\nport = {}\nusername = \"{}\"\npassword = \"{}\"\n\
             ca_file = \"{}\"\ntimeout_secs = 10\n{extra}",
            self.port, self.user, self.password, self.ca
        )
    }
}

fn chown_all(path: &Path) {
    let ok = Command::new("chown")
        .arg("-R")
        .arg(format!("{MAIL_UID}:{MAIL_UID}"))
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chown {}", path.display());
}
