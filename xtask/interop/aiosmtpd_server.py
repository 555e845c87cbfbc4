"""An aiosmtpd server for `cargo xtask interop`.

Two listeners on 127.0.0.1, both requiring STARTTLS (RFC 3207) before MAIL and TLS before
AUTH (RFC 4954 §4):

  --port        offers AUTH PLAIN and LOGIN
  --login-port  offers AUTH LOGIN only (so a client's LOGIN code path is exercised)

Every accepted message is saved in --store as NNNNNN.json (the envelope as aiosmtpd saw it)
and then NNNNNN.eml: `envelope.original_content`, the raw bytes after dot-unstuffing,
exactly as received. The .eml appears last (written to a temporary name, then renamed), so
a visible .eml always has its .json. Runs until SIGTERM or SIGINT.
"""

import argparse
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.lock = threading.Lock()
        self.counter = 0

    def save(self, raw, meta):
        with self.lock:
            self.counter += 1
            base = os.path.join(self.directory, f"{self.counter:06}")
        with open(base + ".json", "w", encoding="utf-8") as out:
            json.dump(meta, out, ensure_ascii=False, indent=2)
        with open(base + ".eml.tmp", "wb") as out:
            out.write(raw)
        os.rename(base + ".eml.tmp", base + ".eml")


class Handler:
    def __init__(self, store, listener):
        self.store = store
        self.listener = listener

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        meta = {
            "listener": self.listener,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "smtp_utf8": envelope.smtp_utf8,
            "auth_user": auth.login.decode("utf-8") if isinstance(auth, LoginPassword) else None,
            "tls": session.ssl is not None,
            "helo": session.host_name,
        }
        self.store.save(envelope.original_content, meta)
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        # On success aiosmtpd keeps auth_data in session.auth_data for the handler.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--login-port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    store = Store(args.store)

    controllers = []
    for name, port, exclude in (
        ("plain+login", args.port, []),
        ("login-only", args.login_port, ["PLAIN"]),
    ):
        controller = Controller(
            Handler(store, name),
            hostname="127.0.0.1",
            port=port,
            server_hostname="aiosmtpd.interop.localhost",
            tls_context=tls,
            require_starttls=True,
            authenticator=authenticator(args.user, args.password),
            auth_require_tls=True,
            auth_exclude_mechanism=exclude,
            decode_data=False,
            enable_SMTPUTF8=True,
        )
        controller.start()
        controllers.append(controller)
    print(f"aiosmtpd listening on 127.0.0.1:{args.port} and 127.0.0.1:{args.login_port}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    for controller in controllers:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
