// A logo's image, or a generated placeholder when it cannot load (offline, broken URL).
import { useState } from 'react'

export function LogoImage ({ src, title }: { src: string, title: string }) {
  const [failed, setFailed] = useState(false)
  const [loadedSrc, setLoadedSrc] = useState(src)
  if (loadedSrc !== src) {
    // A new URL gets a new chance.
    setLoadedSrc(src)
    setFailed(false)
  }
  if (failed) return <Placeholder title={title} />
  return <img className='art' src={src} alt={title} onError={() => setFailed(true)} />
}

/** Initials on a gradient whose hue comes from the title, so each logo keeps its colour. */
export function Placeholder ({ title }: { title: string }) {
  let hash = 0
  for (const ch of title) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0
  const hue = hash % 360
  const initials = title.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).slice(0, 2).map((w) => w[0]!.toUpperCase()).join('') || '?'
  const id = `g${hash.toString(36)}`
  return (
    <svg className='art placeholder' viewBox='0 0 400 300' role='img' aria-label={`${title} (image unavailable)`}>
      <defs>
        <linearGradient id={id} x1='0' y1='0' x2='1' y2='1'>
          <stop offset='0' stopColor={`hsl(${hue} 70% 55%)`} />
          <stop offset='1' stopColor={`hsl(${(hue + 50) % 360} 70% 35%)`} />
        </linearGradient>
      </defs>
      <rect width='400' height='300' fill={`url(#${id})`} />
      <circle cx='200' cy='150' r='78' fill='white' opacity='0.15' />
      <text x='200' y='150' dy='0.35em' textAnchor='middle' fontSize='72' fontWeight='700' fill='white' fontFamily='system-ui, sans-serif'>{initials}</text>
    </svg>
  )
}
