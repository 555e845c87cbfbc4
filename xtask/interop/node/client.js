// Nodemailer as a client of our test-server, for `cargo xtask interop`.
//
// Usage: node client.js SPEC.json
//
// SPEC: { host, port, secure, requireTLS, ca (PEM file), user, password, authMethod,
//         from, to: [..], cc: [..], bcc: [..], subject, text, attachments: [file, ..],
//         raw (a file sent as the whole message, with an explicit envelope) }
//
// Prints Nodemailer's info object as JSON and exits 0, or prints the error and exits 1.

'use strict';

const fs = require('fs');
const path = require('path');
const nodemailer = require('nodemailer');

async function main() {
    const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const transport = nodemailer.createTransport({
        host: spec.host,
        port: spec.port,
        secure: !!spec.secure,
        requireTLS: !!spec.requireTLS,
        tls: { ca: [fs.readFileSync(spec.ca)], servername: 'localhost' },
        auth: spec.user ? { user: spec.user, pass: spec.password } : undefined,
        authMethod: spec.authMethod || undefined,
        name: 'nodemailer.interop.localhost',
        connectionTimeout: 20000,
        greetingTimeout: 20000,
        socketTimeout: 20000,
    });
    let mail;
    if (spec.raw) {
        mail = {
            envelope: { from: spec.from, to: [...(spec.to || []), ...(spec.cc || []), ...(spec.bcc || [])] },
            raw: fs.readFileSync(spec.raw),
        };
    } else {
        mail = {
            from: spec.from,
            to: spec.to,
            cc: spec.cc,
            bcc: spec.bcc,
            subject: spec.subject,
            text: spec.text,
            attachments: (spec.attachments || []).map((file) => ({ filename: path.basename(file), path: file })),
        };
    }
    const info = await transport.sendMail(mail);
    console.log(JSON.stringify(info));
}

main().catch((error) => {
    console.error(`nodemailer: ${error.stack || error}`);
    process.exit(1);
});
