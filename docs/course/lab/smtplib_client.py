"""A correct client written with Python's smtplib, as a student would: the lab's reference.

Run it under the lab, which puts the server in the environment:
    test-server lab --profile submission -- python3 docs/course/lab/smtplib_client.py
"""

import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

host = os.environ["SMTP_HOST"]
port = int(os.environ["SMTP_PORT"])

message = EmailMessage()
message["From"] = os.environ["SMTP_FROM"]
message["To"] = os.environ["SMTP_TO"]
message["Subject"] = "Lab report"
message["Date"] = formatdate(localtime=True)
message["Message-ID"] = make_msgid(domain="lab.test")
# A line that starts with a dot, so that the lab can see the dot-stuffing.
message.set_content("Hello from smtplib.\n.signature: a line that starts with a dot\n")

with smtplib.SMTP(host, port, local_hostname="client.lab.test", timeout=30) as smtp:
    if "SMTP_CA_FILE" in os.environ:
        context = ssl.create_default_context(cafile=os.environ["SMTP_CA_FILE"])
        smtp.starttls(context=context)
        smtp.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
    smtp.send_message(message)
print("smtplib: message sent")
