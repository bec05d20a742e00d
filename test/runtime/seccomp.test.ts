// The seccomp filter berth's built-in executor installs, run here through a small classic-BPF
// interpreter on made-up syscalls: what the kernel would answer for each architecture and capability
// set. (The containers test checks that the kernel takes the program and applies it.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileSeccomp, SeccompCompileError } from '../../runtime/executors/seccomp-bpf.js';
import { defaultSeccompProfile, type SeccompProfile } from '../../runtime/seccomp.js';
import { DEFAULT_CAPABILITIES } from '../../runtime/spec.js';

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
const AUDIT_ARCH_ARM = 0x40000028;
const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;
const ENOSYS = 0x00050026;
const KILL_PROCESS = 0x80000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const THREAD_FLAGS = 0x003d0f00; // what pthread_create passes: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID

/** Runs a seccomp BPF program on struct seccomp_data { nr, arch, ip, args[6] }. */
function run(program: Buffer, arch: number, nr: number, args: number[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt(a), 16 + 8 * i));
  let a = 0;
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    assert.ok(pc * 8 < program.length, 'the program ran off its end');
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: a = data.readUInt32LE(k); break; // ld [k]
      case 0x54: a = (a & k) >>> 0; break; // and #k
      case 0x15: pc += a === k ? jt : jf; break; // jeq #k
      case 0x35: pc += a >= k ? jt : jf; break; // jge #k
      case 0x05: pc += k; break; // ja
      case 0x06: return k; // ret #k
      default: assert.fail(`unexpected BPF opcode 0x${code.toString(16)}`);
    }
  }
  return assert.fail('the program did not end');
}

describe('the default seccomp filter, compiled for the built-in executor', () => {
  const plain = compileSeccomp(defaultSeccompProfile([...DEFAULT_CAPABILITIES], 'x64'));
  const admin = compileSeccomp(defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'x64'));

  test('x86_64: namespaces, the keyring and mounts are denied; everyday calls pass', () => {
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 272 /* unshare */, [CLONE_NEWUSER]), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 308 /* setns */), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 250 /* keyctl */), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 165 /* mount */), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 425 /* io_uring_setup */), EPERM);
    for (const nr of [0 /* read */, 1 /* write */, 39 /* getpid */, 59 /* execve */, 61 /* wait4 */, 157 /* prctl */, 161 /* chroot */]) {
      assert.equal(run(plain, AUDIT_ARCH_X86_64, nr), ALLOW, `syscall ${nr}`);
    }
  });

  test('clone is checked by its flags: a thread or a fork passes, a new namespace does not; clone3 answers ENOSYS so libc falls back to clone', () => {
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 56, [THREAD_FLAGS]), ALLOW);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 56, [17 /* SIGCHLD: fork */]), ALLOW);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 56, [CLONE_NEWUSER | 17]), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 56, [CLONE_NEWNET | THREAD_FLAGS]), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 435), ENOSYS);
  });

  test('CAP_SYS_ADMIN lets through what it governs, as docker\'s profile does; the keyring stays denied', () => {
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 272, [CLONE_NEWUSER]), ALLOW);
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 165), ALLOW);
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 56, [CLONE_NEWUSER | 17]), ALLOW);
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 435), ALLOW);
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 250), EPERM);
    assert.equal(run(admin, AUDIT_ARCH_X86_64, 169 /* reboot: CAP_SYS_BOOT */), EPERM);
  });

  test('CAP_BPF lets bpf through and CAP_PERFMON perf_event_open, each only its own call, as docker\'s profile does', () => {
    const BPF = 321, PERF_EVENT_OPEN = 298;
    assert.equal(run(plain, AUDIT_ARCH_X86_64, BPF), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, PERF_EVENT_OPEN), EPERM);
    const bpf = compileSeccomp(defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_BPF'], 'x64'));
    assert.equal(run(bpf, AUDIT_ARCH_X86_64, BPF), ALLOW);
    assert.equal(run(bpf, AUDIT_ARCH_X86_64, PERF_EVENT_OPEN), EPERM);
    assert.equal(run(bpf, AUDIT_ARCH_X86_64, 165 /* mount */), EPERM);
    const perfmon = compileSeccomp(defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_PERFMON'], 'x64'));
    assert.equal(run(perfmon, AUDIT_ARCH_X86_64, PERF_EVENT_OPEN), ALLOW);
    assert.equal(run(perfmon, AUDIT_ARCH_X86_64, BPF), EPERM);
  });

  test('32-bit x86 calls are filtered by their own numbers; x32 calls and foreign architectures are killed', () => {
    assert.equal(run(plain, AUDIT_ARCH_I386, 310 /* unshare */), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_I386, 21 /* mount */), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_I386, 120 /* clone */, [CLONE_NEWUSER]), EPERM);
    assert.equal(run(plain, AUDIT_ARCH_I386, 272 /* x86_64's unshare: fchownat on i386 */), ALLOW);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, 0x40000000 | 39), KILL_PROCESS);
    assert.equal(run(plain, AUDIT_ARCH_X86_64, -1), ALLOW, 'syscall(-1) reaches the kernel, which answers ENOSYS');
    assert.equal(run(plain, AUDIT_ARCH_AARCH64, 97), KILL_PROCESS, 'an x86 profile has no arm64 block');
  });

  test('arm64: its own numbers; 32-bit ARM calls are killed', () => {
    const arm = compileSeccomp(defaultSeccompProfile([...DEFAULT_CAPABILITIES], 'arm64'));
    assert.equal(run(arm, AUDIT_ARCH_AARCH64, 97 /* unshare */), EPERM);
    assert.equal(run(arm, AUDIT_ARCH_AARCH64, 220 /* clone */, [CLONE_NEWUSER]), EPERM);
    assert.equal(run(arm, AUDIT_ARCH_AARCH64, 172 /* getpid */), ALLOW);
    assert.equal(run(arm, AUDIT_ARCH_ARM, 1), KILL_PROCESS);
  });

  test('what the compiler cannot express is refused, not dropped', () => {
    const bad = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['clone'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, valueTwo: 1, op: 'SCMP_CMP_GT' }] }] } as unknown as SeccompProfile;
    assert.throws(() => compileSeccomp(bad), SeccompCompileError);
    assert.throws(() => compileSeccomp({ ...bad, syscalls: [{ names: ['mount'], action: 'SCMP_ACT_TRACE' as never }] }), SeccompCompileError);
  });
});
