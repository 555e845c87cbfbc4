"""test-server's web inbox in a real browser, for `cargo xtask web-test`.

Usage: python web_test.py --binaries DIR --out DIR --chromium PATH --chromedriver PATH

DIR (--binaries) holds test-server, raw-client and lib-client; --out is target/web-test/,
where the screenshots go and run/ keeps this run's store and logs. It starts test-server
with --http, a canary HTTP server that records every request, and headless Chromium through
the given chromedriver (so Selenium Manager never downloads anything), all on 127.0.0.1.
Then it sends with raw-client, lib-client and smtplib and checks the pages (see CHECKS),
prints a table and "web-test: N passed, N failed", and exits 0 only when all passed. Every
process it started is stopped at the end, also after a failure.

Standard library and selenium only.
"""

import argparse
import http.server
import json
import os
import re
import shutil
import smtplib
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    TimeoutException,
    UnexpectedAlertPresentException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

USER, PASSWORD = "alice", "s3cret"
PASSWORD_ENV = "WEB_TEST_PASSWORD"
WRONG_PASSWORD_ENV = "WEB_TEST_WRONG_PASSWORD"
HELO = "web-test.example"
WAIT = 10  # seconds, for anything the page should show
SIZE = (1280, 900)
PHONE_WIDTH = 390


class Fail(Exception):
    """A check failed; the message is the reason, one sentence."""


# --- processes -------------------------------------------------------------------------


class Canary:
    """An HTTP server on 127.0.0.1 that records every request: anything the hostile message
    makes the browser fetch lands here. Images get a 1x1 GIF, /control a page whose script
    trips every detector (see `detectors`), everything else an empty 200."""

    CONTROL = (
        b"<!doctype html><title>control</title><script>document.title='pwned';"
        b"fetch('/hit?control');setTimeout(() => alert('control'), 200)</script>"
    )

    GIF = (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
        b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )

    def __init__(self):
        self.hits = []
        lock = threading.Lock()
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with lock:
                    canary.hits.append(self.path)
                if self.path == "/control":
                    body, kind = Canary.CONTROL, "text/html"
                elif "image" in self.path:
                    body, kind = Canary.GIF, "image/gif"
                else:
                    body, kind = b"", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def scripted(self):
        """Requests only a script, a link, a style or a form would make."""
        return [hit for hit in list(self.hits) if "remote-image" not in hit]

    def images(self):
        return [hit for hit in list(self.hits) if "remote-image" in hit]

    def reset(self):
        self.hits = []

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class TestServer:
    """test-server with one user, SMTP and --http on ports the kernel picks; the addresses
    are read from what it prints."""

    def __init__(self, binary, run_dir):
        self.store = os.path.join(run_dir, "store")
        self.log_path = os.path.join(run_dir, "test-server.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                binary,
                "--listen", "127.0.0.1:0",
                "--store", self.store,
                "--hostname", "web-test.localhost",
                "--user", USER,
                "--password", PASSWORD,
                "--http", "127.0.0.1:0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        self.smtp = self.http = None
        while time.monotonic() < deadline:
            text = self.read_log()
            smtp = re.search(r"listening on (127\.0\.0\.1:\d+)", text)
            web = re.search(r"web inbox on (http://127\.0\.0\.1:\d+)/", text)
            if smtp and web and os.path.exists(self.ca):
                self.smtp, self.http = smtp.group(1), web.group(1)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise Fail(f"test-server did not print its SMTP and web addresses; its log: {self.tail()}")

    @property
    def ca(self):
        return os.path.join(self.store, "ca.pem")

    @property
    def smtp_port(self):
        return int(self.smtp.rsplit(":", 1)[1])

    def read_log(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")

    def tail(self):
        return " | ".join(self.read_log().strip().splitlines()[-5:])

    def api(self, path):
        with urllib.request.urlopen(self.http + "/api/v1" + path, timeout=10) as answer:
            return json.load(answer)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_browser(chromium, chromedriver, run_dir, profile_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
        f"--window-size={SIZE[0]},{SIZE[1]}",
    ]:
        options.add_argument(flag)
    # Leave an alert open (instead of dismissing it) so that the test can see it.
    options.unhandled_prompt_behavior = "ignore"
    service = Service(
        executable_path=chromedriver,
        log_output=os.path.join(run_dir, "chromedriver.log"),
    )
    return webdriver.Chrome(service=service, options=options)


# --- helpers ---------------------------------------------------------------------------


class Ctx:
    def __init__(self, args, server, canary, driver, run_dir):
        self.bin = args.binaries
        self.out = args.out
        self.run_dir = run_dir
        self.server = server
        self.canary = canary
        self.driver = driver
        self.env = dict(os.environ, **{PASSWORD_ENV: PASSWORD, WRONG_PASSWORD_ENV: "not-" + PASSWORD})

    def client(self, name, *extra, to="bob@example.com", password_env=PASSWORD_ENV, timeout=60):
        """Runs raw-client or lib-client against our server; returns the CompletedProcess."""
        command = [
            os.path.join(self.bin, name),
            "--server", self.server.smtp,
            "--ca-file", self.server.ca,
            "--helo-name", HELO,
            "--user", USER,
            "--password-env", password_env,
            "--from", "Alice <alice@example.com>",
            "--to", to,
            "--quiet",
            *extra,
        ]
        try:
            return subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise Fail(f"{name} did not finish within {timeout} s")

    def send(self, name, *extra, **kw):
        done = self.client(name, *extra, **kw)
        if done.returncode != 0:
            raise Fail(f"{name} failed (exit {done.returncode}): {last_line(done.stderr)}")
        return done

    def open(self, hash_route):
        """Loads the page at a route (a full load, to start from a known state)."""
        self.driver.get(self.server.http + "/" + hash_route)
        self.wait(lambda d: d.find_element(By.ID, "live").text == "live", "the page's live indicator to say live")

    def go(self, hash_route):
        """Moves to a route inside the loaded page, without a reload."""
        self.driver.execute_script("location.hash = arguments[0]", hash_route)

    def wait(self, condition, what, timeout=WAIT):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda d: condition(d) or None
            )
        except TimeoutException:
            raise Fail(f"waited {timeout} s for {what} in vain")

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text_of(self, element):
        return self.driver.execute_script("return arguments[0].textContent", element)

    def row(self, table, id_):
        rows = self.css(f'table#{table} tr[data-id="{id_}"]')
        return rows[0] if rows else None

    def viewport(self, width, height):
        """Sizes the window so that the page itself (and so a screenshot) is width x height:
        headless Chromium's window is larger than its viewport."""
        self.driver.set_window_size(width, height)
        inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        self.driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])

    def screenshot(self, name):
        path = os.path.join(self.out, name)
        if not self.driver.save_screenshot(path):
            raise Fail(f"the browser saved no screenshot {name}")
        return path

    def no_alert(self):
        try:
            alert = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        text = alert.text
        alert.dismiss()
        raise Fail(f"an alert opened ({text!r}): a script from the message ran")

    def title_is_ours(self):
        title = self.driver.title
        if not title.startswith("test-server: ") or "pwned" in title:
            raise Fail(f"document.title is {title!r}, not the app's: a script from the message ran")
        return title

    def message_id(self, **query):
        """The newest stored message matching a search (a GET /api/v1/messages query)."""
        query = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in query.items())
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            found = self.server.api("/messages?" + query)["messages"]
            if found:
                return found[0]
            time.sleep(0.1)
        raise Fail(f"no stored message matches {query}")


def poll(probe, timeout=WAIT):
    """probe()'s first truthy answer within the time, else its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on standard error)"


def png_size(path):
    with open(path, "rb") as png:
        head = png.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        raise Fail(f"{os.path.basename(path)} is not a PNG file")
    return struct.unpack(">II", head[16:24])


# --- checks ----------------------------------------------------------------------------


def detectors(ctx):
    """The detectors the hostile check relies on see a script that does run: a page of the
    canary's own, without the inbox's sandbox and policies, changes the title, calls the
    canary and opens an alert."""
    ctx.driver.get(ctx.canary.url("/control"))
    ctx.wait(lambda d: d.title == "pwned" and "/hit?control" in ctx.canary.hits,
             "the control page's script to set the title and call the canary")

    def alert_open(_):
        try:
            ctx.no_alert()
        except Fail:
            return True
        return False

    ctx.wait(alert_open, "the control page's alert to be seen")
    hits = len(ctx.canary.hits)
    ctx.canary.reset()
    return f"title changed, {hits} canary requests, alert seen"


def live(ctx, client):
    """A message sent while the inbox is open appears in it without a reload."""
    ctx.open("#/")
    ctx.wait(lambda d: ctx.css("#inbox tr.message") or ctx.css("#inbox-empty")[0].is_displayed(),
             "the inbox to load")
    ctx.driver.execute_script("window.webTestMarker = 'no reload'")
    subject = f"live inbox via {client}"
    started = time.monotonic()
    ctx.send(client, "--subject", subject, "--body", f"Sent by {client} while the inbox was open.")

    def appeared(_):
        return [r for r in ctx.css("#inbox tr.message") if ctx.text_of(r.find_element(By.CSS_SELECTOR, "td.subject")) == subject]

    ctx.wait(appeared, f"a tr.message with the subject {subject!r}")
    seconds = time.monotonic() - started
    if ctx.driver.execute_script("return window.webTestMarker") != "no reload":
        raise Fail("the page was reloaded to show the message")
    return f"row appeared {seconds:.1f} s after the send, without a reload"


def message_view(ctx):
    """A text + HTML message: the text part, and the HTML part in an empty-sandbox iframe."""
    html = os.path.join(ctx.run_dir, "view.html")
    with open(html, "w", encoding="utf-8") as f:
        f.write("<h1>The HTML part</h1>\n<p>Shown <b>in a sandboxed frame</b>.</p>\n")
    subject = "text and HTML"
    text = "The text part of a multipart/alternative message."
    ctx.open("#/")
    ctx.send("raw-client", "--subject", subject, "--body", text, "--html-file", html)
    summary = ctx.message_id(subject=subject)
    ctx.wait(lambda d: ctx.row("inbox", summary["id"]), "the message's row")
    ctx.row("inbox", summary["id"]).click()
    ctx.wait(lambda d: ctx.css("#message-text") and ctx.text_of(ctx.css("#message-text")[0]).strip() == text,
             "#message-text to show the text part")
    ctx.driver.find_element(By.ID, "tab-html").click()
    frame = ctx.wait(lambda d: ctx.css("iframe#message-html"), "iframe#message-html")[0]
    sandbox = ctx.driver.execute_script("return arguments[0].getAttribute('sandbox')", frame)
    if sandbox != "":
        raise Fail(f"the HTML iframe's sandbox attribute is {sandbox!r}, not present and empty")
    ctx.driver.switch_to.frame(frame)
    try:
        ctx.wait(lambda d: "in a sandboxed frame" in d.find_element(By.TAG_NAME, "body").text,
                 "the HTML part's text inside the iframe")
    finally:
        ctx.driver.switch_to.default_content()
    ctx.screenshot("message.png")
    return f"message {summary['id']}: text shown, HTML in <iframe sandbox=\"\">"


def hostile_message(canary):
    """A message whose every field tries to run a script; each would set the title to
    "pwned" and call the canary."""
    hit = lambda tag: canary.url(f"/hit?{tag}")
    subject = (
        f"<script>document.title='pwned';fetch('{hit('subject-script')}')</script>"
        f"<img src=x onerror=\"document.title='pwned';fetch('{hit('subject-img')}')\">"
        " javascript:alert(1) ../../etc/passwd"
    )
    from_name = f"<img src=x onerror=fetch('{hit('from')}')> javascript:alert(2)"
    to_name = "<script>document.title='pwned'</script> ../../to"
    html = "\r\n".join([
        "<html><head>",
        f"<script>document.title='pwned';parent.document.title='pwned';fetch('{hit('html-script')}');alert('script')</script>",
        f"<link rel=\"stylesheet\" href=\"{hit('html-stylesheet')}\">",
        "</head><body>",
        "<p>Hostile HTML body.</p>",
        f"<img src=\"x\" onerror=\"parent.document.title='pwned';fetch('{hit('html-onerror')}');alert('onerror')\">",
        f"<svg onload=\"parent.document.title='pwned';fetch('{hit('html-svg')}');alert('svg')\"><circle r=\"5\"/></svg>",
        f"<a id=\"js-link\" href=\"javascript:parent.document.title='pwned';fetch('{hit('html-href')}');alert('href')\">click me</a>",
        f"<img id=\"remote\" src=\"{canary.url('/remote-image.gif')}\" alt=\"remote\">",
        "</body></html>",
    ])
    attachment_name = "../../../etc/<img src=x onerror=alert(3)>passwd.html"
    second_name = "..\\..\\javascript:alert(4)"
    lines = [
        f"From: \"{from_name}\" <mallory@example.com>",
        f"To: \"{to_name}\" <victim@example.com>",
        f"Subject: {subject}",
        "Date: Tue, 01 Dec 2026 12:00:00 +0000",
        "Message-ID: <hostile@web-test.example>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"outer\"",
        "",
        "--outer",
        "Content-Type: multipart/alternative; boundary=\"inner\"",
        "",
        "--inner",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "<script>alert('text')</script> javascript:alert(5)",
        "--inner",
        "Content-Type: text/html; charset=utf-8",
        "",
        html,
        "--inner--",
        "--outer",
        f"Content-Type: text/html; name=\"{attachment_name}\"",
        f"Content-Disposition: attachment; filename=\"{attachment_name}\"",
        "",
        f"<script>fetch('{hit('attachment')}')</script>",
        "--outer",
        "Content-Type: application/octet-stream",
        f"Content-Disposition: attachment; filename=\"{second_name.replace(chr(92), chr(92) * 2)}\"",
        "",
        "binary",
        "--outer--",
        "",
    ]
    return subject, from_name, "\r\n".join(lines).encode("ascii")


def hostile(ctx):
    """The hostile message runs nothing: no title change, no alert, no canary request, no
    element of it in the page, literal text everywhere, safe attachment names."""
    subject, from_name, data = hostile_message(ctx.canary)
    ctx.open("#/")
    tls = ssl.create_default_context(cafile=ctx.server.ca)
    with smtplib.SMTP("127.0.0.1", ctx.server.smtp_port, local_hostname=HELO, timeout=30) as smtp:
        smtp.starttls(context=tls)
        smtp.login(USER, PASSWORD)
        smtp.sendmail("mallory@example.com", ["victim@example.com"], data)
    summary = ctx.message_id(to="victim@example.com")
    row = ctx.wait(lambda d: ctx.row("inbox", summary["id"]), "the hostile message's row")
    shown = ctx.text_of(row.find_element(By.CSS_SELECTOR, "td.subject"))
    if shown != subject:
        raise Fail(f"the row's subject is {shown!r}, not the literal subject {subject!r}")
    if from_name not in ctx.text_of(row.find_element(By.CSS_SELECTOR, "td.from")):
        raise Fail("the row's From cell does not show the display name as literal text")

    def clean(where):
        ctx.no_alert()
        ctx.title_is_ours()
        injected = ctx.css("img[onerror], svg[onload], [onload], [onerror], a[href^='javascript:' i], iframe:not(#message-html)")
        if injected:
            raise Fail(f"{where}: {len(injected)} element(s) of the message are in the page")
        scripts = [s.get_attribute("src") or "(inline)" for s in ctx.css("script")]
        if len(scripts) != 1 or not scripts[0].endswith("/app.js"):
            raise Fail(f"{where}: the page has the scripts {scripts}, not only /app.js")
        if ctx.canary.hits:
            raise Fail(f"{where}: the canary was called: {ctx.canary.hits}")

    ctx.screenshot("inbox.png")
    clean("inbox")
    row.click()
    ctx.wait(lambda d: ctx.text_of(d.find_element(By.ID, "message-subject")) == subject,
             "#message-subject to show the literal subject")
    if from_name not in ctx.text_of(ctx.driver.find_element(By.ID, "message-from")):
        raise Fail("#message-from does not show the display name as literal text")
    for tab in ["text", "html", "headers", "mime", "attachments", "raw", "envelope", "transcript"]:
        ctx.driver.find_element(By.ID, f"tab-{tab}").click()
        if tab == "html":
            frame = ctx.wait(lambda d: ctx.css("iframe#message-html"), "the HTML iframe")[0]
            ctx.driver.switch_to.frame(frame)
            try:
                ctx.wait(lambda d: "Hostile HTML body" in d.find_element(By.TAG_NAME, "body").text,
                         "the hostile HTML's text inside the iframe")
                # A javascript: link in a sandbox without allow-scripts does nothing.
                ctx.driver.find_element(By.ID, "js-link").click()
            finally:
                ctx.driver.switch_to.default_content()
            time.sleep(1)  # give anything that would run a moment to do it
        clean(f"the {tab} tab")
    names = [ctx.text_of(a) for a in ctx.css("#attachment-list a.attachment")]
    if len(names) != 2:
        raise Fail(f"the attachments tab lists {names}, not the two attachments")
    for name in names:
        if "/" in name or "\\" in name or ".." in name or "<" in name:
            raise Fail(f"the attachment is shown as {name!r}, which still has a path or markup")
    mime = ctx.text_of(ctx.driver.find_element(By.ID, "mime-tree"))
    if "../" in mime or "<img" in mime:
        raise Fail("the MIME tree shows the attachment's unsafe name")

    # With remote images on, the image (and only the image) may reach the canary.
    ctx.driver.find_element(By.ID, "tab-html").click()
    ctx.driver.find_element(By.ID, "remote-images").click()
    ctx.wait(lambda d: ctx.canary.images(), "the remote image to be requested with remote images on")
    time.sleep(1)
    ctx.no_alert()
    ctx.title_is_ours()
    if ctx.canary.scripted():
        raise Fail(f"with remote images on, the canary was called by more than the image: {ctx.canary.scripted()}")
    return (f"message {summary['id']}: title kept, no alert, subject literal, attachments {names}; "
            f"canary: 0 requests with remote images off, {len(ctx.canary.images())} image request(s) with them on")


def failed_auth(ctx):
    """A wrong password: a failed session in the list, a 535 in its transcript."""
    ctx.open("#/sessions")
    before = {s["id"] for s in ctx.server.api("/sessions?limit=1000")["sessions"]}
    done = ctx.client("raw-client", "--subject", "wrong password", "--body", "x",
                      password_env=WRONG_PASSWORD_ENV)
    if done.returncode == 0:
        raise Fail("raw-client with a wrong password succeeded")
    # The server records the session when it sees the connection close, just after the
    # client has exited.
    failed = poll(lambda: [s for s in ctx.server.api("/sessions?limit=1000")["sessions"]
                           if s["id"] not in before and s["failed_auth"]])
    if not failed:
        raise Fail(f"the server recorded no session with a failed AUTH within {WAIT} s")
    id_ = failed[0]["id"]
    ctx.wait(lambda d: ctx.css(f'tr.session.failed[data-id="{id_}"]'), f"tr.session.failed for session {id_}")
    ctx.css(f'tr.session.failed[data-id="{id_}"]')[0].click()

    def line_535(_):
        return [li for li in ctx.css("#transcript li.line.server")
                if ctx.text_of(li.find_element(By.TAG_NAME, "code")).startswith("S: 535")]

    line = ctx.wait(line_535, "a server line with 535 in #transcript")[0]
    if not ctx.css("#transcript ul.explain li"):
        raise Fail("the transcript shows no explain notes")
    ctx.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", line)
    ctx.screenshot("session.png")
    return f"raw-client exit {done.returncode}; session {id_} failed, {ctx.text_of(line.find_element(By.TAG_NAME, 'code'))!r}"


def pipelining_diff(ctx):
    """The same message without and with --pipelining: the diff shows the grouping."""
    same = ["--subject", "pipelining diff", "--body", "The same message twice.",
            "--date", "Tue, 01 Dec 2026 12:00:00 +0000", "--message-id", "pipelining@web-test.example"]
    ctx.send("raw-client", *same)
    ctx.send("raw-client", *same, "--pipelining")
    # A message names its session once the session has ended, just after the client exited.
    with_session = lambda: [m for m in ctx.server.api("/messages?subject=pipelining%20diff")["messages"]
                            if m.get("session")]
    found = poll(lambda: len(with_session()) == 2) and with_session()
    if len(found or []) != 2:
        raise Fail(f"expected two stored messages with their sessions, found {len(found or [])}")
    plain, pipelined = found[1]["session"], found[0]["session"]  # newest first
    ctx.open("#/sessions")
    for id_ in (plain, pipelined):
        ctx.wait(lambda d: ctx.css(f'tr.session[data-id="{id_}"] input.pick'), f"session {id_}'s pick box")
        ctx.css(f'tr.session[data-id="{id_}"] input.pick')[0].click()
    button = ctx.driver.find_element(By.ID, "diff-picked")
    ctx.wait(lambda d: button.is_enabled(), "#diff-picked to be enabled")
    button.click()
    ctx.wait(lambda d: d.current_url.endswith(f"#/diff?a={plain}&b={pipelined}"), "the diff route of the two sessions")
    verdict = ctx.wait(lambda d: re.fullmatch(r"\d+ lines differ", d.find_element(By.ID, "diff-verdict").text)
                       and d.find_element(By.ID, "diff-verdict").text, "#diff-verdict to say lines differ")
    rows = ctx.css("#diff tr.diff-row")
    changed = [r for r in rows if "equal" not in r.get_attribute("class").split()]
    if not changed:
        raise Fail("no diff row other than equal ones")
    cells = lambda side: [ctx.text_of(c) for c in ctx.css(f"#diff tr.diff-row td.{side}")]
    left, right = cells("left"), cells("right")
    for side, texts in (("left", left), ("right", right)):
        if not any("MAIL FROM" in t for t in texts):
            raise Fail(f"MAIL FROM is not on the {side} side of the diff")
    # The grouping: the server marks each line the pipelining client sent before the reply
    # to the line before it (MAIL, RCPT and DATA after AUTH, QUIT after the data).
    marked = [r for r in changed if ctx.text_of(r.find_element(By.CSS_SELECTOR, "td.right")).startswith("-- pipelined")]
    if not marked:
        raise Fail("no row on the right marks a pipelined line: the diff does not show the grouping")
    if any(t.startswith("-- pipelined") for t in left):
        raise Fail("the session without --pipelining has lines marked pipelined")
    ctx.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", marked[0])
    ctx.screenshot("diff.png")
    return f"sessions {plain} vs {pipelined}: {verdict!r}, {len(marked)} lines marked pipelined on the right only"


def fault_in_ui(ctx):
    """A fault typed into the faults page makes the next send fail; clearing it heals it."""
    fault = "reject-rcpt=blocked@example.com"
    ctx.open("#/faults")
    box = ctx.driver.find_element(By.ID, "fault-input")
    box.clear()
    box.send_keys(fault)
    ctx.driver.find_element(By.ID, "fault-add").click()
    ctx.wait(lambda d: ctx.css(f'li.fault[data-fault="{fault}"]'), "li.fault for the new fault")
    ctx.screenshot("faults.png")
    refused = ctx.client("raw-client", "--subject", "blocked", "--body", "x", to="blocked@example.com")
    if refused.returncode == 0:
        raise Fail("the send to blocked@example.com succeeded with the fault set")
    if "550" not in refused.stderr:
        raise Fail(f"raw-client failed (exit {refused.returncode}) without a 550 on standard error: {last_line(refused.stderr)}")
    ctx.driver.find_element(By.ID, "fault-clear").click()
    ctx.wait(lambda d: not ctx.css("li.fault") and d.find_element(By.ID, "fault-empty").is_displayed(),
             "the fault list to be empty after #fault-clear")
    ctx.send("raw-client", "--subject", "unblocked", "--body", "x", to="blocked@example.com")
    return f"with the fault: exit {refused.returncode}, 550 on stderr; cleared: sent"


def phone(ctx):
    """The inbox at phone width: no page-wide horizontal scrolling (tables scroll inside)."""
    try:
        ctx.viewport(PHONE_WIDTH, SIZE[1])
        ctx.open("#/")
        ctx.wait(lambda d: ctx.css("#inbox tr.message"), "the inbox rows")
        width = ctx.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        ctx.screenshot("inbox-phone.png")
    finally:
        ctx.viewport(*SIZE)
    if width[0] > width[1]:
        raise Fail(f"the page is {width[0]} px wide in a {width[1]} px window: it scrolls sideways")
    return f"page {width[0]} px wide in a {width[1]} px window"


SCREENSHOTS = ["inbox.png", "message.png", "session.png", "diff.png", "faults.png", "inbox-phone.png"]


def screenshots(ctx):
    sizes = []
    for name in SCREENSHOTS:
        path = os.path.join(ctx.out, name)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            raise Fail(f"{name} is missing or empty")
        width, height = png_size(path)
        sizes.append(f"{name} {width}x{height}")
    return ", ".join(sizes)


CHECKS = [
    ("control: the detectors see a script that runs", detectors),
    ("live inbox: raw-client (STARTTLS, AUTH)", lambda ctx: live(ctx, "raw-client")),
    ("live inbox: lib-client (STARTTLS, AUTH)", lambda ctx: live(ctx, "lib-client")),
    ("message view: text, HTML in a sandboxed iframe", message_view),
    ("hostile message executes nothing", hostile),
    ("sessions: failed AUTH session with its 535", failed_auth),
    ("diff: raw-client without and with --pipelining", pipelining_diff),
    ("faults: set in the UI, the next send fails", fault_in_ui),
    ("inbox at phone width (390 px)", phone),
    ("screenshots saved under target/web-test/", screenshots),
]


def run_check(ctx, name, check):
    started = time.monotonic()
    try:
        note = check(ctx)
        result = (True, note or "")
    except Fail as error:
        result = (False, str(error))
    except UnexpectedAlertPresentException as error:
        result = (False, f"an alert opened ({error.alert_text!r}): a script ran")
    except (WebDriverException, OSError, smtplib.SMTPException, ssl.SSLError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        result = (False, f"{type(error).__name__}: {first}")
    finally:
        try:
            ctx.driver.switch_to.default_content()
        except WebDriverException:
            pass
    seconds = time.monotonic() - started
    print(("PASS  " if result[0] else "FAIL  ") + f"{name} ({seconds:.1f} s): {result[1]}", flush=True)
    return name, result


def table(rows):
    cell = lambda text: text.replace("|", "\\|").replace("\n", " ")
    out = ["| Check | Result |", "|---|---|"]
    for name, (ok, note) in rows:
        result = ("PASS" + (f" ({cell(note)})" if note else "")) if ok else f"**FAIL**: {cell(note)}"
        out.append(f"| {cell(name)} | {result} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binaries", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--chromedriver", required=True)
    args = parser.parse_args()
    started = time.monotonic()

    run_dir = os.path.join(args.out, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    for name in SCREENSHOTS:
        if os.path.exists(os.path.join(args.out, name)):
            os.remove(os.path.join(args.out, name))

    rows = []
    canary = server = driver = None
    profile_dir = tempfile.mkdtemp(prefix="web-test-chromium-")
    try:
        try:
            canary = Canary()
            server = TestServer(os.path.join(args.binaries, "test-server"), run_dir)
            driver = start_browser(args.chromium, args.chromedriver, run_dir, profile_dir)
        except (Fail, OSError, WebDriverException) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            rows.append(("setup: canary, test-server --http, Chromium", (False, first)))
            print(f"FAIL  setup: {first}", flush=True)
        else:
            version = driver.capabilities.get("browserVersion", "?")
            print(f"web-test: test-server SMTP {server.smtp}, web {server.http}/, canary port "
                  f"{canary.port}, Chromium {version}", flush=True)
            ctx = Ctx(args, server, canary, driver, run_dir)
            ctx.viewport(*SIZE)
            for name, check in CHECKS:
                rows.append(run_check(ctx, name, check))
    finally:
        if driver is not None:
            try:
                driver.quit()
            except WebDriverException:
                pass
        if server is not None:
            server.stop()
        if canary is not None:
            canary.stop()
        shutil.rmtree(profile_dir, ignore_errors=True)

    failed = sum(1 for _, (ok, _) in rows if not ok)
    print()
    print(table(rows))
    print()
    print(f"Run time: {time.monotonic() - started:.0f} s; screenshots in {os.path.relpath(args.out)}/, "
          f"store and logs in {os.path.relpath(run_dir)}/")
    print(f"web-test: {len(rows) - failed} passed, {failed} failed")
    return 0 if failed == 0 and rows else 1


if __name__ == "__main__":
    sys.exit(main())
