import type { OfferableLimits } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import si from 'systeminformation';

/**
 * What a person may offer: the engine's figures bound the sliders (on Docker Desktop they are the VM's, not the
 * host's), and the host's are shown beside them. `docker` is null when the engine does not answer.
 */
export async function offerableLimits(docker: Dockerode, timeoutMs = 5000): Promise<OfferableLimits> {
  const [info, cpu, mem] = await Promise.all([
    // dockerode takes an abortSignal here; its typings do not say so.
    (
      docker as unknown as {
        info(options: { abortSignal: AbortSignal }): Promise<{ NCPU?: number; MemTotal?: number }>;
      }
    )
      .info({ abortSignal: AbortSignal.timeout(timeoutMs) })
      .catch(() => null),
    si.cpu(),
    si.mem(),
  ]);
  const model = `${cpu.manufacturer} ${cpu.brand}`.replace(/\s+/g, ' ').trim();
  return {
    docker:
      info !== null && typeof info.NCPU === 'number' && typeof info.MemTotal === 'number'
        ? { cpus: info.NCPU, memoryBytes: info.MemTotal }
        : null,
    host: { cpus: cpu.cores, memoryBytes: mem.total, model: model === '' ? 'unknown CPU' : model },
  };
}
