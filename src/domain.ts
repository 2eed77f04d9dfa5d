// Schemas once: REST routes, the /sync protocol validator and the OpenAPI document use these
// TypeBox schemas and the types derived from them; the client package's data types are checked
// against them at compile time (src/protocol.ts).
import { LOGO_ID_PATTERN, USER_ID_PATTERN } from '@logo-sync/client/protocol'
import { Type, type Static } from 'typebox'

/** Ids appear inside channel names, so their patterns belong to the shared wire vocabulary. */
export { LOGO_ID_PATTERN, USER_ID_PATTERN }
/**
 * Text a title or an author may hold: no control character (C0, DEL, C1: NUL is refused by
 * PostgreSQL and kept by SQLite, so the stores would disagree; none belongs in a title) and no
 * lone UTF-16 surrogate (both stores turn it into U+FFFD, so what is read back would differ from
 * what was written). Patterns are compiled with the `u` flag, where `\p{Cs}` matches only a lone
 * surrogate: a well-formed pair is one code point (emoji are fine).
 */
export const SINGLE_LINE_TEXT_PATTERN = '^[^\\p{Cc}\\p{Cs}]*$'
/** The same for a description, which may also hold tabs and line breaks. */
export const MULTI_LINE_TEXT_PATTERN = '^(?:[\\t\\n\\r]|[^\\p{Cc}\\p{Cs}])*$'
/**
 * An http(s) URL with a host, and nothing a URL cannot carry unescaped: no whitespace, quotes,
 * angle brackets, backslash, caret, backtick, braces or pipe, no control or format character (a
 * bidi override could disguise it) and no lone surrogate. Other non-ASCII is allowed (an IRI; browsers percent-encode it).
 */
const URL_CHAR = '[^\\s"\'<>\\\\^`{|}\\p{Cc}\\p{Cf}\\p{Cs}]'
export const HTTP_URL_PATTERN = `^https?://(?:${URL_CHAR.replace('[^', '[^/?#')})+(?:[/?#]${URL_CHAR}*)?$`

/** What each text pattern means, for validation errors in plain words. */
export const PATTERN_WORDS: Record<string, string> = {
  [SINGLE_LINE_TEXT_PATTERN]: 'must not contain control characters or unpaired surrogates',
  [MULTI_LINE_TEXT_PATTERN]: 'must not contain control characters (other than tab and line breaks) or unpaired surrogates',
  [HTTP_URL_PATTERN]: 'must be an http(s) URL with a host and no spaces, quotes, control characters or unpaired surrogates'
}

export const LogoId = Type.String({ pattern: LOGO_ID_PATTERN, description: 'Logo id' })
export const UserId = Type.String({ pattern: USER_ID_PATTERN })
export const Role = Type.Union([Type.Literal('user'), Type.Literal('admin')])
export type Role = Static<typeof Role>

/** A cast or retracted vote, plus whether it changed anything (a repeat does not). */
export interface VoteOutcome extends VoteResult {
  changed: boolean
}

/**
 * Who a REST request or a /sync connection acts as: the claims of a verified token. The auth
 * plugin produces it; the sync hub and the routes only read it.
 */
export interface Principal {
  sub: string
  role: Role
  /** Expiry, in seconds since the epoch (the JWT `exp` claim); absent when the token never expires. */
  exp?: number
}

const Title = Type.String({ minLength: 1, maxLength: 200, pattern: SINGLE_LINE_TEXT_PATTERN })
const ImageUrl = Type.String({ pattern: HTTP_URL_PATTERN, maxLength: 2048, description: 'http(s) URL' })
const Description = Type.String({ maxLength: 2000, pattern: MULTI_LINE_TEXT_PATTERN })
const Author = Type.String({ maxLength: 200, pattern: SINGLE_LINE_TEXT_PATTERN })

export const Logo = Type.Object({
  _id: LogoId,
  title: Type.String(),
  imageUrl: Type.String(),
  description: Type.Optional(Type.String()),
  author: Type.Optional(Type.String()),
  totalVotes: Type.Integer({ minimum: 0 }),
  version: Type.Integer({ minimum: 1 }),
  createdAt: Type.String({ description: 'ISO 8601' }),
  updatedAt: Type.String({ description: 'ISO 8601' })
}, { $id: 'Logo', additionalProperties: false })
export type Logo = Static<typeof Logo>

export const LogoList = Type.Object({ items: Type.Array(Logo) }, { additionalProperties: false })

export const CreateLogoBody = Type.Object({
  title: Title,
  imageUrl: ImageUrl,
  description: Type.Optional(Description),
  author: Type.Optional(Author)
}, { additionalProperties: false })
export type CreateLogoInput = Static<typeof CreateLogoBody>

export const UpdateLogoBody = Type.Object({
  title: Type.Optional(Title),
  imageUrl: Type.Optional(ImageUrl),
  description: Type.Optional(Type.Union([Description, Type.Null()])),
  author: Type.Optional(Type.Union([Author, Type.Null()]))
}, { additionalProperties: false, minProperties: 1 })
export type UpdateLogoInput = Static<typeof UpdateLogoBody>

export const LogoParams = Type.Object({ id: LogoId }, { additionalProperties: false })

export const VoteResult = Type.Object({
  logoId: LogoId,
  totalVotes: Type.Integer({ minimum: 0 }),
  voted: Type.Boolean(),
  version: Type.Integer({ minimum: 1 })
}, { additionalProperties: false })
export type VoteResult = Static<typeof VoteResult>

export const VoteCount = Type.Object({
  logoId: LogoId,
  totalVotes: Type.Integer({ minimum: 0 }),
  version: Type.Integer({ minimum: 1 })
}, { additionalProperties: false })
export type VoteCount = Static<typeof VoteCount>

export const MyVotes = Type.Object({ logoIds: Type.Array(LogoId) }, { additionalProperties: false })

export const Voting = Type.Object({
  deadline: Type.Union([Type.String(), Type.Null()]),
  open: Type.Boolean(),
  serverTime: Type.String()
}, { additionalProperties: false })
export type Voting = Static<typeof Voting>

/** The deadline as stored: its own version, independent of any logo. */
export interface DeadlineState {
  deadline: string | null
  version: number
}

export const DeadlineBody = Type.Object({
  deadline: Type.Union([Type.String({ format: 'date-time' }), Type.Null()])
}, { additionalProperties: false })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.Optional(Type.String())
}, { $id: 'ErrorResponse' })
export type ErrorResponse = Static<typeof ErrorResponse>

export const DevTokenBody = Type.Object({
  sub: UserId,
  role: Type.Optional(Role)
}, { additionalProperties: false })

export const TokenResponse = Type.Object({ token: Type.String() }, { additionalProperties: false })

/** How a page can sign in here: whether `POST /auth/dev-token` exists (no JWT_SECRET, not production). */
export const AuthOptions = Type.Object({ devTokens: Type.Boolean() }, { additionalProperties: false })

/** Whether votes are accepted at `now` for a given deadline. */
export function isVotingOpen (deadline: string | null, now = Date.now()): boolean {
  return deadline === null || now < Date.parse(deadline)
}
