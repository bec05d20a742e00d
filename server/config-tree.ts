// A parsed YAML mapping, as the configuration's checks walk it.
export type Tree = Record<string, unknown>;

export const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);
