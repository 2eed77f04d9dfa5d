import { randomBytes } from 'node:crypto'

/** 24 hex characters, like the seed's Mongo-style `_id`; safe inside channel names. */
export function newLogoId (): string {
  return randomBytes(12).toString('hex')
}
