// The channel registry (src/sync/registry.ts): who is subscribed to what, each with its
// Subscription, and the parsed channel a new subscriber shares with those already there (one
// object and one name per channel, not one per subscriber).
import t from 'tap'
import { parseChannel } from '../src/sync/channels.js'
import type { SyncConnection } from '../src/sync/connection.js'
import { ChannelRegistry } from '../src/sync/registry.js'
import { SyncStats } from '../src/sync/stats.js'
import { Subscription } from '../src/sync/subscription.js'

const conn = () => ({}) as unknown as SyncConnection

t.test('subscribers with their subscriptions; the parsed channel is shared while anyone holds it', async (t) => {
  const stats = new SyncStats()
  const registry = new ChannelRegistry(stats)
  t.equal(registry.channelOf('logos'), null, 'nobody there: nothing to share')
  const [a, b] = [conn(), conn()]
  const subA = new Subscription(parseChannel('logos')!)
  registry.join('logos', a, subA)
  t.equal(registry.channelOf('logos'), subA.channel, 'the first subscriber\'s parsed channel')
  const subB = new Subscription(registry.channelOf('logos')!)
  registry.join('logos', b, subB)
  t.equal(subB.channel, subA.channel, 'one object for both')
  t.same([...registry.subscribers('logos')!.entries()], [[a, subA], [b, subB]], 'each connection with its own subscription')
  const again = new Subscription(subA.channel)
  registry.join('logos', a, again)
  t.equal(registry.subscribers('logos')!.get(a), again, 'a repeat subscribe replaces the subscription')
  t.equal(stats.subscriptions, 2, 'and is counted once')
  t.notOk(registry.leave('logos', a), 'b is still there')
  t.ok(registry.leave('logos', b), 'the last one left')
  t.equal(registry.channelOf('logos'), null, 'nothing held for a channel nobody is on')
  t.equal(stats.channels, 0)
})
