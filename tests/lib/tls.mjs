// A self-signed certificate for 127.0.0.1 made at test time by the openssl CLI, the
// SPKI hash Chromium's --ignore-certificate-errors-spki-list takes, and a small HTTP/2
// client (node:http2) that trusts only that certificate.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Makes an EC P-256 certificate valid for 127.0.0.1 and localhost, 2 days.
 * @returns {{dir: string, cert: string, key: string, pem: string, spki: string, remove: () => void}}
 */
export function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-addext', 'basicConstraints=critical,CA:FALSE',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the openssl CLI makes the test certificate (Debian: apt-get install openssl): ${e.message}`);
  }
  const pem = readFileSync(cert, 'utf8');
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  const spki = createHash('sha256').update(der).digest('base64');
  return { dir, cert, key, pem, spki, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * One HTTP/2 connection to `base` trusting `pem` only. `request` resolves with the
 * JSON body of a 2xx answer and throws with the body otherwise.
 */
export function h2Client(base, pem) {
  const session = http2.connect(base, { ca: pem });
  session.on('error', () => {});
  const request = (method, path, { body, token } = {}) => new Promise((resolve, reject) => {
    const headers = { ':method': method, ':path': path, 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const req = session.request(headers);
    let status = 0;
    let text = '';
    req.setEncoding('utf8');
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (c) => { text += c; });
    req.on('error', reject);
    req.on('end', () => {
      if (status >= 200 && status < 300) resolve(text ? JSON.parse(text) : null);
      else reject(new Error(`${method} ${path} → ${status}: ${text}`));
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
  const close = () => new Promise((resolve) => {
    if (session.closed || session.destroyed) resolve();
    else session.close(resolve);
  });
  return { session, request, close };
}
