// berth's default seccomp filter, in the runtime-spec's form (linux.seccomp): runc and crun take it as
// it is, the built-in executor compiles it to BPF (executors/seccomp-bpf.ts).
//
// It denies, with EPERM, the syscalls docker's default profile keeps from a container: the kernel
// keyring (not namespaced), new namespaces (unshare, setns, clone with CLONE_NEW*; a user namespace
// needs no capability, so nothing else stops it), mounts and the new mount API, kernel modules,
// kexec, bpf, perf_event_open, io_uring, userfaultfd, the clock, swap, quotas, raw I/O and NUMA
// policy, and obsolete calls. As docker does, a capability given with --cap-add lets through the calls
// it governs (SYS_ADMIN: mounts and namespaces; SYS_PTRACE: kcmp, pidfd_getfd, userfaultfd; BPF: bpf;
// PERFMON: perf_event_open; …).
// clone3 answers ENOSYS, so that libc falls back to clone, whose flags can be checked.
//
// Unlike docker's profile, which allows a list and denies the rest, this one denies a list and
// allows the rest: a syscall newer than the list is not blocked. --privileged and
// --security-opt seccomp=unconfined load no filter.

export type SeccompAction = 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_LOG';

/** One argument test: the rule applies when (arg & value) === valueTwo. */
export interface SeccompArg { index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' }

export interface SeccompRule { names: string[]; action: SeccompAction; errnoRet?: number; args?: SeccompArg[] }

export interface SeccompProfile { defaultAction: SeccompAction; architectures: string[]; syscalls: SeccompRule[] }

const EPERM = 1;
const ENOSYS = 38;

/** Denied whatever the capabilities. */
const ALWAYS = [
  'add_key', 'keyctl', 'request_key', 'kexec_load', 'kexec_file_load', 'create_module', 'get_kernel_syms', 'query_module',
  'nfsservctl', 'uselib', 'ustat', 'sysfs', '_sysctl', 'vm86', 'vm86old', 'lookup_dcookie',
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
];

/** Denied unless the container has the capability (docker's profile gates the same calls on it). */
const BY_CAPABILITY: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    'mount', 'umount', 'umount2', 'pivot_root', 'unshare', 'setns', 'bpf', 'perf_event_open', 'quotactl', 'quotactl_fd',
    'swapon', 'swapoff', 'name_to_handle_at', 'fanotify_init', 'open_tree', 'move_mount', 'fsopen', 'fsconfig', 'fsmount',
    'fspick', 'mount_setattr',
  ],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'userfaultfd'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime'],
  CAP_SYS_NICE: ['get_mempolicy', 'set_mempolicy', 'mbind', 'move_pages'],
  CAP_SYSLOG: ['syslog'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
};

/** Calls that a narrower capability also lets through (docker: CAP_BPF for bpf, CAP_PERFMON for perf_event_open). */
const ALSO_ALLOWED_BY: Record<string, string> = { bpf: 'CAP_BPF', perf_event_open: 'CAP_PERFMON' };

/** clone's flags that make namespaces (CLONE_NEWNS … CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWUSER). */
export const CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

const ARCHITECTURES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

/** The default filter for a container with these (bounding) capabilities. */
export function defaultSeccompProfile(capabilities: readonly string[], arch: string = process.arch): SeccompProfile {
  const denied = [...ALWAYS];
  for (const [cap, names] of Object.entries(BY_CAPABILITY)) {
    if (capabilities.includes(cap)) continue;
    const also = (name: string) => ALSO_ALLOWED_BY[name] !== undefined && capabilities.includes(ALSO_ALLOWED_BY[name]);
    denied.push(...names.filter((name) => !also(name)));
  }
  const syscalls: SeccompRule[] = [{ names: denied, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }];
  if (!capabilities.includes('CAP_SYS_ADMIN')) {
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
    // one rule per flag: a rule's argument tests must all hold, and any one flag is enough to deny
    for (const flag of CLONE_NAMESPACE_FLAGS) {
      syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }] });
    }
  }
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: ARCHITECTURES[arch] ?? [], syscalls };
}
