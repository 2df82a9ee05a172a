/** Ports for servers a test starts. */
import {createServer, type AddressInfo} from 'node:net';

/** A TCP port on 127.0.0.1 with nothing listening on it (free for a server started right after). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
