import fp from 'fastify-plugin'
import { createStore } from '../src/store/index.js'
import { seedDemoData } from '../src/store/demo-data.js'
import type { Store } from '../src/store/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

/** Opens the store the config asks for (migrating it), seeds demo data if asked, closes it on shutdown. */
export default fp(async function storePlugin (fastify) {
  const store = await createStore(fastify.config)
  fastify.decorate('store', store)
  fastify.addHook('onClose', async () => { await store.close() })
  if (fastify.config.SEED_DEMO_DATA) {
    const seeded = await seedDemoData(store)
    if (seeded > 0) fastify.log.info({ seeded }, 'seeded demo logos into an empty store')
  }
  fastify.log.info({ store: store.kind }, 'store ready')
}, { name: 'store', dependencies: ['config'] })
