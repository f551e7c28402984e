// Real processes on 127.0.0.1 for the scale-out tests: redis-server, three `fury serve` replicas of the shipped tiny
// 2Mamba model (CPU backend) sharing state snapshots through it, and HAProxy with the repository's own configuration
// (deploy/haproxy/haproxy.cfg) in front. `.ci/run` installs redis-server and haproxy (Debian's packages); a machine
// without them fails here with how to install them, it does not skip.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '../server/harness.js';

export { until };

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const MODEL = 'fury-2mamba-tiny';
export const HAPROXY_CFG = join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg');

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function requireTool(name: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0)
    throw new Error(`${name} is not installed: apt-get install redis-server haproxy (.ci/run does)`);
}

/** A child process with its output kept (printed when a test fails) and its exit awaited. */
export class Proc {
  log = '';
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d) => (this.log += d));
    child.stderr?.on('data', (d) => (this.log += d));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  kill(sig: NodeJS.Signals = 'SIGTERM'): void {
    if (this.alive) this.child.kill(sig);
  }
}

function start(name: string, cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  return new Proc(
    name,
    spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
}

/** redis-server on 127.0.0.1:port, a cache only (nothing saved). */
export function redisServer(port: number): Proc {
  return start('redis', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
}

export const redisReady = (p: Proc) =>
  until(() => /Ready to accept connections/.test(p.log), 10_000, `${p.name} to accept connections`);

const status = (url: string) =>
  fetch(url, { headers: { host: 'localhost' } }).then(
    (r) => r.status,
    () => 0,
  );

export class Cluster {
  redis!: Proc;
  haproxy!: Proc;
  readonly replicas: Proc[] = [];
  readonly ports: number[] = [];
  redisPort = 0;
  lbPort = 0;

  get url(): string {
    return `http://127.0.0.1:${this.lbPort}`;
  }
  replicaUrl(i: number): string {
    return `http://127.0.0.1:${this.ports[i]}`;
  }

  static async start(n = 3): Promise<Cluster> {
    for (const t of ['redis-server', 'haproxy']) requireTool(t);
    const c = new Cluster();
    c.redisPort = await freePort();
    c.lbPort = await freePort();
    for (let i = 0; i < n; i++) c.ports.push(await freePort());
    c.startRedis();
    await redisReady(c.redis);
    for (let i = 0; i < n; i++) c.replicas.push(c.startReplica(i));
    await Promise.all(c.replicas.map((_, i) => c.ready(i)));
    const env: Record<string, string> = { FURY_LB_BIND: `127.0.0.1:${c.lbPort}` };
    c.ports.forEach((p, i) => (env[`FURY_REPLICA_${i + 1}`] = `127.0.0.1:${p}`));
    c.haproxy = start('haproxy', 'haproxy', ['-db', '-f', HAPROXY_CFG], env);
    await until(async () => (await status(`${c.url}/health`)) === 200, 10_000, 'haproxy');
    return c;
  }

  startRedis(): void {
    this.redis = redisServer(this.redisPort);
  }

  startReplica(i: number): Proc {
    const cli = join(ROOT, 'dist', 'cli', 'fury.js');
    // replica names r1…r3 match the server names in haproxy.cfg
    return start(`r${i + 1}`, process.execPath, [
      cli,
      'serve',
      '--model',
      join(ROOT, 'models', MODEL),
      '--backend',
      'cpu',
      '--port',
      String(this.ports[i]),
      '--replica-name',
      `r${i + 1}`,
      '--overload-status',
      '503',
      '--state-cache-redis',
      `redis://127.0.0.1:${this.redisPort}`,
      // a lookup may wait this long: on a 2-core CI machine running three replicas, Redis and the balancer, reading
      // back a 10.8 MB snapshot takes far longer than the 250 ms default allows on a real host
      '--state-cache-redis-timeout',
      '3000',
      '--drain-timeout',
      '30',
    ]);
  }

  /** Wait until replica i answers /health with 200. */
  ready(i: number): Promise<void> {
    return until(async () => (await status(`${this.replicaUrl(i)}/health`)) === 200, 60_000, `replica r${i + 1}`);
  }

  /** Start replica i again (after a kill) and wait until HAProxy routes to it (two good checks: ≤ 3 s). */
  async restart(i: number): Promise<void> {
    await this.replicas[i]!.exited;
    this.replicas[i] = this.startReplica(i);
    await this.ready(i);
    await new Promise((r) => setTimeout(r, 3000));
  }

  /** Every process's output, for a failing test's message. */
  logs(): string {
    return [this.redis, ...this.replicas, this.haproxy]
      .filter(Boolean)
      .map((p) => {
        // health changes, warnings and errors in full, then the last lines
        const lines = p.log.split('\n'),
          notable = lines
            // and a chat request routed by least connections (its session key not read) or retried
            .filter((l) =>
              /is (DOWN|UP)|WARN|"error":"|redis|"level":[4-6]|fury_replicas\/\S+ .*chat|\s[-\w]{4}\s\d+\/\d+\/\d+\/\d+\/\+?[1-9]/i.test(
                l,
              ),
            )
            .slice(-60);
        return `--- ${p.name}\n${notable.join('\n')}\n…\n${lines.slice(-15).join('\n')}`;
      })
      .join('\n');
  }

  async stop(): Promise<void> {
    const all = [this.haproxy, ...this.replicas, this.redis].filter(Boolean);
    for (const p of all) p.kill('SIGKILL');
    await Promise.all(all.map((p) => p.exited));
  }
}
