// Docker HEALTHCHECK: healthy while the agent's status endpoint answers and the agent is not stuck in error.
import { request } from 'node:http';

const port = Number(process.env.STATUS_PORT ?? 8765);
const req = request(
  { host: '127.0.0.1', port, path: '/healthz', timeout: 4000, headers: { host: `127.0.0.1:${port}` } },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
req.end();
