// Compiles a runtime-spec seccomp profile (the subset ../seccomp.ts makes) into a classic BPF program
// for the built-in executor, which installs it with prctl(PR_SET_SECCOMP) just before the exec. runc
// and crun do the same with libseccomp.
//
// The program: load the architecture; for each architecture berth has syscall numbers for, a block
// that loads the syscall number and tries each rule in turn (number, then each argument test), the
// first match returning its action, else the default. A call from an architecture without a block
// (32-bit ARM on arm64, x32 on x86_64) kills the process, as libseccomp's default for a foreign
// architecture: answering it EPERM would leave even its exit failing.
import type { SeccompAction, SeccompProfile } from '../seccomp.js';
import { SYSCALL_TABLES } from './syscall-numbers.js';

export class SeccompCompileError extends Error {}

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JA = 0x05;
const AND_K = 0x54;
const RET_K = 0x06;
// struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian: low word first)
const OFF_NR = 0;
const OFF_ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;

const RET_KILL_PROCESS = 0x80000000;

function returnValue(action: SeccompAction, errno = 1): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return 0x7fff0000;
    case 'SCMP_ACT_ERRNO': return (0x00050000 | (errno & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL': return 0;
    case 'SCMP_ACT_KILL_PROCESS': return RET_KILL_PROCESS;
    case 'SCMP_ACT_LOG': return 0x7ffc0000;
    default: throw new SeccompCompileError(`seccomp action ${String(action)} is not supported`);
  }
}

/** An instruction whose jump targets are labels until the program is laid out. */
interface Insn { code: number; k: number; jt?: string; jf?: string; ja?: string }

class Program {
  readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private next = 0;
  label(): string { return `L${this.next++}`; }
  place(label: string): void { this.labels.set(label, this.insns.length); }
  emit(insn: Insn): void { this.insns.push(insn); }

  bytes(): Buffer {
    if (this.insns.length > 4096) throw new SeccompCompileError(`the seccomp program has ${this.insns.length} instructions, over the kernel's 4096`);
    const out = Buffer.alloc(this.insns.length * 8);
    const offset = (pc: number, label: string | undefined, max: number): number => {
      if (label === undefined) return 0;
      const at = this.labels.get(label);
      const d = at === undefined ? -1 : at - pc - 1;
      if (d < 0 || d > max) throw new SeccompCompileError('a seccomp jump is out of range');
      return d;
    };
    this.insns.forEach((insn, pc) => {
      const k = insn.ja !== undefined ? offset(pc, insn.ja, 0xffffffff) : insn.k;
      out.writeUInt16LE(insn.code, pc * 8);
      out.writeUInt8(offset(pc, insn.jt, 255), pc * 8 + 2);
      out.writeUInt8(offset(pc, insn.jf, 255), pc * 8 + 3);
      out.writeUInt32LE(k >>> 0, pc * 8 + 4);
    });
    return out;
  }
}

/** The profile as a BPF program (struct sock_filter[]), for the architectures berth has numbers for. */
export function compileSeccomp(profile: SeccompProfile): Buffer {
  const p = new Program();
  const fallback = returnValue(profile.defaultAction);
  const tables = SYSCALL_TABLES.filter((t) => profile.architectures.includes(t.scmpArch));
  for (const table of tables) {
    const nextArch = p.label();
    const inArch = p.label();
    p.emit({ code: LD_W_ABS, k: OFF_ARCH });
    p.emit({ code: JEQ_K, k: table.auditArch, jt: inArch });
    p.emit({ code: JA, k: 0, ja: nextArch });
    p.place(inArch);
    p.emit({ code: LD_W_ABS, k: OFF_NR });
    // syscall(-1), which a tracer uses to skip a call, goes to the kernel (ENOSYS), as libseccomp lets it
    const notSkip = p.label();
    p.emit({ code: JEQ_K, k: 0xffffffff, jf: notSkip });
    p.emit({ code: RET_K, k: fallback });
    p.place(notSkip);
    if (table.x32Bit !== undefined) {
      const native = p.label();
      p.emit({ code: JGE_K, k: table.x32Bit, jf: native });
      p.emit({ code: RET_K, k: RET_KILL_PROCESS });
      p.place(native);
    }
    for (const rule of profile.syscalls) {
      for (const name of rule.names) {
        const nr = table.numbers[name];
        if (nr === undefined) continue;
        const nextRule = p.label();
        const matched = p.label();
        p.emit({ code: LD_W_ABS, k: OFF_NR });
        p.emit({ code: JEQ_K, k: nr, jt: matched, jf: nextRule });
        p.place(matched);
        for (const arg of rule.args ?? []) {
          if (arg.op !== 'SCMP_CMP_MASKED_EQ' || arg.index < 0 || arg.index > 5 || arg.value > 0xffffffff || arg.valueTwo > 0xffffffff) {
            throw new SeccompCompileError(`seccomp argument test ${JSON.stringify(arg)} is not supported`);
          }
          // the masks are 32-bit, so the argument's high word cannot change the outcome
          const holds = p.label();
          p.emit({ code: LD_W_ABS, k: argLow(arg.index) });
          p.emit({ code: AND_K, k: arg.value });
          p.emit({ code: JEQ_K, k: arg.valueTwo, jt: holds, jf: nextRule });
          p.place(holds);
        }
        p.emit({ code: RET_K, k: returnValue(rule.action, rule.errnoRet) });
        p.place(nextRule);
      }
    }
    p.emit({ code: RET_K, k: fallback });
    p.place(nextArch);
  }
  p.emit({ code: RET_K, k: RET_KILL_PROCESS });
  return p.bytes();
}
