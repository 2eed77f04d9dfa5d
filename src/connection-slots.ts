// Concurrent /sync connections per client address (SYNC_MAX_CONNECTIONS_PER_IP), counted on
// this replica. A slot is taken before the upgrade and given back when the TCP socket closes,
// which covers every way a connection ends: a normal close, a refused or failed upgrade, a
// client that vanishes mid-handshake.
import type { Socket } from 'node:net'

export class ConnectionSlots {
  private readonly held = new Map<string, number>()
  /**
   * The address each open socket holds a slot for. With one shared 'close' listener this costs a
   * connection one weak entry, where a `once` closure per socket cost about 450 bytes of heap
   * (the closure, its context, the once wrapper and its state: bench memory-per-connection).
   */
  private readonly owners = new WeakMap<Socket, string>()
  private readonly onClose: (this: Socket) => void

  constructor (private readonly maxPerAddress: number) {
    const slots = this
    // A plain function: the emitter calls it with the socket as `this`.
    this.onClose = function (this: Socket) { slots.giveBack(this) }
  }

  /** Takes a slot for `address` until `socket` closes; false when the address has none left. */
  take (address: string, socket: Socket): boolean {
    // One slot per socket. A keep-alive socket carries request after request (a plain GET /sync,
    // or, behind a proxy that reuses its upstream connections, other clients' upgrades): the same
    // address keeps the slot it has; another address takes over, the old one's slot given back.
    const owner = this.owners.get(socket)
    if (owner === address) return true
    if (owner !== undefined) this.giveBack(socket)
    const count = this.held.get(address) ?? 0
    if (count >= this.maxPerAddress) return false
    this.held.set(address, count + 1)
    this.owners.set(socket, address)
    if (socket.destroyed) this.giveBack(socket)
    else if (owner === undefined) socket.on('close', this.onClose)
    return true
  }

  /** Gives the socket's slot back (once, however often it is called). */
  private giveBack (socket: Socket): void {
    const address = this.owners.get(socket)
    if (address === undefined) return
    this.owners.delete(socket)
    const left = (this.held.get(address) ?? 1) - 1
    if (left > 0) this.held.set(address, left)
    else this.held.delete(address)
  }

  /** Open connections of one address (for tests and metrics). */
  count (address: string): number {
    return this.held.get(address) ?? 0
  }
}
