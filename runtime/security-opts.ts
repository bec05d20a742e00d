// docker's --security-opt, for what berth has. berth loads its default seccomp filter (seccomp.ts)
// and no AppArmor or SELinux profile; "seccomp=unconfined" turns the filter off, "apparmor=unconfined"
// and "label=disable" ask for what already happens and are accepted. A profile or label of one's own
// is refused, clearly, rather than silently not applied.

/** A --security-opt berth cannot honour (the CLI's usage error). */
export class SecurityOptError extends Error {}

export interface SecurityOptions {
  /** no-new-privileges[=true|false] (berth's default is true; docker's is false). */
  noNewPrivileges?: boolean;
  /** systempaths=unconfined: nothing masked or read-only under /proc and /sys. */
  unmaskPaths?: boolean;
  /** seccomp=unconfined: no seccomp filter. */
  seccompUnconfined?: boolean;
}

const UNCONFINED: Record<string, string> = { apparmor: 'unconfined', label: 'disable' };

/** Each --security-opt KEY=VALUE (docker also takes KEY:VALUE) → what it changes. */
export function parseSecurityOpts(opts: readonly string[] = []): SecurityOptions {
  const out: SecurityOptions = {};
  for (const opt of opts) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt.trim());
    const key = m?.[1];
    const value = m?.[2];
    if (key === 'no-new-privileges') {
      if (value === undefined || value === 'true') out.noNewPrivileges = true;
      else if (value === 'false') out.noNewPrivileges = false;
      else throw new SecurityOptError(`--security-opt ${opt}: no-new-privileges takes true or false`);
    } else if (key === 'systempaths') {
      if (value !== 'unconfined') throw new SecurityOptError(`--security-opt ${opt}: systempaths takes only unconfined`);
      out.unmaskPaths = true;
    } else if (key === 'seccomp') {
      if (value !== 'unconfined') throw new SecurityOptError(`--security-opt ${opt}: berth applies its own seccomp filter and loads no profile file; only seccomp=unconfined (no filter) is accepted`);
      out.seccompUnconfined = true;
    } else if (key && UNCONFINED[key]) {
      if (value !== UNCONFINED[key]) {
        throw new SecurityOptError(`--security-opt ${opt}: berth applies no ${key === 'label' ? 'SELinux label' : `${key} profile`}; only ${key}=${UNCONFINED[key]} (what it does anyway) is accepted`);
      }
    } else {
      throw new SecurityOptError(`--security-opt ${opt}: expected no-new-privileges[=true|false], systempaths=unconfined, seccomp=unconfined, apparmor=unconfined or label=disable`);
    }
  }
  return out;
}
