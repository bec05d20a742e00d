// An adapter (or any object) with some methods wrapped: tests hold a step, count calls or fail one,
// while every other method goes straight to the original, bound to it.
export function withHooks<A extends object>(target: A, hooks: { [K in keyof A]?: (original: A[K]) => A[K] }): A {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const v = Reflect.get(t, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const bound = (v as (...a: unknown[]) => unknown).bind(t);
      const hook = hooks[prop as keyof A];
      return hook ? hook(bound as A[keyof A]) : bound;
    },
  });
}
