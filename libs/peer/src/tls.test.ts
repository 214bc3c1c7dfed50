import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { FrameKind } from './frame.js';
import type { PeerNode, PeerTls } from './node.js';
import { startNodes } from './test-nodes.js';

const folder = mkdtempSync(join(tmpdir(), 'grove-peer-tls-'));
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: folder, stdio: 'pipe' });

/** A CA, and a certificate it signed for 127.0.0.1 under `name`. */
function authority(name: string): PeerTls {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name} CA`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.pem`,
  );
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  writeFileSync(join(folder, `${name}.ext`), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${name}-ca.pem`,
    '-CAkey',
    `${name}-ca.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  const read = (file: string) => readFileSync(join(folder, file));
  return { cert: read(`${name}.pem`), key: read(`${name}.key`), ca: read(`${name}-ca.pem`) };
}

const nodes: PeerNode[] = [];
after(async () => {
  await Promise.all(nodes.map((node) => node.close()));
});

describe('peer links over mutual TLS', () => {
  it('link replicas whose certificates the group CA signed, and refuse anyone else', async () => {
    const group = authority('group');
    const logs: string[] = [];
    const [a, b] = await startNodes(2, { tls: group, refusalLogIntervalMs: 1, log: (line) => logs.push(line) });
    nodes.push(a, b);
    assert.match(a.url as string, /^wss:\/\/127\.0\.0\.1:\d+\/peer$/);
    const position = { epoch: 1, round: 1, attempt: 0, kind: FrameKind.meta } as const;
    await b.send(0, { ...position, codec: 0, tensor: 'meta', shard: 0, shards: 1, elements: 0 }, Uint8Array.of(5));
    assert.deepEqual((await a.receive(1, position, 2_000)).payload, Uint8Array.of(5));

    // A client with no certificate, or one another CA signed, never reaches the upgrade.
    const stranger = authority('stranger');
    for (const options of [{ ca: group.ca }, { ...stranger, ca: group.ca }]) {
      const outcome = await new Promise<string>((resolve) => {
        const ws = new WebSocket(a.url as string, { ...options, headers: { 'x-grove-peer': '1' } });
        ws.once('open', () => resolve('open'));
        ws.once('error', (error) => resolve(error.message));
        ws.once('unexpected-response', () => resolve('http'));
      });
      assert.notEqual(outcome, 'open');
      assert.notEqual(outcome, 'http');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(
      logs.some((line) => /refused a peer connection from .*: TLS: /.test(line)),
      logs.join('\n'),
    );
  });
});
