import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * A throw-away PKI for the fake API server, made with openssl at test time:
 * a CA (what clients trust, as a kubeconfig's certificate-authority-data) and
 * a server certificate it signed for the fake's addresses. Go's TLS stack
 * (kubectl) is strict, so the CA carries CA:TRUE/keyCertSign and the leaf
 * carries serverAuth and a subjectAltName for every address.
 */

/** PEMs of the CA and of the server's key pair. */
export interface FakePki {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Make a CA and a server certificate valid for `hosts` (IP addresses or DNS names). */
export function makePki(hosts: readonly string[]): FakePki {
  const dir = mkdtempSync(join(tmpdir(), 'lbsync-fake-k8s-pki-'));
  const f = (name: string): string => join(dir, name);
  try {
    const run = (args: string[]): void => {
      execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    };
    run([
      'req',
      '-x509',
      ...EC,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=lbsync-fake-kubernetes-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    run([
      'req',
      ...EC,
      '-keyout',
      f('server.key'),
      '-out',
      f('server.csr'),
      '-subj',
      '/CN=kube-apiserver',
    ]);
    const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    writeFileSync(
      f('ext.cnf'),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        `subjectAltName=${san}`,
        '',
      ].join('\n'),
    );
    run([
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f('server.pem'),
      '-days',
      '1',
      '-extfile',
      f('ext.cnf'),
    ]);
    return {
      caPem: readFileSync(f('ca.pem'), 'utf8'),
      certPem: readFileSync(f('server.pem'), 'utf8'),
      keyPem: readFileSync(f('server.key'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
