// WWW-Authenticate parsing (RFC 7235): one header may carry several challenges, each a scheme
// followed by comma-separated auth-params, values as tokens or quoted strings with \-escapes.
//   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"
//   Basic realm="Registry Realm"

export interface Challenge {
  /** Lower-case scheme: "bearer", "basic", … */
  scheme: string;
  /** Parameters with lower-case names. */
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*/y;

export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const headers = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const h of headers) out.push(...parseOne(h));
  return out;
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skipWs = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++; };
  const skipSeps = () => { while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++; };
  const token = (re: RegExp): string | undefined => {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const quoted = (): string => {
    // s[i] === '"'
    i++;
    let v = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i++];
    }
    i++; // closing quote (or end)
    return v;
  };
  let current: Challenge | undefined;
  skipSeps();
  while (i < s.length) {
    const start = i;
    const name = token(TOKEN);
    if (!name) { i++; skipSeps(); continue; } // garbage: skip a character
    skipWs();
    if (s[i] === '=' && current && s[i + 1] !== '=') {
      // an auth-param of the current challenge
      i++;
      skipWs();
      const value = s[i] === '"' ? quoted() : token(TOKEN) ?? '';
      current.params[name.toLowerCase()] = value;
      skipSeps();
      continue;
    }
    // a new challenge: scheme [token68 | params]
    i = start + name.length;
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    skipWs();
    // token68 form ("Negotiate abc==") unless what follows is a name=value param
    const save = i;
    const name2 = token(TOKEN);
    skipWs();
    const isParam = name2 !== undefined && s[i] === '=' && s[i + 1] !== '=';
    i = save;
    if (!isParam) {
      const t68 = token(TOKEN68);
      if (t68) current.params[''] = t68;
    }
    skipSeps();
  }
  return out;
}

/** The scopes a bearer challenge asks for (space-separated in one "scope" param). */
export function challengeScopes(c: Challenge): string[] {
  return (c.params.scope ?? '').split(' ').filter(Boolean);
}
