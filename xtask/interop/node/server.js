// A Node.js SMTP server built on the `smtp-server` package, for `cargo xtask interop`.
//
// Three listeners on 127.0.0.1, all with AUTH required before MAIL and offered only under
// TLS (allowInsecureAuth: false), PIPELINING, 8BITMIME and SMTPUTF8 advertised:
//
//   --port         STARTTLS (RFC 3207), AUTH PLAIN, LOGIN and XOAUTH2 (--token)
//   --secure-port  implicit TLS from the first byte (RFC 8314), AUTH PLAIN, LOGIN and XOAUTH2
//   --login-port   STARTTLS, AUTH LOGIN only
//
// Every accepted message is saved in --store as NNNNNN.json (the envelope and session as
// smtp-server saw them) and then NNNNNN.eml: the message bytes from the onData stream, which
// smtp-server has dot-unstuffed and stripped of the final ".". The .eml is written to a
// temporary name and renamed, so a visible .eml always has its .json. Runs until killed.

'use strict';

const fs = require('fs');
const path = require('path');
const { SMTPServer } = require('smtp-server');

function parseArgs(argv) {
    const args = {};
    for (let i = 0; i < argv.length; i += 2) {
        if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
            throw new Error(`bad argument ${argv[i]}`);
        }
        args[argv[i].slice(2)] = argv[i + 1];
    }
    for (const name of ['port', 'secure-port', 'login-port', 'cert', 'key', 'store', 'user', 'password', 'token']) {
        if (!(name in args)) {
            throw new Error(`missing --${name}`);
        }
    }
    return args;
}

const args = parseArgs(process.argv.slice(2));
const key = fs.readFileSync(args.key);
const cert = fs.readFileSync(args.cert);
let counter = 0;

function save(raw, meta) {
    counter += 1;
    const base = path.join(args.store, String(counter).padStart(6, '0'));
    fs.writeFileSync(`${base}.json`, JSON.stringify(meta, null, 2));
    fs.writeFileSync(`${base}.eml.tmp`, raw);
    fs.renameSync(`${base}.eml.tmp`, `${base}.eml`);
}

function listener(name, port, extra) {
    const server = new SMTPServer({
        name: 'smtp-server.interop.localhost',
        key,
        cert,
        authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
        allowInsecureAuth: false,
        size: 10 * 1024 * 1024,
        ...extra,
        onAuth(auth, session, callback) {
            if (auth.method === 'XOAUTH2') {
                if (auth.username === args.user && auth.accessToken === args.token) {
                    callback(null, { user: auth.username });
                } else {
                    // smtp-server sends this as the base64 JSON status of a 334.
                    callback(null, {
                        data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
                    });
                }
                return;
            }
            if (auth.username === args.user && auth.password === args.password) {
                callback(null, { user: auth.username });
            } else {
                callback(new Error('Invalid username or password'));
            }
        },
        onData(stream, session, callback) {
            const chunks = [];
            stream.on('data', (chunk) => chunks.push(chunk));
            stream.on('end', () => {
                try {
                    const envelope = session.envelope;
                    save(Buffer.concat(chunks), {
                        listener: name,
                        mail_from: envelope.mailFrom ? envelope.mailFrom.address : null,
                        mail_args: envelope.mailFrom ? envelope.mailFrom.args : null,
                        rcpt_to: envelope.rcptTo.map((rcpt) => rcpt.address),
                        body_type: envelope.bodyType || null,
                        smtp_utf8: !!envelope.smtpUtf8,
                        auth_user: session.user || null,
                        tls: !!session.secure,
                        transmission_type: session.transmissionType,
                        helo: session.hostNameAppearsAs,
                    });
                    callback(null, 'Message stored');
                } catch (error) {
                    callback(error);
                }
            });
        },
    });
    server.on('error', (error) => {
        console.error(`${name}: ${error.message}`);
    });
    return new Promise((resolve) => server.listen(Number(port), '127.0.0.1', () => resolve(server)));
}

Promise.all([
    listener('starttls', args.port, {}),
    listener('implicit', args['secure-port'], { secure: true }),
    listener('login-only', args['login-port'], { authMethods: ['LOGIN'] }),
]).then(() => {
    console.log(`smtp-server listening on 127.0.0.1:${args.port} (STARTTLS), ` +
        `${args['secure-port']} (implicit TLS), ${args['login-port']} (STARTTLS, LOGIN only)`);
});
