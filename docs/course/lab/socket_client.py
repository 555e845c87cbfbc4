"""A student's raw-socket SMTP client, correct by default, with one deliberate bug on request.

    test-server lab -- python3 docs/course/lab/socket_client.py [--bug NAME]

It reads the server from the lab's environment (SMTP_HOST, SMTP_PORT, SMTP_CA_FILE,
SMTP_USER, SMTP_PASSWORD, SMTP_FROM, SMTP_TO); without SMTP_CA_FILE it speaks plain SMTP
(the `plain` profile). Each bug is one mistake students make, and the lab test checks that
it fails exactly the check named after it in BUGS.
"""

import argparse
import base64
import os
import socket
import ssl
import sys

# Each bug, and the one lab check it must fail.
BUGS = {
    "no-greeting-wait": "waits-for-greeting",
    "lf-commands": "crlf",
    "helo": "ehlo-first",
    "no-wait": "waits-for-replies",
    "one-recv": "reads-multiline",
    "plaintext-auth": "starttls-before-auth",
    "no-ehlo-after-starttls": "ehlo-after-starttls",
    "bad-plain": "auth-encoding",
    "mail-from-space": "path-syntax",
    "no-354-wait": "waits-for-354",
    "no-dot-stuffing": "dot-stuffing",
    "bare-lf": "no-bare-lf-in-data",
    "no-date": "message-headers",
    "no-final-dot": "end-of-data",
    "no-quit": "quit",
    "quit-no-wait": "quit",
}

parser = argparse.ArgumentParser()
parser.add_argument("--bug", choices=sorted(BUGS), default=None)
bug = parser.parse_args().bug

host = os.environ["SMTP_HOST"]
port = int(os.environ["SMTP_PORT"])
ca_file = os.environ.get("SMTP_CA_FILE")
user = os.environ.get("SMTP_USER", "")
password = os.environ.get("SMTP_PASSWORD", "")
sender = os.environ["SMTP_FROM"]
recipient = os.environ["SMTP_TO"]
ending = "\n" if bug == "lf-commands" else "\r\n"

sock = socket.create_connection((host, port), timeout=20)
buffered = b""


def send(text):
    sock.sendall(text.encode())


def command(line):
    send(line + ending)


def reply():
    """One whole reply: lines up to the one with a space after the code."""
    global buffered
    if bug == "one-recv":
        # The bug: one recv() taken as one whole reply.
        return sock.recv(4096).decode()
    lines = []
    while True:
        while b"\r\n" not in buffered:
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("the server closed the connection")
            buffered += chunk
        line, buffered = buffered.split(b"\r\n", 1)
        lines.append(line.decode())
        if len(line) < 4 or line[3:4] != b"-":
            return "\n".join(lines)


def expect(code, what):
    text = reply()
    print(f"{what}: {text}")
    if bug != "one-recv" and not text.startswith(code):
        raise SystemExit(f"expected {code} after {what}")
    return text


def ehlo():
    command("EHLO client.lab.test")
    expect("250", "EHLO")


def plain_response():
    raw = f"\0{user}\0{password}".encode()
    if bug == "bad-plain":
        raw = f"{user}\0{password}".encode()  # the bug: no leading NUL
    return base64.b64encode(raw).decode()


def login():
    global sock
    if bug == "no-wait":
        # The bug: AUTH LOGIN and both answers in one write, without reading the 334s.
        user64 = base64.b64encode(user.encode()).decode()
        pass64 = base64.b64encode(password.encode()).decode()
        send(f"AUTH LOGIN\r\n{user64}\r\n{pass64}\r\n")
        expect("334", "AUTH LOGIN")
        expect("334", "user")
        expect("235", "password")
        return
    command("AUTH PLAIN " + plain_response())
    text = reply()
    print(f"AUTH PLAIN: {text}")
    if bug == "bad-plain" and not text.startswith("235"):
        # Falls back to LOGIN, as some clients do.
        command("AUTH LOGIN")
        expect("334", "AUTH LOGIN")
        command(base64.b64encode(user.encode()).decode())
        expect("334", "user")
        command(base64.b64encode(password.encode()).decode())
        expect("235", "password")
    elif not text.startswith("235"):
        raise SystemExit("AUTH failed")


if bug == "no-greeting-wait":
    command("EHLO client.lab.test")  # the bug: before reading the greeting
    expect("220", "greeting")
    expect("250", "EHLO")
else:
    expect("220", "greeting")
    if bug == "helo":
        command("HELO client.lab.test")
        expect("250", "HELO")
    else:
        ehlo()

if ca_file:
    if bug == "plaintext-auth":
        command("AUTH PLAIN " + plain_response())
        print(f"AUTH before STARTTLS: {reply()}")
    command("STARTTLS")
    expect("220", "STARTTLS")
    context = ssl.create_default_context(cafile=ca_file)
    sock = context.wrap_socket(sock, server_hostname=host)
    if bug == "no-ehlo-after-starttls":
        # The bug: straight on to AUTH; the server forgot the EHLO of before TLS.
        command("AUTH PLAIN " + plain_response())
        print(f"AUTH without EHLO: {reply()}")
        command("QUIT")
        expect("221", "QUIT")
        sys.exit(0)
    ehlo()
    login()

command(f"MAIL FROM: <{sender}>" if bug == "mail-from-space" else f"MAIL FROM:<{sender}>")
expect("250", "MAIL")
command(f"RCPT TO:<{recipient}>")
expect("250", "RCPT")

headers = [f"From: {sender}", f"To: {recipient}", "Subject: Lab report"]
if bug != "no-date":
    headers.insert(0, "Date: Tue, 01 Dec 2026 12:00:00 +0000")
body = ["Hello from a socket.", ".signature: a line that starts with a dot"]
if bug != "no-dot-stuffing":
    body = ["." + line if line.startswith(".") else line for line in body]
lines = "\r\n".join(headers + [""] + body) + "\r\n"
if bug == "bare-lf":
    lines = lines.replace("Hello from a socket.\r\n", "Hello from\na socket.\r\n")

if bug == "no-354-wait":
    send("DATA\r\n" + lines)  # the bug: the message right behind DATA
    expect("354", "DATA")
else:
    command("DATA")
    expect("354", "DATA")
    send(lines)
if bug == "no-final-dot":
    # The bug: no line with a single dot; the server is still reading the message.
    sock.settimeout(1)
    try:
        print(f"end of data: {reply()}")
    except (socket.timeout, TimeoutError):
        print("no reply to the message: giving up")
    sock.close()
    sys.exit(1)
send(".\r\n")
text = reply()
print(f"end of data: {text}")
if bug == "no-quit":
    sock.close()  # the bug: no QUIT
    sys.exit(0)
command("QUIT")
if bug == "quit-no-wait":
    sock.close()  # the bug: closed without reading the 221
    sys.exit(0)
expect("221", "QUIT")
sock.close()
