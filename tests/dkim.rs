//! DKIM: digests signed with a configured key verify with dkimpy (not with
//! Herald's own signer), and the signature covers the headers RFC 8058 needs.

use std::path::Path;
use std::process::Command;

use crate::support::{Workspace, article_txt, base_config, file_mail, show};

/// A fresh 2048-bit RSA key written by OpenSSL: (PEM, base64 DER public key
/// for the DNS record). PKCS#1 (`-traditional`) or PKCS#8 (OpenSSL 3's default).
fn rsa_key(dir: &Path, pkcs1: bool) -> (String, String) {
    let pem = dir.join("dkim.pem");
    let mut args = vec!["genrsa"];
    if pkcs1 {
        args.push("-traditional");
    }
    let out = Command::new("openssl")
        .args(args)
        .arg("-out")
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
    let (pem, public_key) = rsa_key(key_dir.path(), true);
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    signed_digests_verify(key_dir.path(), &public_key);
}

#[test]
fn a_pkcs8_key_as_openssl_3_writes_it_signs_too() {
    let key_dir = tempfile::tempdir().unwrap();
    let (pem, public_key) = rsa_key(key_dir.path(), false);
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    signed_digests_verify(key_dir.path(), &public_key);
}

#[test]
fn a_key_from_herald_dkim_keygen_signs_and_its_dns_record_verifies() {
    let key_dir = tempfile::tempdir().unwrap();
    let out = Command::new(crate::support::HERALD)
        .args([
            "dkim",
            "keygen",
            "--selector",
            "herald",
            "--domain",
            "gazette.example.org",
            "--out",
        ])
        .arg(key_dir.path().join("dkim.pem"))
        .current_dir(key_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let text = crate::support::stdout(&out);
    let record = text
        .lines()
        .find(|l| l.starts_with("herald._domainkey.gazette.example.org. IN TXT ( \"v=DKIM1; k=rsa; p="))
        .unwrap_or_else(|| panic!("{text}"));
    // The record's strings joined again, as a resolver does.
    let value: String = record.split('"').skip(1).step_by(2).collect();
    assert!(record.split('"').skip(1).step_by(2).all(|s| s.len() <= 255), "{record}");
    let public_key = value.split("p=").nth(1).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(key_dir.path().join("dkim.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    signed_digests_verify(key_dir.path(), public_key);

    let again = Command::new(crate::support::HERALD)
        .args([
            "dkim",
            "keygen",
            "--selector",
            "herald",
            "--domain",
            "gazette.example.org",
            "--out",
        ])
        .arg(key_dir.path().join("dkim.pem"))
        .output()
        .unwrap();
    assert!(!again.status.success(), "an existing key is never overwritten");
}

/// Signs a digest with `key_dir/dkim.pem` and checks every copy with dkimpy against `public_key`.
fn signed_digests_verify(key_dir: &Path, public_key: &str) {
    let mail = format!(
        "{}[mail.dkim]\nselector = \"herald\"\nprivate_key_file = \"{}\"\n",
        file_mail(),
        key_dir.join("dkim.pem").display()
    );
    let ws = Workspace::new(&base_config(&mail));
    ws.subscribers(2);
    ws.write("articles/tide.txt", &article_txt("Tide tables revised", "tide"));
    let out = ws.herald(&["digest", "daily"]);
    assert!(out.status.success(), "{}", show(&out));
    let outbox = ws.outbox();
    assert_eq!(outbox.len(), 2);

    for (path, raw) in &outbox {
        let (pass, report) = verify(path, public_key);
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
        let (pass, _) = verify(&tampered_path, public_key);
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
        text.contains("mail.dkim.private_key_file") && text.contains("not a usable RSA key"),
        "{text}"
    );
}
