/**
 * How long the status endpoint takes to answer, measured inside the server (from the parsed request to the last
 * byte handed to the socket). Kept as plain bucket counts so timing costs nothing when nobody scrapes /metrics;
 * metrics.ts hands them to prom-client as the histogram `ray_agent_status_request_duration_seconds`.
 */
export const STATUS_DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1] as const;

export class RequestDurations {
  /** Cumulative counts per upper bound, as Prometheus wants them (`le`); the last one is +Inf. */
  readonly counts = new Array<number>(STATUS_DURATION_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count += 1;
    for (let i = 0; i < STATUS_DURATION_BUCKETS.length; i += 1)
      if (seconds <= (STATUS_DURATION_BUCKETS[i] as number)) this.counts[i] = (this.counts[i] as number) + 1;
    this.counts[STATUS_DURATION_BUCKETS.length] = this.count;
  }
}
