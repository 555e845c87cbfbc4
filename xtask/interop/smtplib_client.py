"""Python's smtplib as a client of our test-server, for `cargo xtask interop`.

Usage: python smtplib_client.py SPEC.json

SPEC: { host, port, mode: "starttls" | "implicit", ca (PEM file), user, password,
        mechanism: null | "PLAIN" | "LOGIN", from, to: [..], cc: [..], subject, text,
        attachments: [file, ..] }

Builds an email.message.EmailMessage and sends it with send_message(); smtplib chooses
SMTPUTF8 itself when an address is not ASCII. Prints the refused recipients (none) as JSON.
"""

import json
import mimetypes
import os
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.policy import SMTP


def main():
    with open(sys.argv[1], encoding="utf-8") as spec_file:
        spec = json.load(spec_file)

    message = EmailMessage(policy=SMTP)
    message["From"] = spec["from"]
    message["To"] = ", ".join(spec["to"])
    if spec.get("cc"):
        message["Cc"] = ", ".join(spec["cc"])
    message["Subject"] = spec["subject"]
    message.set_content(spec["text"])
    for path in spec.get("attachments", []):
        kind, _ = mimetypes.guess_type(path)
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        with open(path, "rb") as data:
            message.add_attachment(
                data.read(), maintype=maintype, subtype=subtype, filename=os.path.basename(path)
            )

    context = ssl.create_default_context(cafile=spec["ca"])
    if spec["mode"] == "implicit":
        client = smtplib.SMTP_SSL(
            spec["host"], spec["port"], local_hostname="smtplib.interop.localhost",
            context=context, timeout=20,
        )
    else:
        client = smtplib.SMTP(
            spec["host"], spec["port"], local_hostname="smtplib.interop.localhost", timeout=20
        )
        client.starttls(context=context)
    with client:
        client.ehlo()
        if spec.get("mechanism") == "LOGIN":
            client.user, client.password = spec["user"], spec["password"]
            client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        elif spec.get("mechanism") == "PLAIN":
            client.user, client.password = spec["user"], spec["password"]
            client.auth("PLAIN", client.auth_plain)
        else:
            client.login(spec["user"], spec["password"])
        refused = client.send_message(message)
    print(json.dumps({"refused": refused}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
