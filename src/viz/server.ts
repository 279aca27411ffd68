import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where `npm run build` puts the viewer (Vite): dist-web/ at the package root. */
export function defaultAssetsDir(): string {
  // src/viz/server.ts and dist/viz/server.js are both two levels below the package root.
  return fileURLToPath(new URL('../../dist-web/', import.meta.url));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.mmd': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
};

/** Is this a loopback address or name (what the viewer binds to unless told otherwise)? */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

export interface ViewServerOptions {
  /** The run directory (`rapsim run --out DIR`). */
  dir: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Bind address; the CLI refuses non-loopback ones unless `--host` was given. */
  host: string;
  /** The built web page (dist-web/). */
  assetsDir?: string;
}

export interface ViewServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * Resolves a URL path inside `root`, or undefined when it would leave it: no `..` segment, no
 * backslash, no NUL, no encoded separator tricks, and the real path (symlinks followed) must
 * still be inside the real root. Only regular files are served.
 */
export function safeFile(root: string, urlPath: string): string | undefined {
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (rel.includes('\0') || rel.includes('\\')) return undefined;
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.startsWith('..'))) return undefined;
  const realRoot = realpathSync(root);
  const candidate = resolve(realRoot, ...parts);
  if (candidate !== realRoot && !candidate.startsWith(realRoot + sep)) return undefined;
  if (!existsSync(candidate)) return undefined;
  const real = realpathSync(candidate);
  if (!real.startsWith(realRoot + sep)) return undefined;
  return statSync(real).isFile() ? real : undefined;
}

/**
 * The viewer's HTTP server: the page's assets at `/`, the run directory's files at `/run/…`,
 * nothing else. GET and HEAD only; requests whose Host header is not the address it listens on
 * (DNS rebinding) are refused when bound to loopback.
 */
export function startViewServer(o: ViewServerOptions): Promise<ViewServer> {
  const assets = o.assetsDir ?? defaultAssetsDir();
  const runDir = resolve(o.dir);
  const loopback = isLoopback(o.host);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (code: number, text: string): void => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(405, 'method not allowed');
      return;
    }
    const hostHeader = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (loopback && !isLoopback(hostHeader)) {
      send(403, 'forbidden host');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
    let file: string | undefined;
    if (path === '/run' || path.startsWith('/run/')) file = safeFile(runDir, path.slice(4));
    else file = safeFile(assets, path === '/' ? '/index.html' : path);
    if (!file) {
      send(404, 'not found');
      return;
    }
    const size = statSync(file).size;
    res.writeHead(200, {
      'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  };
  const server = createServer((req, res) => {
    try {
      handler(req, res);
    } catch {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('internal error\n');
    }
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : o.port;
      const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
      resolvePromise({
        url: `http://${shown}:${port}/`,
        port,
        server,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** The file the page needs in a run directory. */
export const TIMELINE_FILE = 'timeline.json';

/** Does `dir` look like a run directory the viewer can show? */
export function hasTimeline(dir: string): boolean {
  return existsSync(join(dir, TIMELINE_FILE));
}
