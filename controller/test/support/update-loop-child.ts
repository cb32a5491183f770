/**
 * A controller process that runs one update cycle and is killed (SIGKILL) by the test mid-switch. Its new image is
 * never judged contributing, so it sits in probation until killed. Argument: JSON { spec, stateDir }.
 */
import { UpdateLoop } from '../../src/app/update-loop.js';
import { AgentContainer, type AgentSpec } from '../../src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../../src/engine/docker-endpoint.js';
import { createDockerode } from '../../src/engine/docker-engine.js';

const { spec, stateDir } = JSON.parse(process.argv[2] ?? '{}') as { spec: AgentSpec; stateDir: string };
const docker = createDockerode(resolveDockerEndpointFromProcess());
const loop = new UpdateLoop({
  docker,
  agent: new AgentContainer(docker, { name: spec.name }),
  settings: () => ({ image: spec.image, updates: 'auto' }),
  spec: () => spec,
  mayDisrupt: () => true,
  stateDir,
  contributingWithinMs: 600_000,
  pollMs: 200,
  isContributing: async () => false,
  onView: (view) => process.stdout.write(`${JSON.stringify(view)}\n`),
  notify: (text) => process.stdout.write(`notify ${text}\n`),
});
await loop.checkNow();
