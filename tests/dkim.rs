//! DKIM: digests signed with a configured key verify with dkimpy (not with
//! Herald's own signer), and the signature covers the headers RFC 8058 needs.

use std::path::Path;
use std::process::Command;

use crate::util::{Workspace, article_txt, base_config, file_mail, show};

/// A fresh 2048-bit RSA key: (PKCS#1 PEM, base64 DER public key for the DNS record).
fn rsa_key(dir: &Path) -> (String, String) {
    let pem = dir.join("dkim.pem");
    let out = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&pem)
        .arg("2048")
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .unwrap();
    assert!(public.status.success());
    use base64::Engine as _;
    (
        std::fs::read_to_string(&pem).unwrap(),
        base64::engine::general_purpose::STANDARD.encode(public.stdout),
    )
}

fn verify(message: &Path, public_key: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(message)
        .args(["herald", "gazette.example.org", public_key])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "the verifier failed to run (scripts/test installs dkimpy):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout.starts_with("pass"), stdout)
}

#[test]
fn digests_are_signed_and_an_independent_verifier_accepts_them() {
    let key_dir = tempfile::tempdir().unwrap();
    let (_, public_key) = rsa_key(key_dir.path());
    let mail = format!(
        "{}[mail.dkim]\nselector = \"herald\"\nprivate_key_file = \"{}\"\n",
        file_mail(),
        key_dir.path().join("dkim.pem").display()
    );
    let ws = Workspace::new(&base_config(&mail));
    ws.subscribers(2);
    ws.write("articles/tide.txt", &article_txt("Tide tables revised", "tide"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let outbox = ws.outbox();
    assert_eq!(outbox.len(), 2);

    for (path, raw) in &outbox {
        let (pass, report) = verify(path, &public_key);
        assert!(pass, "{} did not verify:\n{report}", path.display());
        assert!(report.contains("c=relaxed/relaxed"), "{report}");
        assert!(report.contains("d=gazette.example.org"), "{report}");
        let signed = report
            .lines()
            .find_map(|l| l.strip_prefix("h="))
            .unwrap()
            .to_ascii_lowercase();
        for header in herald::mail::SIGNED_HEADERS {
            assert!(
                signed.split(':').any(|h| h.trim() == header.to_ascii_lowercase()),
                "{header} is not signed: {signed}"
            );
        }

        // Changing a signed header breaks the signature: the one-click URL is protected.
        let text = String::from_utf8_lossy(raw);
        let tampered = text.replacen("List-Unsubscribe: <https://", "List-Unsubscribe: <https://evil.", 1);
        assert_ne!(tampered, text);
        let tampered_path = ws.path().join("tampered.eml");
        std::fs::write(&tampered_path, tampered).unwrap();
        let (pass, _) = verify(&tampered_path, &public_key);
        assert!(!pass, "a changed List-Unsubscribe must fail verification");
    }
}

#[test]
fn a_bad_dkim_key_is_refused_at_load_naming_the_key() {
    let ws = Workspace::new(&base_config(&format!(
        "{}[mail.dkim]\nselector = \"herald\"\nprivate_key_file = \"nowhere.pem\"\n",
        file_mail()
    )));
    let out = ws.herald(&["check"]);
    assert!(!out.status.success());
    let text = show(&out);
    assert!(
        text.contains("mail.dkim.private_key_file") && text.contains("nowhere.pem"),
        "{text}"
    );

    ws.write(
        "junk.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n",
    );
    ws.write(
        "config/herald.toml",
        &base_config(&format!(
            "{}[mail.dkim]\nselector = \"herald\"\nprivate_key_file = \"junk.pem\"\n",
            file_mail()
        )),
    );
    let out = ws.herald(&["check"]);
    assert!(!out.status.success());
    let text = show(&out);
    assert!(
        text.contains("mail.dkim.private_key_file") && text.contains("not a usable key"),
        "{text}"
    );
}
