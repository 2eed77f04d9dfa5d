// Concurrent /sync connections per client address (SYNC_MAX_CONNECTIONS_PER_IP), counted on
// this replica. A slot is taken before the upgrade and given back when the TCP socket closes,
// which covers every way a connection ends: a normal close, a refused or failed upgrade, a
// client that vanishes mid-handshake.
import type { Socket } from 'node:net'

export class ConnectionSlots {
  private readonly held = new Map<string, number>()

  constructor (private readonly maxPerAddress: number) {}

  /** Takes a slot for `address` until `socket` closes; false when the address has none left. */
  take (address: string, socket: Socket): boolean {
    const count = this.held.get(address) ?? 0
    if (count >= this.maxPerAddress) return false
    this.held.set(address, count + 1)
    let given = false
    const giveBack = () => {
      if (given) return
      given = true
      const left = (this.held.get(address) ?? 1) - 1
      if (left > 0) this.held.set(address, left)
      else this.held.delete(address)
    }
    if (socket.destroyed) giveBack()
    else socket.once('close', giveBack)
    return true
  }

  /** Open connections of one address (for tests and metrics). */
  count (address: string): number {
    return this.held.get(address) ?? 0
  }
}
