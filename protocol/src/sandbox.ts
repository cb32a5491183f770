import { z } from 'zod';
import { Sentence } from './common.js';
import seccompGvisor from './seccomp-gvisor.json' with { type: 'json' };

/**
 * What a node needs to run Ray's gVisor sandboxes (`ray.experimental.sandbox`) rootless inside the agent's hardened
 * container, found by removing each change and watching runsc fail (docs/gvisor-findings.md). Defined once: the
 * controller's container spec, the README's `docker run` lines and the image's runsc wrapper follow it.
 */

/** The resource a sandbox-capable node advertises and a job's `sandbox.create(resources={...})` asks for. */
export const SANDBOX_RESOURCE = 'gvisor';

/**
 * Docker's default seccomp profile (moby 20.10.24) plus two rules: `mount`, `umount2`, `pivot_root` and `chroot`
 * (still refused by the kernel outside a user namespace: uid 1000 holds no capability), and `clone` with every
 * namespace flag but CLONE_NEWCGROUP, which rootless runsc needs for its user, mount, pid, net, ipc and uts
 * namespaces. Narrower than `seccomp=unconfined`, which would allow every syscall.
 */
export const GVISOR_SECCOMP_PROFILE: unknown = seccompGvisor;

/**
 * HostConfig.MaskedPaths and ReadonlyPaths: runsc's gofer mounts a fresh procfs in its user namespace, which the
 * kernel allows only when no mount hides part of /proc. Docker's /proc masks go; the /sys/firmware mask stays.
 * Docker's CLI can only say `--security-opt systempaths=unconfined` (both lists empty).
 */
export const GVISOR_MASKED_PATHS: readonly string[] = ['/sys/firmware'];
export const GVISOR_READONLY_PATHS: readonly string[] = [];

/**
 * The /tmp tmpfs's flags: Ray keeps sandbox bundles under /tmp/ray/sandbox, and runsc 20221219 remounts a bundle's
 * root read-only without carrying nosuid/nodev, which a user namespace may not drop. `suid,dev` is harmless here:
 * no-new-privileges ignores setuid bits and without CAP_MKNOD no device node can be made.
 */
export const SANDBOX_TMPFS_FLAGS = 'rw,exec,suid,dev';

/** The variable the image's runsc wrapper reads: `on` lets a sandbox have the network its job asked for. */
export const SANDBOX_NETWORK_VARIABLE = 'SANDBOX_NETWORK';
/** The wrapper's exit code when it refuses a sandbox a network (126: "cannot execute", as a shell says). */
export const SANDBOX_NETWORK_REFUSED_EXIT = 126;

/** Where the image keeps the busybox rootfs tar the self-test starts (operators may use it as a first image). */
export const SANDBOX_TEST_IMAGE = '/opt/ray-agent/sandbox/busybox-rootfs.tar';
/** The seccomp profile inside the image, for `docker run --rm --entrypoint cat IMAGE <this> > seccomp-gvisor.json`. */
export const SANDBOX_SECCOMP_FILE = '/opt/ray-agent/sandbox/seccomp-gvisor.json';
/** The node label a sandbox-capable node carries (`ray-agent/sandbox=gvisor`), for label selectors and `ray status`. */
export const SANDBOX_LABEL = 'ray-agent/sandbox';
/** The kernel release gVisor's sentry reports to the code it runs, whatever the host's. */
export const GVISOR_KERNEL_RELEASE = '4.4.0';
/**
 * Ray reads this from the raylet's environment: runsc gets --ignore-cgroups, since the container's cgroup file
 * system is read-only. Sandboxes stay inside the container's cgroup, so the person's limits hold for them.
 */
export const RAY_SANDBOX_IGNORE_CGROUPS = 'RAY_SANDBOX_IGNORE_CGROUPS';

/** What the person lets this node run (ACCEPT_WORK): `sandboxed` offers Ray no CPUs, only `gvisor` slots. */
export const AcceptWork = z.enum(['any', 'sandboxed']);
export type AcceptWork = z.infer<typeof AcceptWork>;

export const SandboxState = z.enum(['checking', 'ready', 'unavailable']);
export type SandboxState = z.infer<typeof SandboxState>;

/** The status document's `sandbox` section: whether this node runs Ray's gVisor sandboxes, and why not. */
export const SandboxReport = z.object({
  /** checking: the self-test runs (before the node's first join); ready: the node advertises `gvisor`. */
  state: SandboxState,
  /** Why sandboxes cannot run here and what to change; null unless unavailable. */
  reason: Sentence.nullable(),
  /** The kernel release the self-test's sandbox reported (gVisor's). */
  kernel: z.string().max(64).nullable(),
  /** How long the self-test's sandbox took to start, image extraction included. */
  startSeconds: z.number().nonnegative().nullable(),
  /** The `gvisor` resource the node advertises: its whole CPUs, at least 1; 0 unless ready. */
  slots: z.number().int().nonnegative(),
  /** gVisor sandboxes up on this node now (the self-test's own included while it runs). */
  running: z.number().int().nonnegative(),
  /** `sandboxed`: ordinary tasks cannot be scheduled here (Ray gets no CPUs), only work asking for `gvisor`. */
  mode: AcceptWork,
  /** The person lets sandboxes have the network their job asks for (SANDBOX_NETWORK=on); off: none at all. */
  networkAllowed: z.boolean(),
});
export type SandboxReport = z.infer<typeof SandboxReport>;
