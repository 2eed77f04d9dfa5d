// A minimal typed event emitter (no node:events: the SDK runs in browsers too).
type Listener = (...args: never[]) => void

export class Emitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>()

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E> (event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, set = new Set())
    set.add(listener)
    return () => { set.delete(listener) }
  }

  protected emit<K extends keyof E> (event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<E[K]>) => void)(...args)
      } catch (err) {
        // A throwing listener must not break the client (or, in Node, the process): report it.
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError
        if (report) report(err)
        else console.error(err)
      }
    }
  }
}
