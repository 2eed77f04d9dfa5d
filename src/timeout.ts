// Bounding how long something may take, in one place: a timer raced against a promise and
// cleared as soon as either settles, so no timer outlives what it bounds. The promise itself is
// never cancelled; it finishes (or fails) on its own, unobserved.

/** Rejects with "`what` timed out after `ms` ms" when `promise` has not settled within `ms`. */
export function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Waits for `promise` to settle, for at most `ms`; whether it fulfilled or rejected is not
 * asked. Resolves true when it settled in time, false when the wait ran out; never rejects. For
 * steps (mostly of a shutdown) that must not hang on a peer that never answers. With `unref`
 * the wait alone does not keep the process alive.
 */
export async function settleWithin (promise: Promise<unknown>, ms: number, opts: { unref?: boolean } = {}): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const ranOut = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false)
    if (opts.unref) timer.unref()
  })
  try {
    return await Promise.race([promise.then(() => true, () => true), ranOut])
  } finally {
    clearTimeout(timer)
  }
}
