// src/timeout.ts, the one way the code bounds a wait: on a fake clock, so the bound is exact
// and no test waits for real time. Each case checks the timer is gone afterwards.
import FakeTimers from '@sinonjs/fake-timers'
import t, { type Test } from 'tap'
import { settleWithin, withTimeout } from '../src/timeout.js'

function clock (t: Test) {
  const c = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
  t.teardown(() => c.uninstall())
  return c
}

/** A promise and the functions that settle it. */
function deferred<T = void> () {
  let settle!: { resolve: (v: T) => void, reject: (e: unknown) => void }
  const promise = new Promise<T>((resolve, reject) => { settle = { resolve, reject } })
  return { promise, resolve: (v: T) => settle.resolve(v), reject: (e: unknown) => settle.reject(e) }
}

t.test('withTimeout: passes a value that comes in time, and clears its timer', async (t) => {
  const c = clock(t)
  const d = deferred<number>()
  const bounded = withTimeout(d.promise, 100, 'op')
  await c.tickAsync(99)
  d.resolve(7)
  t.equal(await bounded, 7)
  t.equal(c.countTimers(), 0, 'no timer left')
})

t.test('withTimeout: passes a rejection that comes in time', async (t) => {
  const c = clock(t)
  const d = deferred()
  const bounded = withTimeout(d.promise, 100, 'op')
  d.reject(new Error('boom'))
  await t.rejects(bounded, { message: 'boom' })
  t.equal(c.countTimers(), 0)
})

t.test('withTimeout: rejects naming what timed out, at exactly ms; a late outcome is ignored', async (t) => {
  const c = clock(t)
  const d = deferred()
  let outcome: string | undefined
  const bounded = withTimeout(d.promise, 100, 'bus publish').then(() => { outcome = 'ok' }, (err: Error) => { outcome = err.message })
  await c.tickAsync(99)
  t.equal(outcome, undefined, 'still waiting at 99 ms')
  await c.tickAsync(1)
  await bounded
  t.equal(outcome, 'bus publish timed out after 100 ms')
  t.equal(c.countTimers(), 0)
  d.reject(new Error('late')) // handled by the race: no unhandled rejection
})

t.test('settleWithin: true when the promise settles in time, either way; false when the wait runs out', async (t) => {
  const c = clock(t)
  const ok = deferred()
  const failing = deferred()
  const never = deferred()
  const a = settleWithin(ok.promise, 100)
  const b = settleWithin(failing.promise, 100)
  const n = settleWithin(never.promise, 100)
  ok.resolve()
  failing.reject(new Error('refused'))
  t.equal(await a, true)
  t.equal(await b, true, 'a rejection is an outcome too, and is not thrown')
  t.equal(c.countTimers(), 1, 'only the unsettled wait still has its timer')
  await c.tickAsync(100)
  t.equal(await n, false)
  t.equal(c.countTimers(), 0)
})

t.test('settleWithin: unref leaves the process free to exit while waiting', async (t) => {
  const c = clock(t)
  let refed: boolean | undefined
  const original = globalThis.setTimeout
  // The fake clock's timers record ref/unref: spy on the one settleWithin creates.
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const timer = original(...args)
    refed = timer.hasRef()
    const unref = timer.unref.bind(timer)
    timer.unref = () => { refed = false; return unref() }
    return timer
  }) as typeof setTimeout
  t.teardown(() => { globalThis.setTimeout = original })
  const waited = settleWithin(new Promise(() => {}), 50, { unref: true })
  t.equal(refed, false)
  await c.tickAsync(50)
  t.equal(await waited, false)
})
