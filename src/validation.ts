// Request validation with TypeBox's compiled checkers. Bodies are checked as sent (no coercion:
// a number where a string belongs is a 400). Params, querystring and headers arrive as strings,
// so they are converted first — unless every property of the schema is a string anyway, which
// is the common case (`:id`) and skips the conversion's cost on every request.
import type { FastifySchemaCompiler } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { Value } from 'typebox/value'

function onlyStrings (schema: TSchema): boolean {
  const { type, properties } = schema as { type?: unknown, properties?: Record<string, { type?: unknown }> }
  return type === 'object' && properties !== undefined && Object.values(properties).every((p) => p.type === 'string')
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema)
  const convert = httpPart !== 'body' && !onlyStrings(schema)
  return (input: unknown) => {
    const value = convert ? Value.Convert(schema, input) : input
    if (check.Check(value)) return { value }
    return { error: check.Errors(value) as never }
  }
}
