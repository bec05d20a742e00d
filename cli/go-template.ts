// The part of Go's text/template that `docker … --format` templates use, over JSON-like data:
// fields (.A.B), variables ($, $x := …), pipelines (a | b), parentheses, string/number/bool literals,
// if/else if/else, range (with $i, $v :=), with, comments, trim markers ({{- and -}}), and docker's
// functions (json, join, split, lower, upper, title, pad, truncate, println) beside Go's own (index,
// len, print, printf, eq, ne, lt, le, gt, ge, and, or, not). A missing key reads as Go's <no value>.
// Values print as Go prints them: [a b] for lists, map[k:v] for objects.

export class TemplateError extends Error {}

type Value = unknown;
type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if' | 'with'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { kind: 'range'; pipe: Pipeline; then: Node[]; else: Node[] };
/** decl: the variables it declares ($x := …), or with assign the one it sets again ($x = …). */
interface Pipeline { decl: string[]; assign?: boolean; cmds: Operand[][] }
type Operand =
  | { kind: 'field'; base: 'dot' | string; path: string[] } // base: dot, or a variable name ($, $x)
  | { kind: 'literal'; value: Value }
  | { kind: 'func'; name: string }
  | { kind: 'sub'; pipe: Pipeline; path: string[] };

// ---- lexing an action ---------------------------------------------------------------------------

type Token = { t: 'field' | 'var' | 'ident' | 'str' | 'num' | '|' | '(' | ')' | ':=' | '=' | ','; v: string };

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const ident = /[A-Za-z0-9_]/;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '|' || c === '(' || c === ')' || c === ',') { out.push({ t: c, v: c }); i++; continue; }
    if (src.startsWith(':=', i)) { out.push({ t: ':=', v: ':=' }); i += 2; continue; }
    if (c === '=') { out.push({ t: '=', v: '=' }); i++; continue; }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) throw new TemplateError('unterminated quoted string');
      out.push({ t: 'str', v: JSON.parse(src.slice(i, j + 1)) as string });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw quoted string');
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === '.' || c === '$') {
      let j = i + 1;
      while (j < src.length && (ident.test(src[j]!) || (src[j] === '.' && j + 1 < src.length && ident.test(src[j + 1]!)))) j++;
      out.push({ t: c === '.' ? 'field' : 'var', v: src.slice(i, j) });
      i = j;
      continue;
    }
    if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)/.exec(src.slice(i));
      if (!m) throw new TemplateError(`bad number syntax: "${src.slice(i, i + 10)}"`);
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (ident.test(c)) {
      let j = i;
      while (j < src.length && ident.test(src[j]!)) j++;
      out.push({ t: 'ident', v: src.slice(i, j) });
      i = j;
      continue;
    }
    throw new TemplateError(`unexpected "${c}" in command`);
  }
  return out;
}

// ---- parsing ------------------------------------------------------------------------------------

const FUNCS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  join: (list, sep) => (Array.isArray(list) ? list.map((x) => show(x)).join(String(sep)) : show(list)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => String(s).toLowerCase(),
  upper: (s) => String(s).toUpperCase(),
  title: (s) => String(s).replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_, a: string, b: string) => a + b.toUpperCase()),
  pad: (s, left, right) => ' '.repeat(Number(left)) + show(s) + ' '.repeat(Number(right)),
  truncate: (s, n) => [...show(s)].slice(0, Number(n)).join(''),
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`len of ${typeName(v)}`);
  },
  index: (v, ...keys) => {
    let x = v;
    for (const k of keys) {
      if (x === undefined || x === null) return undefined;
      if (typeof x !== 'object') throw new TemplateError(`can't index item of type ${typeName(x)}`);
      const map = x as Record<string, Value>;
      // a map of strings (labels, options) gives Go's zero value for a missing key: ""
      x = k !== undefined && String(k) in map ? map[String(k)] : !Array.isArray(map) && Object.values(map).every((e) => typeof e === 'string') ? '' : undefined;
    }
    return x;
  },
  print: (...args) => args.map((a, i) => (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + show(a)).join(''),
  println: (...args) => `${args.map((a) => show(a)).join(' ')}\n`,
  printf: (f, ...args) => printf(String(f), args),
  not: (v) => !truth(v),
  and: (...args) => { const i = args.findIndex((a) => !truth(a)); return i < 0 ? args.at(-1) : args[i]; },
  or: (...args) => { const i = args.findIndex((a) => truth(a)); return i < 0 ? args.at(-1) : args[i]; },
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
};

function compare(a: Value, b: Value): number {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) throw new TemplateError(`incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);
  return a < (b as typeof a) ? -1 : a > (b as typeof a) ? 1 : 0;
}

/** Where an action's }} is: the first one outside a "quoted" or `raw` string. */
function actionEnd(src: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < src.length; i++) {
    const c = src[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === '`') quote = c;
    else if (c === '}' && src[i + 1] === '}') return i;
  }
  return -1;
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Node[] {
    const [nodes, end] = this.list();
    if (end) throw new TemplateError(`unexpected {{${end}}}`);
    return nodes;
  }

  /** Nodes up to an {{else…}} or {{end}} (returned as its words), or to the end of the text. */
  private list(): [Node[], string | undefined] {
    const nodes: Node[] = [];
    for (;;) {
      const open = this.src.indexOf('{{', this.pos);
      let text = this.src.slice(this.pos, open < 0 ? undefined : open);
      if (open < 0) {
        if (text) nodes.push({ kind: 'text', text });
        return [nodes, undefined];
      }
      const trimLeft = /^\{\{-\s/.test(this.src.slice(open, open + 4));
      const close = actionEnd(this.src, open + 2);
      if (close < 0) throw new TemplateError('unclosed action');
      const trimRight = /\s-$/.test(this.src.slice(Math.max(open + 2, close - 2), close));
      let body = this.src.slice(open + (trimLeft ? 3 : 2), trimRight ? close - 2 : close).trim();
      this.pos = close + 2;
      if (trimLeft) text = text.replace(/\s+$/, '');
      if (text) nodes.push({ kind: 'text', text });
      if (trimRight) {
        const rest = this.src.slice(this.pos);
        this.pos += rest.length - rest.replace(/^\s+/, '').length;
      }
      if (body.startsWith('/*')) {
        if (!body.endsWith('*/')) throw new TemplateError('unclosed comment');
        continue;
      }
      const word = /^(if|range|with|else|end)\b/.exec(body)?.[1];
      if (word === 'end' || word === 'else') return [nodes, body];
      if (word) {
        nodes.push(this.block(word as 'if' | 'range' | 'with', body.slice(word.length)));
        continue;
      }
      if (!body) throw new TemplateError('missing value for command');
      nodes.push({ kind: 'action', pipe: this.pipeline(lex(body)) });
    }
  }

  /** {{if|range|with PIPELINE}} … [{{else}} … | {{else if …}} …] {{end}}; an {{else if}} block shares the outer {{end}}. */
  private block(word: 'if' | 'range' | 'with', pipeSrc: string): Node {
    const pipe = this.pipeline(lex(pipeSrc));
    const [then, end] = this.list();
    if (end === undefined) throw new TemplateError(`unexpected EOF: {{${word}}} has no {{end}}`);
    let otherwise: Node[] = [];
    if (end !== 'end') {
      const chained = /^else\s+(if|with)\b(.*)$/s.exec(end);
      if (chained) otherwise = [this.block(chained[1] as 'if' | 'with', chained[2]!)];
      else if (end === 'else') {
        const [rest, end2] = this.list();
        if (end2 !== 'end') throw new TemplateError(`expected {{end}}, got ${end2 === undefined ? 'EOF' : `{{${end2}}}`}`);
        otherwise = rest;
      } else throw new TemplateError(`unexpected {{${end}}}`);
    }
    return { kind: word, pipe, then, else: otherwise };
  }

  private pipeline(tokens: Token[]): Pipeline {
    let i = 0;
    const decl: string[] = [];
    // $x := …  or  $i, $v := …
    const declEnd = tokens.findIndex((t) => t.t === ':=' || t.t === '=');
    let assign = false;
    if (declEnd > 0 && tokens.slice(0, declEnd).every((t) => t.t === 'var' || t.t === ',')) {
      for (const t of tokens.slice(0, declEnd)) if (t.t === 'var') decl.push(t.v);
      assign = tokens[declEnd]!.t === '=';
      i = declEnd + 1;
    }
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    while (i < tokens.length) {
      const t = tokens[i]!;
      if (t.t === '|') {
        if (!cmd.length) throw new TemplateError('missing command before |');
        cmds.push(cmd);
        cmd = [];
        i++;
        continue;
      }
      if (t.t === '(') {
        let depth = 1;
        let j = i + 1;
        for (; j < tokens.length && depth > 0; j++) depth += tokens[j]!.t === '(' ? 1 : tokens[j]!.t === ')' ? -1 : 0;
        if (depth) throw new TemplateError('unclosed left paren');
        const inner = this.pipeline(tokens.slice(i + 1, j - 1));
        let path: string[] = [];
        if (tokens[j]?.t === 'field') { path = tokens[j]!.v.split('.').slice(1); j++; }
        cmd.push({ kind: 'sub', pipe: inner, path });
        i = j;
        continue;
      }
      cmd.push(operand(t));
      i++;
    }
    if (cmd.length) cmds.push(cmd);
    if (!cmds.length) throw new TemplateError('missing value for command');
    return { decl, ...(assign ? { assign } : {}), cmds };
  }
}

function operand(t: Token): Operand {
  switch (t.t) {
    case 'field': return { kind: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.split('.').slice(1) };
    case 'var': {
      const [name, ...path] = t.v.split('.');
      return { kind: 'field', base: name!, path };
    }
    case 'str': return { kind: 'literal', value: t.v };
    case 'num': return { kind: 'literal', value: Number(t.v) };
    case 'ident':
      if (t.v === 'true' || t.v === 'false') return { kind: 'literal', value: t.v === 'true' };
      if (t.v === 'nil') return { kind: 'literal', value: null };
      if (!FUNCS[t.v]) throw new TemplateError(`function "${t.v}" not defined`);
      return { kind: 'func', name: t.v };
    default: throw new TemplateError(`unexpected "${t.v}" in operand`);
  }
}

// ---- executing ----------------------------------------------------------------------------------

function truth(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function typeName(v: Value): string {
  return v === undefined || v === null ? 'nil' : Array.isArray(v) ? 'slice' : typeof v === 'object' ? 'map' : typeof v;
}

/** A value as Go's fmt prints it with %v. */
function show(v: Value, inner = false): string {
  if (v === undefined || v === null) return inner ? '<nil>' : '<no value>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(v).replace(/e([+-])(\d)$/, 'e$10$2');
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => show(x, true)).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.keys(v).sort().map((k) => `${k}:${show((v as Record<string, Value>)[k], true)}`).join(' ')}]`;
  return String(v);
}

function printf(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqftx%])/g, (_all, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 'd': s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${typeName(a)}=${show(a)})`; break;
      case 'f': s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(${typeName(a)}=${show(a)})`; break;
      case 'q': s = JSON.stringify(show(a)); break;
      case 'x': s = typeof a === 'number' ? a.toString(16) : Buffer.from(show(a)).toString('hex'); break;
      case 't': s = String(truth(a)); break;
      default: s = show(a);
    }
    if (width) s = flags.includes('-') ? s.padEnd(Number(width)) : s.padStart(Number(width), flags.includes('0') && verb !== 's' ? '0' : ' ');
    return s;
  });
}

class Scope {
  constructor(private readonly vars: Map<string, Value>, private readonly parent?: Scope) {}
  get(name: string): Value {
    if (this.vars.has(name)) return this.vars.get(name);
    if (this.parent) return this.parent.get(name);
    throw new TemplateError(`undefined variable: ${name}`);
  }
  set(name: string, v: Value): void { this.vars.set(name, v); }
  /** $x = v: the nearest existing $x. */
  assign(name: string, v: Value): void {
    if (this.vars.has(name)) this.vars.set(name, v);
    else if (this.parent) this.parent.assign(name, v);
    else throw new TemplateError(`undefined variable: ${name}`);
  }
  child(): Scope { return new Scope(new Map(), this); }
}

function walk(v: Value, path: string[]): Value {
  let x = v;
  for (const key of path) {
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'object' || Array.isArray(x)) throw new TemplateError(`can't evaluate field ${key} in type ${typeName(x)}`);
    x = (x as Record<string, Value>)[key];
  }
  return x;
}

function evalPipeline(p: Pipeline, dot: Value, scope: Scope): Value {
  let value: Value;
  let piped = false;
  for (const cmd of p.cmds) {
    value = evalCommand(cmd, dot, scope, piped ? [value] : []);
    piped = true;
  }
  if (p.decl.length === 1) {
    if (p.assign) scope.assign(p.decl[0]!, value); else scope.set(p.decl[0]!, value);
  }
  return value;
}

function evalCommand(cmd: Operand[], dot: Value, scope: Scope, piped: Value[]): Value {
  const [head, ...rest] = cmd;
  const arg = (o: Operand): Value => {
    if (o.kind === 'literal') return o.value;
    if (o.kind === 'field') return walk(o.base === 'dot' ? dot : scope.get(o.base), o.path);
    if (o.kind === 'sub') return walk(evalPipeline(o.pipe, dot, scope.child()), o.path);
    return FUNCS[o.name]!(); // a function as an argument: called without arguments
  };
  if (head!.kind === 'func') return FUNCS[head!.name]!(...rest.map(arg), ...piped);
  if (rest.length || piped.length) throw new TemplateError(`can't give argument to non-function ${show(arg(head!))}`);
  return arg(head!);
}

function exec(nodes: Node[], dot: Value, scope: Scope, out: string[]): void {
  for (const n of nodes) {
    if (n.kind === 'text') { out.push(n.text); continue; }
    if (n.kind === 'action') {
      const v = evalPipeline(n.pipe, dot, scope);
      if (!n.pipe.decl.length) out.push(show(v));
      continue;
    }
    const inner = scope.child();
    if (n.kind === 'range') {
      const v = evalPipeline({ ...n.pipe, decl: [] }, dot, inner);
      const entries: Array<[Value, Value]> = Array.isArray(v) ? v.map((x, i) => [i, x])
        : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => [k, (v as Record<string, Value>)[k]])
          : typeof v === 'number' ? Array.from({ length: v }, (_, i) => [i, i])
            : v === undefined || v === null ? [] : (() => { throw new TemplateError(`range can't iterate over ${show(v)}`); })();
      if (!entries.length) { exec(n.else, dot, inner, out); continue; }
      for (const [k, x] of entries) {
        const each = inner.child();
        if (n.pipe.decl.length === 1) each.set(n.pipe.decl[0]!, x);
        if (n.pipe.decl.length === 2) { each.set(n.pipe.decl[0]!, k); each.set(n.pipe.decl[1]!, x); }
        exec(n.then, x, each, out);
      }
      continue;
    }
    const v = evalPipeline(n.pipe, dot, inner);
    if (truth(v)) exec(n.then, n.kind === 'with' ? v : dot, inner, out);
    else exec(n.else, dot, inner, out);
  }
}

/** A parsed template; render() gives its text for one value (the dot, and $). */
export class GoTemplate {
  private readonly nodes: Node[];
  constructor(readonly source: string) {
    try { this.nodes = new Parser(source).parse(); } catch (e) {
      throw e instanceof TemplateError ? new TemplateError(`template parsing error: ${e.message}`) : e;
    }
  }
  render(data: Value): string {
    const out: string[] = [];
    try { exec(this.nodes, data, new Scope(new Map([['$', data]])), out); } catch (e) {
      throw e instanceof TemplateError ? new TemplateError(`template: executing "${this.source}": ${e.message}`) : e;
    }
    return out.join('');
  }
}
