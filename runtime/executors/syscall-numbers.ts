// Syscall numbers for the names berth's seccomp filter (../seccomp.ts) uses, per architecture, as the
// kernel headers give them (asm/unistd_64.h, asm/unistd_32.h, asm-generic/unistd.h). A name an
// architecture does not have is missing from its table; a filter rule for it is then dropped, as
// libseccomp drops it for runc and crun.

const X86_64: Record<string, number> = {
  acct: 163, add_key: 248, bpf: 321, clock_adjtime: 305, clock_settime: 227, clone: 56, clone3: 435, create_module: 174,
  delete_module: 176, finit_module: 313, get_kernel_syms: 177, get_mempolicy: 239, init_module: 175, ioperm: 173, iopl: 172,
  kcmp: 312, kexec_file_load: 320, kexec_load: 246, keyctl: 250, lookup_dcookie: 212, mbind: 237, move_pages: 279, mount: 165,
  name_to_handle_at: 303, nfsservctl: 180, open_by_handle_at: 304, perf_event_open: 298, pivot_root: 155, query_module: 178,
  quotactl: 179, quotactl_fd: 443, reboot: 169, request_key: 249, set_mempolicy: 238, setns: 308, settimeofday: 164, swapon: 167,
  swapoff: 168, sysfs: 139, _sysctl: 156, umount2: 166, unshare: 272, uselib: 134, userfaultfd: 323, ustat: 136,
  io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431,
  fsmount: 432, fspick: 433, mount_setattr: 442, pidfd_getfd: 438, syslog: 103, fanotify_init: 300, vhangup: 153,
};

const I386: Record<string, number> = {
  acct: 51, add_key: 286, bpf: 357, clock_adjtime: 343, clock_settime: 264, clone: 120, clone3: 435, create_module: 127,
  delete_module: 129, finit_module: 350, get_kernel_syms: 130, get_mempolicy: 275, init_module: 128, ioperm: 101, iopl: 110,
  kcmp: 349, kexec_load: 283, keyctl: 288, lookup_dcookie: 253, mbind: 274, move_pages: 317, mount: 21,
  name_to_handle_at: 341, nfsservctl: 169, open_by_handle_at: 342, perf_event_open: 336, pivot_root: 217, query_module: 167,
  quotactl: 131, quotactl_fd: 443, reboot: 88, request_key: 287, set_mempolicy: 276, setns: 346, settimeofday: 79, stime: 25,
  swapon: 87, swapoff: 115, sysfs: 135, _sysctl: 149, umount: 22, umount2: 52, unshare: 310, uselib: 86, userfaultfd: 374,
  ustat: 62, vm86: 166, vm86old: 113, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, open_tree: 428,
  move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442, pidfd_getfd: 438, syslog: 103,
  fanotify_init: 338, vhangup: 111,
};

const AARCH64: Record<string, number> = {
  acct: 89, add_key: 217, bpf: 280, clock_adjtime: 266, clock_settime: 112, clone: 220, clone3: 435, delete_module: 106,
  finit_module: 273, get_mempolicy: 236, init_module: 105, kcmp: 272, kexec_file_load: 294, kexec_load: 104, keyctl: 219,
  lookup_dcookie: 18, mbind: 235, move_pages: 239, mount: 40, name_to_handle_at: 264, nfsservctl: 42, open_by_handle_at: 265,
  perf_event_open: 241, pivot_root: 41, quotactl: 60, quotactl_fd: 443, reboot: 142, request_key: 218, set_mempolicy: 237,
  setns: 268, settimeofday: 170, swapon: 224, swapoff: 225, umount2: 39, unshare: 97, userfaultfd: 282,
  io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431,
  fsmount: 432, fspick: 433, mount_setattr: 442, pidfd_getfd: 438, syslog: 116, fanotify_init: 262, vhangup: 58,
};

/** An architecture a filter covers: the kernel's AUDIT_ARCH_* value and its syscall numbers. */
export interface SyscallTable { scmpArch: string; auditArch: number; numbers: Record<string, number>; x32Bit?: number }

export const SYSCALL_TABLES: readonly SyscallTable[] = [
  // x32 shares AUDIT_ARCH_X86_64 and marks its numbers with bit 30
  { scmpArch: 'SCMP_ARCH_X86_64', auditArch: 0xc000003e, numbers: X86_64, x32Bit: 0x40000000 },
  { scmpArch: 'SCMP_ARCH_X86', auditArch: 0x40000003, numbers: I386 },
  { scmpArch: 'SCMP_ARCH_AARCH64', auditArch: 0xc00000b7, numbers: AARCH64 },
];
