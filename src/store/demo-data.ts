import type { CreateLogoInput } from '../domain.js'
import type { Store } from './types.js'

export const demoLogos: CreateLogoInput[] = [
  { title: 'Aurora', imageUrl: 'https://picsum.photos/seed/aurora/400/300', description: 'Northern lights over a quiet wordmark.', author: 'Mina' },
  { title: 'Beacon', imageUrl: 'https://picsum.photos/seed/beacon/400/300', description: 'A lighthouse reduced to three strokes.', author: 'Jonas' },
  { title: 'Cobalt', imageUrl: 'https://picsum.photos/seed/cobalt/400/300', description: 'Deep blue hexagon, sharp corners.', author: 'Ada' },
  { title: 'Driftwood', imageUrl: 'https://picsum.photos/seed/driftwood/400/300', description: 'Warm, hand-drawn, a little crooked.', author: 'Kofi' },
  { title: 'Ember', imageUrl: 'https://picsum.photos/seed/ember/400/300', description: 'A spark inside a circle.', author: 'Lea' },
  { title: 'Fjord', imageUrl: 'https://picsum.photos/seed/fjord/400/300', description: 'Two mountains, one reflection.', author: 'Sven' }
]

/** Seeds an empty store so the embedded default shows something real. Never touches a non-empty one. */
export async function seedDemoData (store: Store): Promise<number> {
  if (await store.countLogos() > 0) return 0
  for (const logo of demoLogos) await store.createLogo(logo)
  return demoLogos.length
}
