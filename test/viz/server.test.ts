import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { viewCommand } from '../../src/cli/viewCommand.js';
import { isLoopback, safeFile, startViewServer, type ViewServer } from '../../src/viz/server.js';
import { tempDir } from '../helpers/cli.js';

/** A raw request: the path goes out exactly as written (fetch would normalise `..`). */
function get(
  port: number,
  path: string,
  o: { method?: string; host?: string } = {},
): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        headers: { host: o.host ?? `127.0.0.1:${port}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let root: string;
let server: ViewServer;

beforeAll(async () => {
  root = tempDir('rapsim-view-');
  const assets = join(root, 'assets');
  const run = join(root, 'run');
  mkdirSync(join(assets, 'assets'), { recursive: true });
  mkdirSync(join(run, 'sub'), { recursive: true });
  writeFileSync(join(assets, 'index.html'), '<!doctype html><title>viewer</title>');
  writeFileSync(join(assets, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(run, 'timeline.json'), '{"format":"rapsim-timeline"}');
  writeFileSync(join(run, 'sub', 'x.txt'), 'inner');
  writeFileSync(join(root, 'secret.txt'), 'SECRET');
  // A symlink inside the run directory that points out of it.
  symlinkSync(join(root, 'secret.txt'), join(run, 'leak.txt'));
  server = await startViewServer({ dir: run, port: 0, host: '127.0.0.1', assetsDir: assets });
});

afterAll(async () => {
  await server?.close();
});

describe('rapsim view server', () => {
  it('listens on 127.0.0.1 and serves the page and the run directory', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(server.port, '/');
    expect(page.status).toBe(200);
    expect(page.type).toContain('text/html');
    expect((await get(server.port, '/assets/app.js')).type).toContain('text/javascript');
    const tl = await get(server.port, '/run/timeline.json');
    expect(tl.status).toBe(200);
    expect(tl.type).toContain('application/json');
    expect((await get(server.port, '/run/sub/x.txt')).body).toBe('inner');
    expect((await get(server.port, '/run/timeline.json?x=1')).status).toBe(200);
    expect((await get(server.port, '/run/timeline.json', { method: 'HEAD' })).status).toBe(200);
  });

  it('never serves a file outside its assets and the run directory', async () => {
    const attempts = [
      '/../secret.txt',
      '/run/../secret.txt',
      '/run/../../etc/passwd',
      '/run/%2e%2e/secret.txt',
      '/run/%2E%2E%2Fsecret.txt',
      '/run/..%2fsecret.txt',
      '/run/..%5csecret.txt',
      '/run/%2e%2e%5csecret.txt',
      '/run/sub/../../secret.txt',
      '/run/leak.txt',
      '/run/%00timeline.json',
      '/run/%zz',
      '//etc/passwd',
      '/run//etc/passwd',
      '/run/',
      '/run/sub',
      '/assets/../../secret.txt',
      '/nope.html',
    ];
    for (const path of attempts) {
      const r = await get(server.port, path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toContain('SECRET');
      expect(r.body, path).not.toContain('root:');
    }
  });

  it('answers GET and HEAD only, and refuses foreign Host headers (DNS rebinding)', async () => {
    expect((await get(server.port, '/', { method: 'POST' })).status).toBe(405);
    expect((await get(server.port, '/', { method: 'PUT' })).status).toBe(405);
    expect((await get(server.port, '/', { host: 'evil.example:80' })).status).toBe(403);
    expect((await get(server.port, '/', { host: `localhost:${server.port}` })).status).toBe(200);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])
      expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '10.0.0.1', '192.168.1.1', '::', 'example.com', ''])
      expect(isLoopback(h), h).toBe(false);
  });

  it('resolves paths inside the root only', () => {
    const run = join(root, 'run');
    expect(safeFile(run, '/timeline.json')).toBe(join(run, 'timeline.json'));
    expect(safeFile(run, '/../secret.txt')).toBeUndefined();
    expect(safeFile(run, '/leak.txt')).toBeUndefined();
  });
});

describe('rapsim view command', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: {
        out: { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream,
        err: { write: (s: string) => err.push(s) } as unknown as NodeJS.WritableStream,
      },
    };
  };

  it('refuses a directory without a run, and a bad port (exit 2)', async () => {
    const a = io();
    expect(await viewCommand(join(root, 'assets'), {}, a.io, Promise.resolve())).toBe(2);
    expect(a.err.join('')).toContain('expected a run directory with timeline.json');
    expect(a.err.join('')).not.toContain('sweep');
    // A sweep's --out directory: told how to view one of its runs.
    const sweepDir = join(root, 'sweep-out');
    mkdirSync(sweepDir, { recursive: true });
    writeFileSync(join(sweepDir, 'sweep.json'), '{}');
    const s = io();
    expect(await viewCommand(sweepDir, {}, s.io, Promise.resolve())).toBe(2);
    expect(s.err.join('')).toContain(
      'It holds a sweep (sweep.json): run one of its replay commands with --out DIR',
    );
    const b = io();
    expect(await viewCommand(join(root, 'missing'), {}, b.io, Promise.resolve())).toBe(2);
    const c = io();
    expect(await viewCommand(join(root, 'run'), { port: '99999' }, c.io, Promise.resolve())).toBe(2);
    expect(c.err.join('')).toContain('--port: expected an integer from 0 to 65535');
  });
});
