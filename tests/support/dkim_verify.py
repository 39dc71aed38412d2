"""Verifies the DKIM signature of a message file with dkimpy, an implementation
independent of Herald's signer. The public key is given on the command line in
place of a DNS lookup. Prints "pass" or "fail" and the signature's tags."""

import sys

import dkim


def main():
    message_path, selector, domain, public_key = sys.argv[1:5]
    message = open(message_path, "rb").read()
    expected = f"{selector}._domainkey.{domain}.".encode()

    def dns(name, timeout=5):
        if name != expected:
            raise SystemExit(f"asked DNS for {name!r}, expected {expected!r}")
        return b"v=DKIM1; k=rsa; p=" + public_key.encode()

    verifier = dkim.DKIM(message)
    ok = verifier.verify(dnsfunc=dns)
    print("pass" if ok else "fail")
    for name, value in verifier.signature_fields.items():
        print(f"{name.decode()}={value.decode()}")


if __name__ == "__main__":
    main()
