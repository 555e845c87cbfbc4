"""Python's smtplib as a peer in `cargo xtask bench` (written to target/bench/ at run time).

Usage:
  peers.py rt HOST PORT starttls|implicit CA USER PASSWORD FROM TO EML
      one STARTTLS or implicit-TLS session: login() (AUTH PLAIN), sendmail() of EML, quit()
  peers.py throughput HOST PORT COUNT FROM TO EML
      one plaintext connection, COUNT sendmail() calls of EML, quit()
  peers.py memory HOST PORT FROM TO ATTACHMENT
      builds an EmailMessage with ATTACHMENT (the way a Python program would) and sends it
      with send_message() over plaintext
"""

import os
import smtplib
import ssl
import sys
from email.message import EmailMessage

HELO = "smtplib.bench.localhost"


def rt(host, port, mode, ca, user, password, sender, to, eml):
    with open(eml, "rb") as f:
        data = f.read()
    context = ssl.create_default_context(cafile=ca)
    if mode == "implicit":
        client = smtplib.SMTP_SSL(host, int(port), local_hostname=HELO, context=context, timeout=30)
    else:
        client = smtplib.SMTP(host, int(port), local_hostname=HELO, timeout=30)
        client.starttls(context=context)
    with client:
        client.login(user, password)
        client.sendmail(sender, [to], data)


def throughput(host, port, count, sender, to, eml):
    with open(eml, "rb") as f:
        data = f.read()
    with smtplib.SMTP(host, int(port), local_hostname=HELO, timeout=30) as client:
        for _ in range(int(count)):
            client.sendmail(sender, [to], data)


def memory(host, port, sender, to, attachment):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "bench attachment"
    message.set_content("See the attachment.\n")
    with open(attachment, "rb") as f:
        message.add_attachment(
            f.read(),
            maintype="application",
            subtype="octet-stream",
            filename=os.path.basename(attachment),
        )
    with smtplib.SMTP(host, int(port), local_hostname=HELO, timeout=120) as client:
        client.send_message(message)


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"rt": rt, "throughput": throughput, "memory": memory}[mode](*args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
