// A change on one channel, serialised once and handed to every local subscriber as is.
import * as ws from 'ws'
import type { ChannelFrame, VotesBatch } from '../protocol.js'
import { encodeFrame } from './frames.js'

/** ws's frame encoder, exported by ws but not declared by @types/ws. */
const { Sender } = ws as unknown as { Sender: { frame (data: Buffer, options: { readOnly: boolean, mask: boolean, rsv1: boolean, opcode: number, fin: boolean }): Buffer[] } }
const TEXT_FRAME = { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true }

/**
 * A broadcast's WebSocket frame (header + its bytes), built once for every recipient, as Socket.IO
 * builds its broadcasts' (see ws issue 617): each recipient then costs a socket write, not a
 * frame encoding of its own. Server frames are not masked, so the frame is the same for all.
 */
export function wsFrameOf (b: Broadcast): readonly Buffer[] {
  b.frame ??= Sender.frame(b.bytes, TEXT_FRAME)
  return b.frame
}

export type ChangeType = ChannelFrame['type']

/** How a change is fanned out (subscriptions.ts `broadcast`). */
export interface BroadcastOptions {
  key?: string
  itemId?: string
  /** When the change was published on the bus (for the delivery-latency sample). */
  publishedAt?: number
}

export interface Broadcast {
  channel: string
  type: ChangeType
  /** The frame's `version`: the channel's, or on the list the changed item's (null for batches). */
  version: number | null
  data: unknown
  /** The serialised frame: the exact bytes every recipient gets. */
  bytes: Buffer
  /** The WebSocket frame around `bytes`, built at the first write (wsFrameOf). */
  frame?: Buffer[]
  /**
   * Backlog key: for a client that cannot keep up, a later broadcast with the same key replaces
   * this one (it carries the whole state the earlier one did). One key per versioned or private
   * channel, one per list item, one for the list's vote batches.
   */
  key: string
  /** List item changes: which item. */
  itemId?: string
  /** Whole channels: the serial read that produced it (see whole-channel.ts). */
  readSeq?: number
}

export function makeBroadcast (
  channel: string,
  type: ChangeType,
  version: number | null,
  data: unknown,
  opts: { key?: string, itemId?: string, readSeq?: number } = {}
): Broadcast {
  const frame: ChannelFrame = { channel, type, version, data }
  return {
    channel,
    type,
    version,
    data,
    bytes: encodeFrame(frame),
    key: opts.key ?? channel,
    ...(opts.itemId !== undefined ? { itemId: opts.itemId } : {}),
    ...(opts.readSeq !== undefined ? { readSeq: opts.readSeq } : {})
  }
}

export const listItemKey = (channel: string, id: string) => `${channel}#${id}`
export const listVotesKey = (channel: string) => `${channel}#votes`

/** A list `votes` batch keeping, per item, only entries newer than `held` says the client has. */
export function filterVotesBatch (b: Broadcast, keep: (id: string, version: number) => boolean): Broadcast | null {
  const batch = b.data as VotesBatch
  const kept: VotesBatch = {}
  let changed = false
  for (const [id, entry] of Object.entries(batch)) {
    if (keep(id, entry.version)) kept[id] = entry
    else changed = true
  }
  if (!changed) return b
  if (Object.keys(kept).length === 0) return null
  return makeBroadcast(b.channel, 'votes', null, kept, { key: b.key })
}

/** Two list `votes` batches as one, newest entry per item. */
export function mergeVotesBatches (older: Broadcast, newer: Broadcast): Broadcast {
  const merged: VotesBatch = { ...(older.data as VotesBatch) }
  for (const [id, entry] of Object.entries(newer.data as VotesBatch)) {
    if (!merged[id] || merged[id].version < entry.version) merged[id] = entry
  }
  return makeBroadcast(newer.channel, 'votes', null, merged, { key: newer.key })
}

/**
 * Which of two broadcasts with the same key a client still needs: the later one, unless it is
 * older than the one held (list items can arrive out of order across replicas); two vote
 * batches merge.
 */
export function keepNewer (held: Broadcast, b: Broadcast): Broadcast {
  if (held.type === 'votes' && b.type === 'votes') return mergeVotesBatches(held, b)
  if (held.version !== null && b.version !== null && b.version < held.version) return held
  return b
}
