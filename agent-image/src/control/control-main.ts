import { controlMain } from './control-client.js';

// The bundle control.mjs: one request, one reply line, exit 0 when ok.
controlMain(process.argv, process.env).then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stdout.write(
      `${JSON.stringify({ ok: false, message: `control failed: ${error.message}`.slice(0, 500) })}\n`,
    );
    process.exit(1);
  },
);
