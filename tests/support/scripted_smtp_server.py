"""A plain SMTP server for Herald's fault tests, on aiosmtpd, that answers
each recipient by the start of its local part:

    greylist...  RCPT 451 4.7.1 (greylisting)
    full...      RCPT 452 4.2.2 (mailbox full)
    throttle...  RCPT 454 4.7.0 (throttling)
    unknown...   RCPT 550 5.1.1 (no such user)
    spam...      DATA 554 5.6.0 (content refused)
    lost...      DATA: the message is kept, then the connection drops before the reply
    anything else: kept, 250

Every kept message is written to OUTDIR as RECIPIENT.N.eml, so copies can be counted.

    python3 scripted_smtp_server.py PORT OUTDIR
"""

import os
import sys
import time

from aiosmtpd.controller import Controller

RCPT_REPLIES = {
    "greylist": "451 4.7.1 Greylisted, please try again later",
    "full": "452 4.2.2 Mailbox full",
    "throttle": "454 4.7.0 Too many messages from your address, slow down",
    "unknown": "550 5.1.1 Recipient address rejected: User unknown",
}


def main():
    port, outdir = sys.argv[1:3]

    class Scripted:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            local = address.split("@")[0]
            for prefix, reply in RCPT_REPLIES.items():
                if local.startswith(prefix):
                    return reply
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Ok"

        async def handle_DATA(self, server, session, envelope):
            rcpt = envelope.rcpt_tos[0]
            if rcpt.startswith("spam"):
                return "554 5.6.0 Message content rejected"
            n = 1
            while os.path.exists(os.path.join(outdir, f"{rcpt}.{n}.eml")):
                n += 1
            with open(os.path.join(outdir, f"{rcpt}.{n}.eml"), "wb") as f:
                f.write(envelope.original_content)
            if rcpt.startswith("lost"):
                # Kept, but the sender never hears so: the reply is lost.
                server.transport.abort()
            return "250 2.0.0 Ok: kept"

    controller = Controller(Scripted(), hostname="127.0.0.1", port=int(port))
    controller.start()
    try:
        while True:
            time.sleep(1)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
