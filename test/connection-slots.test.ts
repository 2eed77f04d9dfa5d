// ConnectionSlots (SYNC_MAX_CONNECTIONS_PER_IP): one slot per socket, given back when it closes,
// whatever requests a keep-alive socket carried before.
import { Socket } from 'node:net'
import t from 'tap'
import { ConnectionSlots } from '../src/connection-slots.js'

t.test('a slot per socket, given back on close', async (t) => {
  const slots = new ConnectionSlots(2)
  const [a, b, c] = [new Socket(), new Socket(), new Socket()]
  t.ok(slots.take('1.1.1.1', a))
  t.ok(slots.take('1.1.1.1', b))
  t.notOk(slots.take('1.1.1.1', c), 'the third is refused')
  a.emit('close')
  t.equal(slots.count('1.1.1.1'), 1)
  t.ok(slots.take('1.1.1.1', c), 'a closed socket gave its slot back')
})

t.test('several requests on one keep-alive socket hold one slot', async (t) => {
  const slots = new ConnectionSlots(3)
  const s = new Socket()
  for (let i = 0; i < 5; i++) t.ok(slots.take('1.1.1.1', s))
  t.equal(slots.count('1.1.1.1'), 1, 'one slot, not five')
  s.emit('close')
  t.equal(slots.count('1.1.1.1'), 0, 'and none after the close')
})

t.test("a proxy's reused upstream socket moves the slot from one client to the next", async (t) => {
  const slots = new ConnectionSlots(3)
  const s = new Socket()
  t.ok(slots.take('1.1.1.1', s))
  t.ok(slots.take('2.2.2.2', s))
  t.equal(slots.count('1.1.1.1'), 0, "the first client's slot is given back")
  t.equal(slots.count('2.2.2.2'), 1)
  s.emit('close')
  t.equal(slots.count('2.2.2.2'), 0, 'nothing held after the close')
})
