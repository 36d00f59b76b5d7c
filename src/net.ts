// TCP probes shared by the dev server, the local deployer, the local stack and the tests.
import { createConnection, createServer, type AddressInfo } from 'node:net';

/** Ports this process has handed out: the kernel may offer a closed one again before its taker binds it. */
const handedOut = new Set<number>();

/**
 * A TCP port nothing listens on right now (the kernel's choice; another process may take it later),
 * never one this process handed out before, so ports asked for one after another are distinct.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, host, () => {
        const { port: chosen } = server.address() as AddressInfo;
        server.close(() => resolve(chosen));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * Whether a TCP connection to the target (host and port, or a unix socket path) succeeds within the
 * timeout. `timeoutMeans` says what a silent target counts as: a port held by a hung process is still taken.
 */
export function canConnect(target: string | { host: string; port: number }, options: { timeoutMs?: number; timeoutMeans?: boolean } = {}): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = typeof target === 'string' ? createConnection(target) : createConnection(target);
    const settle = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(options.timeoutMs ?? 500);
    socket.once('connect', () => settle(true));
    socket.once('timeout', () => settle(options.timeoutMeans ?? false));
    socket.once('error', () => settle(false));
  });
}
