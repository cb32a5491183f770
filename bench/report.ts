// Regenerates docs/BENCHMARKS.md and docs/bench-throughput.png from the raw results (bench/results/*.json).
//   npx tsx bench/report.ts [--results DIR] [--docs DIR]
// The hand-written part (what limits a missed goal and what would fix it) lives in bench/ANALYSIS.md and is
// copied in as it is: it speaks of one run, and says which.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { overlayDetail, overlayFigures } from './lib/overlay-summary.js';
import { chartSvg, renderPng } from './lib/plot.js';
import { BoincResult, ImageResult, ManagerResult, NodesResult, OverlayResult, PythonResult } from './lib/schema.js';
import { mean, median, type Summary } from './lib/stats.js';
import {
  boincFigures,
  type Figure,
  imageFigures,
  managerFigures,
  nodeFigures,
  pythonFigures,
  thousands,
  throughputSeries,
} from './lib/summary.js';
import { BENCH_DIR, log, REPO_DIR } from './lib/util.js';

export interface Results {
  nodes?: NodesResult;
  manager?: ManagerResult;
  boinc?: BoincResult;
  image?: ImageResult;
  python?: PythonResult;
  overlay?: OverlayResult;
}

/** Reads and checks every results file present in `dir`. */
export function readResults(dir: string): Results {
  const results: Results = {};
  const load = (name: string) => {
    const file = join(dir, `${name}.json`);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown) : undefined;
  };
  const nodes = load('nodes');
  if (nodes !== undefined) results.nodes = NodesResult.parse(nodes);
  const manager = load('manager');
  if (manager !== undefined) results.manager = ManagerResult.parse(manager);
  const boinc = load('boinc');
  if (boinc !== undefined) results.boinc = BoincResult.parse(boinc);
  const image = load('image');
  if (image !== undefined) results.image = ImageResult.parse(image);
  const python = load('python');
  if (python !== undefined) results.python = PythonResult.parse(python);
  const overlay = load('overlay');
  if (overlay !== undefined) results.overlay = OverlayResult.parse(overlay);
  return results;
}

/** Every figure of the table, in the issue's order. */
export function allFigures(results: Results): Figure[] {
  const figures = [
    ...(results.nodes ? nodeFigures(results.nodes, results.python) : []),
    ...(results.python ? pythonFigures(results.python) : []),
    ...(results.boinc ? boincFigures(results.boinc) : []),
    ...(results.image ? imageFigures(results.image) : []),
    ...(results.manager ? managerFigures(results.manager) : []),
    ...(results.overlay ? overlayFigures(results.overlay) : []),
  ];
  return figures.sort((a, b) => a.section.localeCompare(b.section, 'en', { numeric: true }));
}

const num = (value: number, digits?: number) => {
  if (!Number.isFinite(value)) return '–';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : Math.abs(value) >= 1 ? 2 : 3);
  const [whole, fraction] = Math.abs(value).toFixed(d).split('.');
  return `${value < 0 && Number(value.toFixed(d)) !== 0 ? '-' : ''}${thousands(Number(whole))}${fraction ? `.${fraction}` : ''}`;
};
const spread = (s: Summary) => (s.n > 1 ? ` (${num(s.min)}–${num(s.max)})` : '');

function table(figures: Figure[]): string {
  const rows = [
    '| Figure | Agent / subject: median (min–max) | Baseline (same run): median (min–max) | Ratio or difference: median (min–max) | Goal | Met? |',
    '|---|---|---|---|---|---|',
  ];
  let section = '';
  for (const f of figures) {
    if (f.section !== section) {
      section = f.section;
      rows.push(`| **${section}** | | | | | |`);
    }
    const baseline = f.baseline
      ? `${num(f.baseline.summary.median)}${spread(f.baseline.summary)} — ${f.baseline.name}`
      : '';
    const relation =
      f.difference && !f.ratio
        ? `${f.difference.median >= 0 ? '+' : ''}${num(f.difference.median)} ${f.unit}${spread(f.difference)}`
        : f.ratio
          ? `×${num(f.ratio.median, 3)} (${f.ratio.n > 1 ? `${num(f.ratio.min, 3)}–${num(f.ratio.max, 3)}` : 'n=1'})${f.difference ? `; ${f.difference.median >= 0 ? '+' : ''}${num(f.difference.median)} ${f.unit}` : ''}`
          : '';
    const met = f.met === null ? '–' : f.met ? '**yes**' : '**no**';
    rows.push(
      `| ${f.name.trim()} | ${num(f.subject.median)}${spread(f.subject)}, n=${f.subject.n} | ${baseline} | ${relation} | ${f.goal} | ${met} |`,
    );
  }
  return rows.join('\n');
}

const MiB = 1024 ** 2;

function machineSection(results: Results): string {
  const first = results.nodes ?? results.manager ?? results.image ?? results.boinc ?? results.overlay;
  if (!first) return '';
  const m = first.machine;
  const suites = [results.nodes, results.python, results.manager, results.boinc, results.image, results.overlay].filter(
    (r) => r !== undefined,
  );
  const loads = suites.flatMap((r) => r.machine.loadAverage);
  const others = Math.max(...suites.map((r) => r.machine.otherContainers));
  return [
    `- Date: ${suites.map((r) => `${r.suite} ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`).join(', ')}; profile \`${first.profile}\``,
    `- Machine: ${m.nproc} cores (${m.cpuModel}), ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB memory, ${m.os}, kernel ${m.kernel}, Docker ${m.docker}, Node.js ${m.node}`,
    `- Other work may have been running: this machine is shared with other sessions' end-to-end tests. At the suites' starts and ends the 1-minute load average was ${num(Math.min(...loads), 1)}–${num(Math.max(...loads), 1)} (the benchmark's own load included) and up to ${others} containers this benchmark did not make were running. Absolute figures are therefore lower and noisier than on a quiet machine; every figure is compared with its baseline measured in the same run, in alternating order (A B, B A, …), and the tasks' own CPU time (below) shows which repetitions met outside load.`,
  ].join('\n');
}

function computeDetail(nodes: NodesResult): string {
  const rows = [
    '| Rep. (first) | Plain: CPU tasks/s (task CPU ÷ wall) | Agent: CPU tasks/s (task CPU ÷ wall) | Ratio | Ratio of CPU time delivered | Agent CFS-throttled periods | Tiny tasks/s plain / agent |',
    '|---|---|---|---|---|---|---|',
  ];
  const sessions = nodes.data.sessions.filter((s) => s.mode === 'main' && s.compute);
  const reps = [...new Set(sessions.map((s) => s.rep))].sort((a, b) => a - b);
  for (const rep of reps) {
    const plain = sessions.find((s) => s.rep === rep && s.kind === 'plain');
    const agent = sessions.find((s) => s.rep === rep && s.kind === 'agent');
    if (!plain?.compute || !agent?.compute) continue;
    const cell = (s: typeof plain) =>
      (s.compute?.cpu ?? [])
        .map((b) => `${num(b.perSecond)} (${b.cpuOverWall === undefined ? '?' : num(b.cpuOverWall, 2)})`)
        .join(', ');
    const tp = (s: typeof plain, kind: 'cpu' | 'tiny') => mean((s.compute?.[kind] ?? []).map((b) => b.perSecond));
    const cpt = (s: typeof plain) => mean((s.compute?.cpu ?? []).map((b) => b.cpuPerTask ?? Number.NaN));
    rows.push(
      `| ${rep + 1} (${plain.position === 0 ? 'plain' : 'agent'}) | ${cell(plain)} | ${cell(agent)} | ×${num(tp(agent, 'cpu') / tp(plain, 'cpu'), 3)} | ×${num((tp(agent, 'cpu') * cpt(agent)) / (tp(plain, 'cpu') * cpt(plain)), 3)} | ${agent.compute.throttling.throttled} of ${agent.compute.throttling.periods} | ${num(tp(plain, 'tiny'))} / ${num(tp(agent, 'tiny'))} |`,
    );
  }
  return `${rows.join('\n')}\n\nA task that got a whole CPU for its wall time shows 1.00; lower means other processes (the head, the driver, other people's work) took turns on the 2 cores during that batch.`;
}

function joinTimeline(nodes: NodesResult): string {
  const messages = [
    'status endpoint listening',
    'state: connecting',
    'registered with the manager',
    'Ray node joined the cluster',
  ];
  const agents = nodes.data.sessions.filter((s) => s.kind === 'agent' && s.agentLog);
  if (!agents.length) return '';
  const first = agents.map((s) => s.agentLog?.[0]?.[0] ?? Number.NaN);
  const rows = [
    '| Agent start-up step (from its own log) | Seconds after `docker run` began: median (min–max) |',
    '|---|---|',
    `| first log line (Node.js up, config read) | ${num(median(first))} (${num(Math.min(...first))}–${num(Math.max(...first))}) |`,
  ];
  for (const message of messages) {
    const times = agents
      .map((s) => s.agentLog?.find(([, msg]) => msg.startsWith(message))?.[0])
      .filter((t): t is number => t !== undefined);
    if (times.length)
      rows.push(`| ${message} | ${num(median(times))} (${num(Math.min(...times))}–${num(Math.max(...times))}) |`);
  }
  const plain = nodes.data.sessions.filter((s) => s.kind === 'plain').map((s) => s.join.aliveSeconds);
  rows.push(
    `| (baseline) plain \`ray start --address\` until alive | ${num(median(plain))} (${num(Math.min(...plain))}–${num(Math.max(...plain))}) |`,
  );
  const probes = nodes.data.probes;
  if (probes) {
    const range = (v: number[]) => `${num(median(v))} (${num(Math.min(...v))}–${num(Math.max(...v))})`;
    rows.push(
      `| (timed alone, same image) \`python3 -c 'import platform, ray'\`, as the agent reads its versions | ${range(probes.importRaySeconds)} |`,
    );
    rows.push(
      `| (timed alone, same image) the pre-join cluster check \`cluster_info.py\` | ${range(probes.preflightSeconds)} |`,
    );
  }
  return rows.join('\n');
}

function stopTimeline(nodes: NodesResult): string {
  const rows = [
    '| Stop | Agent: SIGTERM → main process exit / all processes gone, s | Plain node, s |',
    '|---|---|---|',
  ];
  for (const mode of ['idle', 'busy'] as const) {
    const of = (kind: string) => nodes.data.sessions.filter((s) => s.kind === kind && s.stop.mode === mode);
    const agent = of('agent');
    const plain = of('plain');
    if (!agent.length) continue;
    const fmt = (list: typeof agent, key: 'mainExitSeconds' | 'allGoneSeconds') =>
      num(median(list.map((s) => s.stop[key])));
    const extra =
      mode === 'busy'
        ? ` (tasks completed: agent ${agent.map((s) => `${s.stop.busy?.completed}/${s.stop.busy?.tasks}`).join(', ')}; plain ${plain.map((s) => `${s.stop.busy?.completed}/${s.stop.busy?.tasks}`).join(', ')})`
        : '';
    rows.push(
      `| ${mode}${extra} | ${fmt(agent, 'mainExitSeconds')} / ${fmt(agent, 'allGoneSeconds')} | ${fmt(plain, 'mainExitSeconds')} / ${fmt(plain, 'allGoneSeconds')} |`,
    );
  }
  return rows.join('\n');
}

function footprintDetail(nodes: NodesResult, boinc: BoincResult | undefined): string {
  const main = nodes.data.sessions.filter((s) => s.mode === 'main' && s.footprint);
  const pick = (kind: string, get: (s: (typeof main)[number]) => number | undefined) =>
    median(
      main
        .filter((s) => s.kind === kind)
        .map(get)
        .filter((v): v is number => v !== undefined),
    );
  const rows = [
    '| Idle, medians | Agent container | Plain node |',
    '|---|---|---|',
    `| processes in the group | ${num(
      pick('agent', (s) => s.footprint?.idle.processes),
      0,
    )} | ${num(
      pick('plain', (s) => s.footprint?.idle.processes),
      0,
    )} |`,
    `| cgroup anonymous + shared memory, MiB | ${num(pick('agent', (s) => (s.footprint?.idle.cgroupAnonShmemBytes ?? 0) / MiB))} | ${num(pick('plain', (s) => (s.footprint?.idle.cgroupAnonShmemBytes ?? 0) / MiB))} |`,
    `| cgroup usage − inactive files (\`docker stats\`), MiB | ${num(pick('agent', (s) => (s.footprint?.idle.cgroupDockerStatsBytes ?? 0) / MiB))} | ${num(pick('plain', (s) => (s.footprint?.idle.cgroupDockerStatsBytes ?? 0) / MiB))} |`,
    `| sum of the processes' RSS, MiB | ${num(pick('agent', (s) => (s.footprint?.idle.processRssSumBytes ?? 0) / MiB))} | ${num(pick('plain', (s) => (s.footprint?.idle.processRssSumBytes ?? 0) / MiB))} |`,
    `| sum of the processes' PSS, MiB | ${num(pick('agent', (s) => (s.footprint?.idle.processPssSumBytes ?? 0) / MiB))} | ${num(pick('plain', (s) => (s.footprint?.idle.processPssSumBytes ?? 0) / MiB))} |`,
    `| CPU of the whole group, CPU s/min | ${num(pick('agent', (s) => s.footprint?.idle.cgroupCpuSecondsPerMinute))} | ${num(pick('plain', (s) => s.footprint?.idle.cgroupCpuSecondsPerMinute))} |`,
    `| the agent process alone: RSS / anonymous RSS / PSS, MiB | ${num(pick('agent', (s) => (s.footprint?.idle.agent?.rssBytes ?? 0) / MiB))} / ${num(pick('agent', (s) => (s.footprint?.idle.agent?.rssAnonBytes ?? 0) / MiB))} / ${num(pick('agent', (s) => (s.footprint?.idle.agent?.pssBytes ?? 0) / MiB))} | |`,
    `| the agent process alone: CPU s/min | ${num(pick('agent', (s) => s.footprint?.idle.agent?.cpuSecondsPerMinute))} | |`,
  ];
  const bare = nodes.data.probes?.bareNode;
  if (bare)
    rows.push(
      `| reference: a bare \`node\` process in the same image (the floor under the agent): RSS / anonymous RSS, MiB | ${num(bare.rssBytes / MiB)} / ${num(bare.rssAnonBytes / MiB)} | |`,
    );
  if (boinc && !boinc.data.skipped && boinc.data.reps.length) {
    rows.push(
      `| reference: \`boinc-client\` ${boinc.data.version ?? ''} idle, RSS MiB / PSS MiB / CPU s/min | ${num(median(boinc.data.reps.map((r) => r.rssBytes / MiB)))} / ${num(median(boinc.data.reps.map((r) => r.pssBytes / MiB)))} / ${num(median(boinc.data.reps.map((r) => r.cpuSecondsPerMinute)))} | |`,
    );
  }
  return rows.join('\n');
}

function imageDetail(image: ImageResult): string {
  const rows = ['| Layer (Dockerfile step) | Size, MB |', '|---|---|'];
  for (const layer of image.data.layers) {
    if (layer.sizeBytes === 0) continue;
    const step = layer.createdBy.length > 110 ? `${layer.createdBy.slice(0, 107)}…` : layer.createdBy;
    rows.push(
      `| \`${step.replace(/\|/g, '\\|') || `(base image: ${image.data.base?.image ?? '?'})`}\` | ${num(layer.sizeBytes / 1e6, 1)} |`,
    );
  }
  rows.push(`| **total** | **${num(image.data.sizeBytes / 1e6, 1)}** |`);
  const out = [rows.join('\n')];
  if (image.data.base)
    out.push(
      `Largest paths in the base image \`${image.data.base.image}\` (${num(image.data.base.sizeBytes / 1e6, 1)} MB): ${image.data.base.largest
        .slice(0, 8)
        .map((p) => `\`${p.path}\` ${num(p.bytes / 1e6, 1)} MB`)
        .join(', ')}.`,
    );
  out.push(
    `Largest paths in the Ray venv: ${image.data.rayVenvLargest
      .slice(0, 10)
      .map(
        (p) =>
          `\`${p.path.replace(/^\/opt\/ray\/lib\/python3[.\d]*\/site-packages\//, '')}\` ${num(p.bytes / 1e6, 1)} MB`,
      )
      .join(', ')}. Node.js binary: ${image.data.nodeBinaryBytes ? num(image.data.nodeBinaryBytes / 1e6, 1) : '?'} MB.`,
  );
  return out.join('\n\n');
}

function managerDetail(manager: ManagerResult): string {
  const out: string[] = [];
  for (const capacity of manager.data) {
    out.push(
      `- ${thousands(capacity.providers)} providers (registered in ${num(capacity.seedSeconds, 1)} s through the manager's own store code): manager RSS ${num(capacity.managerRssBytes / MiB)} MiB after the load.`,
    );
    if (capacity.profile) {
      out.push(
        `  CPU profile (\`node --cpu-prof\`, ${num(capacity.profile.seconds, 1)} s of closed-loop heartbeats, self time of ${capacity.profile.samples} busy samples) by area: ${Object.entries(
          capacity.profile.byArea,
        )
          .slice(0, 8)
          .map(([area, pct]) => `${area || '(native)'} ${pct}%`)
          .join(', ')}. Top functions: ${capacity.profile.top
          .slice(0, 10)
          .map((t) => `\`${t.name}\` ${t.selfPercent}%`)
          .join(', ')}.`,
      );
    }
  }
  return out.join('\n');
}

const COMMANDS = `| What | Command |
|---|---|
| Everything (full profile; regenerates this file and the plot) | \`npm run bench\` |
| A quick look (a few minutes) | \`npx tsx bench/run.ts --profile quick\` |
| One suite | \`npx tsx bench/run.ts --only nodes\` (or \`manager\`, \`boinc\`, \`image\`, \`overlay\`) |
| Only this report, from \`bench/results/*.json\` | \`npx tsx bench/report.ts\` |
| CI smoke test (small setting, checks the results are well-formed) | \`npx vitest run e2e/bench-smoke.test.ts\` |

Items 1–4 and 7 come from the \`nodes\` suite, 4's reference from \`boinc\`, 5 from \`image\`, 6 from \`manager\`,
8 from \`overlay\` (which also needs Debian's \`iperf3\` on the host, and \`ray-agent-manager:dev\` for the gateway).
The suites need root (nsenter, cgroups), a running Docker Engine with \`ray-agent:dev\` built
(\`scripts/prepare-machine.sh\`), \`python3.11\` and the local Python index (\`/opt/pypi/simple\`, or
\`BENCH_PIP_INDEX_URL\`) for the plain node's venv (\`bench/.venv\`, made once), and Debian's \`chromium\` for the plot.`;

const METHOD = `- **Loopback only.** The run makes a private network namespace whose only interface is loopback (a container
  started with \`--network none\` holds it). The Ray head (\`ray-agent:dev\` with \`ray start --head --num-cpus=0\`),
  the agent's container (\`--network container:…\`), the reference manager (\`node manager/dist/manager.mjs serve\`,
  TLS with a private CA made by \`makePki\`), the plain node and the load generators all run in it (the host
  processes through \`nsenter --net\`), so every connection is on \`127.0.0.1\`. Ray, which otherwise advertises the
  machine's outward address, finds no other interface and uses \`127.0.0.1\`.
- **The two nodes.** *Agent*: \`ray-agent:dev\` as the tray app runs it (\`--cpus=2 --memory=4g --shm-size=1g\`, no
  capabilities, read-only root, \`--init\`), with \`NODE_IP_ADDRESS=127.0.0.1\`, a fresh state volume (so each start
  registers anew) and the manager's CA. *Plain*: \`ray start --address=127.0.0.1:6379 --num-cpus=2 --block\` from a venv
  on the host (\`pip install ray==2.58.0\` from the local index, Python 3.11.7;
  \`RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor\` as the head has 3.11.2), no container, no agent. The plain node is
  placed in a cgroup of its own (no limits) beside the containers' cgroups: its memory and CPU are counted exactly as
  the container's, and under the machine's other load it gets the CPU weight one container gets (Docker puts all
  containers under one parent group; loose host processes would each weigh as much as that whole group, and the
  comparison would then measure the other people's tests rather than the agent).
- **Alternation.** The nodes run one at a time (same ports). Repetition *i* runs both nodes back to back, the plain
  node first in even repetitions and the agent first in odd ones; every ratio is agent ÷ plain of the same
  repetition, and the table gives the median and the min–max of those ratios. The same holds for the manager
  (heartbeat and \`/healthz\` runs alternate) and for the agent's polled and unpolled windows.
- **Driver.** One long-lived Ray driver runs on the head (\`docker exec -i … python3 bench/lib/driver.py\`); tasks
  need 1 CPU and carry a hard node-affinity to the node under test (the head has no CPUs anyway). CPU-bound task: a
  fixed pure-Python loop; tiny task: returns its argument. Each repetition does one warm-up, then its batches.
- **Join**: from just before \`docker run -d\` (create + start; image present) or the spawn of \`ray start\`, until the
  driver sees the new node alive in \`ray.nodes()\` (polled every 50 ms) and, for the agent, the manager lists the new
  provider (polled every 100 ms). **Stop**: SIGTERM to the container's PID 1 (what \`docker stop\` sends) or to
  \`ray start\`, until every process of the node is gone; with running tasks the signal comes 1 s after both tasks
  started, and the driver checks that both finished. **Footprint**: memory sampled six times through each idle window
  (median); CPU as the delta over the window, from the cgroup (\`cpuacct\`) and from \`/proc/PID/stat\` for the agent's
  own Node.js process. The headline memory figure is the cgroup's anonymous + shared memory (page cache and shared
  library pages depend on who touched a file first, so they are shown separately). **Status endpoint**: the tray's
  polling is one \`GET /status\` every 2 s on a kept-alive connection through one footprint window, alternating with an
  unpolled window; the burst is an open-loop generator (\`bench/lib/loadgen.mjs\`, undici, 8 connections) at a fixed
  rate, latency measured from each request's scheduled time.
- **Manager**: N providers are registered through the manager's own store code, then the real server (the bundle, on
  this machine's Node.js, logging every request to a file as it does in production) is loaded from
  \`bench/lib/loadgen.mjs\` over TLS with keep-alive: closed loop (16 connections, each sending when answered: the rate
  it sustains) and open loop (the goal's 5,000/s on a fixed schedule, latency from the scheduled time, so falling
  behind shows). Heartbeats rotate over all N providers. A separate run under \`node --cpu-prof\` shows where the time
  goes.
- **BOINC**: Debian's \`boinc-client\`, started as \`unshare --net -- boinc --dir TMP --no_gui_rpc --no_info_fetch
  --skip_cpu_benchmarks --no_gpus --suppress_net_info\` with a \`cc_config.xml\` that also sets \`no_info_fetch\`,
  \`dont_contact_ref_site\`, \`skip_cpu_benchmarks\` and \`no_gpus\`, attached to no project. \`unshare --net\` gives it a
  network namespace of its own holding only a loopback interface that is down: it cannot reach anything, whatever it
  tries; the run records the namespace's interfaces and open sockets at the end as evidence.
- **Overlay** (item 8; not in the loopback namespace: it needs namespaces of its own). The end-to-end harness
  (\`e2e/support/overlay-cluster.ts\`) makes a cluster network with the manager (\`ray-agent-manager:dev\`), the
  WireGuard gateway (\`ray-agent-manager gateway\`, userspace \`wireguard-go\`) and a Ray head (no CPUs, Ray token
  auth) in the gateway's network namespace, and two home networks, each behind a router container that masquerades
  outgoing traffic and drops every new incoming connection. Each repetition runs both modes, in alternating order,
  each with two fresh providers A and B (same image, \`--cpus=2 --memory=4g\`, fresh state volumes, so each
  registers anew). *Overlay*: tunnel container + agent container per home (as the controller runs them); A and B reach
  each other only through the gateway (B → gateway → A: three WireGuard hops' crypto, all on the same 2 cores).
  *Direct*: the agent container alone on the cluster network (no tunnel volume, so it stays in direct mode), with a
  route to the overlay network via the gateway's cluster address (the head advertises its overlay address: an
  operator's LAN routing it to the head host). **Join**: from just before the first \`docker run\` (the tunnel's, for
  the overlay; the volumes made before) to the first \`GET /status\` saying \`contributing\` (polled every 100 ms),
  for A and then B. **Tasks**: the same long-lived driver on the head, tasks pinned to A with hard node affinity, one
  warm-up first. **Objects**: an actor on B \`ray.put\`s a fresh zero-filled \`bytes\` object and returns the reference
  nested (so it is not fetched before the task starts); a task on A times its \`ray.get\`: the object manager's pull
  from B. **Raw TCP**: \`iperf3 -R\` (server in B's network namespace, client in A's, the host's binary via
  \`nsenter\`), so the data flows B → A along the objects' path.`;

export async function writeReport(
  resultsDir = join(BENCH_DIR, 'results'),
  docsDir = join(REPO_DIR, 'docs'),
): Promise<void> {
  const results = readResults(resultsDir);
  const figures = allFigures(results);
  mkdirSync(docsDir, { recursive: true });
  const plotFile = join(docsDir, 'bench-throughput.png');
  if (results.nodes) {
    const series = throughputSeries(results.nodes);
    const ratio = (a: number[], p: number[]) => median(a.map((v, i) => v / (p[i] ?? 1)));
    const svg = chartSvg(
      [
        {
          title: `CPU-bound tasks: agent/plain ×${ratio(series.cpu.agent, series.cpu.plain).toFixed(3)}`,
          yLabel: 'tasks per second',
          series: [
            { name: 'plain ray start node', color: '#1f77b4', values: series.cpu.plain },
            { name: 'agent container node', color: '#d62728', values: series.cpu.agent },
          ],
        },
        {
          title: `Tiny tasks: agent/plain ×${ratio(series.tiny.agent, series.tiny.plain).toFixed(3)}`,
          yLabel: 'tasks per second',
          series: [
            { name: 'plain ray start node', color: '#1f77b4', values: series.tiny.plain },
            { name: 'agent container node', color: '#d62728', values: series.tiny.agent },
          ],
        },
      ],
      `Ray ${'2.58.0'} throughput per repetition, ${results.nodes.machine.nproc}-core machine, ${results.nodes.startedAt.slice(0, 10)}, profile ${results.nodes.profile} (other work may have been running)`,
    );
    await renderPng(svg, plotFile);
  }
  const analysisFile = join(BENCH_DIR, 'ANALYSIS.md');
  const analysis = existsSync(analysisFile) ? readFileSync(analysisFile, 'utf8').trim() : '';
  const rel = (file: string) => relative(docsDir, file);
  const doc = [
    '# Benchmarks',
    '',
    '<!-- Generated by bench/report.ts from bench/results/*.json (and bench/ANALYSIS.md); edit those, not this file. -->',
    '',
    'How much compute a person really gives through the agent, how fast it starts and stops, and what it costs them',
    '(issue 5). Every figure is measured beside its baseline in the same run, several repetitions, alternating order.',
    '',
    '## Run',
    '',
    COMMANDS,
    '',
    '## Machine and date',
    '',
    machineSection(results),
    '',
    '## Figures',
    '',
    table(figures),
    '',
    results.nodes ? `![Throughput per repetition, agent vs plain node](${rel(plotFile)})` : '',
    '',
    '## Details',
    '',
    results.nodes ? `### Compute per repetition\n\n${computeDetail(results.nodes)}\n` : '',
    results.nodes ? `### Where the agent's start-up time goes\n\n${joinTimeline(results.nodes)}\n` : '',
    results.nodes ? `### Stop\n\n${stopTimeline(results.nodes)}\n` : '',
    results.nodes ? `### Footprint\n\n${footprintDetail(results.nodes, results.boinc)}\n` : '',
    results.boinc
      ? `BOINC: ${results.boinc.data.skipped ?? `\`${results.boinc.data.command}\`; its namespace at the end held the interfaces ${results.boinc.data.isolation?.interfaces.join(', ')} (down), ${results.boinc.data.isolation?.tcpSockets} TCP and ${results.boinc.data.isolation?.udpSockets} UDP sockets.`}\n`
      : '',
    results.image ? `### Image layers\n\n${imageDetail(results.image)}\n` : '',
    results.manager ? `### Manager\n\n${managerDetail(results.manager)}\n` : '',
    results.overlay
      ? `### Overlay per repetition\n\n1-minute load average at the suite's start and end: ${results.overlay.machine.loadAverage.map((l) => num(l, 2)).join(' and ')}.\n\n${overlayDetail(results.overlay)}\n`
      : '',
    '## How it is measured',
    '',
    METHOD,
    '',
    analysis ? `${analysis}\n` : '',
  ]
    .filter((part) => part !== undefined)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
  writeFileSync(join(docsDir, 'BENCHMARKS.md'), doc);
  log(`wrote ${join(docsDir, 'BENCHMARKS.md')} and ${plotFile}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { results: { type: 'string' }, docs: { type: 'string' } } });
  await writeReport(
    values.results ? resolve(values.results) : undefined,
    values.docs ? resolve(values.docs) : undefined,
  );
}
