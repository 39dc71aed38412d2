//! A real Postfix, started by the test as a relay on a loopback port: it
//! accepts every message with 250, relays it to `[127.0.0.1]:next_hop`, and
//! when the next hop refuses a recipient it writes the delivery status
//! notification itself and delivers it (its `virtual` agent) into a
//! Maildir for the bounce domain, as a publisher's smarthost would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::free_port;

pub struct Postfix {
    pub port: u16,
    dir: tempfile::TempDir,
}

/// The domain whose mail Postfix keeps in [`Postfix::maildir`].
pub const BOUNCE_DOMAIN: &str = "bounces.test";

impl Postfix {
    /// Starts an instance relaying to `next_hop`; `None` (with why) when
    /// Postfix is not installed, so the caller can say so.
    pub fn start(next_hop: u16) -> Result<Postfix, String> {
        let postfix = Path::new("/usr/sbin/postfix");
        if !postfix.exists() {
            return Err("Postfix is not installed (scripts/test installs it: apt-get install postfix)".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["queue", "data", "mail"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let chown = |owner: &str, path: &Path| {
            let ok = Command::new("chown").arg(owner).arg(path).status().unwrap().success();
            assert!(ok, "chown {owner} {}", path.display());
        };
        chown("postfix", &d.join("data"));
        chown("nobody:nogroup", &d.join("mail"));
        let port = free_port();
        let main = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {d}/queue\n\
             data_directory = {d}/data\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = relay.test\n\
             mydomain = relay.test\n\
             myorigin = relay.test\n\
             mydestination =\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\n\
             relayhost = [127.0.0.1]:{next_hop}\n\
             smtp_dns_support_level = disabled\n\
             smtp_tls_security_level = none\n\
             smtpd_tls_security_level = none\n\
             smtpd_recipient_restrictions = permit_mynetworks, reject\n\
             recipient_delimiter = +\n\
             virtual_mailbox_domains = {BOUNCE_DOMAIN}\n\
             virtual_mailbox_base = {d}/mail\n\
             virtual_mailbox_maps = static:bounces/\n\
             virtual_uid_maps = static:65534\n\
             virtual_gid_maps = static:65534\n\
             alias_maps =\n\
             alias_database =\n\
             delay_warning_time = 0\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n",
            d = d.display()
        );
        std::fs::write(d.join("main.cf"), main).unwrap();
        let services = [
            format!("127.0.0.1:{port} inet n - n - - smtpd"),
            "pickup unix n - n 60 1 pickup".into(),
            "cleanup unix n - n - 0 cleanup".into(),
            "qmgr unix n - n 300 1 qmgr".into(),
            "rewrite unix - - n - - trivial-rewrite".into(),
            "bounce unix - - n - 0 bounce".into(),
            "defer unix - - n - 0 bounce".into(),
            "trace unix - - n - 0 bounce".into(),
            "verify unix - - n - 1 verify".into(),
            "flush unix n - n 1000? 0 flush".into(),
            "proxymap unix - - n - - proxymap".into(),
            "smtp unix - - n - - smtp".into(),
            "relay unix - - n - - smtp".into(),
            "showq unix n - n - - showq".into(),
            "error unix - - n - - error".into(),
            "retry unix - - n - - error".into(),
            "discard unix - - n - - discard".into(),
            "local unix - n n - - local".into(),
            "virtual unix - n n - - virtual".into(),
            "anvil unix - - n - 1 anvil".into(),
            "scache unix - - n - 1 scache".into(),
        ];
        std::fs::write(d.join("master.cf"), services.join("\n") + "\n").unwrap();
        let out = Command::new(postfix).arg("-c").arg(d).arg("start").output().unwrap();
        if !out.status.success() {
            return Err(format!(
                "postfix -c {} start failed: {}",
                d.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let postfix = Postfix { port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("Postfix did not listen on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(postfix)
    }

    /// The Maildir the bounce domain's mail is delivered to.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/bounces")
    }

    /// The messages in the Maildir's `new` folder.
    pub fn delivered(&self) -> usize {
        std::fs::read_dir(self.maildir().join("new")).map_or(0, |d| d.count())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(self.dir.path())
            .arg("abort")
            .output();
    }
}
