"""A TLS SMTP server for Herald's tests, on aiosmtpd: STARTTLS (required
before AUTH and MAIL) or implicit TLS, AUTH PLAIN/LOGIN with one user, and
every accepted message written to a folder.

    python3 tls_smtp_server.py MODE PORT CERT KEY OUTDIR USER PASSWORD
    MODE: starttls or implicit
"""

import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    mode, port, cert, key, outdir, user, password = sys.argv[1:8]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    class Keep:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Keep.count += 1
            path = os.path.join(outdir, f"{Keep.count:05d}.eml")
            with open(path, "wb") as f:
                f.write(b"X-Rcpt: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
                encrypted = mode == "implicit" or session.ssl is not None
                f.write(b"X-TLS: " + (b"yes" if encrypted else b"no") + b"\r\n")
                f.write(envelope.original_content)
            return "250 2.0.0 Ok: kept"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)

    options = dict(
        hostname="127.0.0.1",
        port=int(port),
        authenticator=authenticate,
        auth_required=True,
        # aiosmtpd counts only STARTTLS as encryption; an implicit-TLS socket is encrypted from the start.
        auth_require_tls=mode == "starttls",
    )
    if mode == "starttls":
        controller = Controller(Keep(), tls_context=context, require_starttls=True, **options)
    else:
        controller = Controller(Keep(), ssl_context=context, **options)
    controller.start()
    try:
        while True:
            time.sleep(1)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
