// The deployment kit, checked without Docker or Kubernetes: deploy/compose.yaml through dclint
// (the Compose schema plus best-practice rules) and against the app's own config, deploy/k8s/
// through the Kubernetes schemas (kubernetes-models) and against the app's routes, ports and
// config schema, and deploy/nginx.conf as the tests run it (only addresses substituted).
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Service } from 'kubernetes-models/v1/Service'
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { EnvSchema, loadConfig } from '../src/config.js'
import { imageEnv } from './dockerfile.js'
import { JWT_SECRET, NGINX_SITE, ROOT, build, nginxSiteFor } from './helper.js'

const DEPLOY = join(ROOT, 'deploy')
const K8S = join(DEPLOY, 'k8s')
const schemaVariables = new Set(Object.keys(EnvSchema.properties))
const defaults = loadConfig({ DATA_DIR: '/tmp/logo-sync-deploy-test' })

/** Milliseconds in a Docker/Compose duration (`15s`, `1m30s`, `500ms`). */
function durationMs (text: string): number {
  let ms = 0
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']
  return ms
}

/** Compose's `${VAR:?msg}` / `${VAR:-default}` / `${VAR}` with the given values (unset: the default). */
const interpolate = (text: string, vars: Record<string, string>) =>
  text.replace(/\$\{([A-Z_]+)(?::([?-])([^}]*))?\}/g, (_m, name: string, op?: string, arg?: string) => vars[name] ?? (op === '-' ? arg! : ''))

t.test('compose: dclint passes (schema and rules)', async (t) => {
  const lint = spawnSync(process.execPath, [join(ROOT, 'node_modules/dclint/bin/dclint.cjs'), join(DEPLOY, 'compose.yaml')], { encoding: 'utf8', timeout: 60_000 })
  t.equal(lint.status, 0, `dclint: ${lint.stdout}${lint.stderr}`)
})

t.test('compose: nginx alone is reachable; three replicas that boot with the shipped settings', async (t) => {
  const vars = { JWT_SECRET, POSTGRES_PASSWORD: 'pw' }
  const compose = parse(interpolate(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), vars), { merge: true }) as {
    services: Record<string, Record<string, unknown> & { environment?: Record<string, string>, env_file?: string, ports?: string[], healthcheck?: { test: string[] }, depends_on?: Record<string, { condition: string }>, volumes?: string[] }>
    volumes: Record<string, unknown>
  }
  const { services } = compose
  t.same(Object.entries(services).filter(([, s]) => s.ports).map(([name]) => name), ['nginx'], 'only nginx publishes a port')
  t.same(services.nginx.ports, ['127.0.0.1:8080:80'])

  const replicas = Object.keys(services).filter((name) => /^app\d$/.test(name))
  t.same(replicas, ['app1', 'app2', 'app3'], 'three replicas')
  const site = readFileSync(NGINX_SITE, 'utf8')
  const blocks = [...site.matchAll(/^upstream\s+(\S+)\s*\{([^}]*)\}/gm)]
  t.same(blocks.map((b) => b[1]), ['logo_sync', 'logo_sync_ws'], 'two upstreams: REST and /sync')
  for (const [, name, body] of blocks) {
    const upstreams = [...body!.matchAll(/^\s*server\s+(\S+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`)
    t.same(upstreams, replicas.map((r) => `${r}:${defaults.PORT}`), `${name} balances over exactly these replicas on the app port`)
  }
  t.ok(services.nginx.volumes!.includes('./nginx.conf:/etc/nginx/conf.d/default.conf:ro'), 'compose runs the shipped nginx.conf')

  const example = parseEnv(readFileSync(join(ROOT, '.env.example'), 'utf8'))
  for (const name of replicas) {
    const s = services[name]
    t.equal(resolve(DEPLOY, s.env_file!), join(ROOT, '.env.example'), `${name}: env_file is .env.example`)
    t.ok(s.healthcheck!.test.join(' ').includes('/readyz'), `${name}: healthcheck on /readyz`)
    t.match(s.depends_on, { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } }, `${name}: waits for healthy PostgreSQL and Redis`)
    for (const variable of Object.keys(s.environment!)) t.ok(schemaVariables.has(variable), `${name}: ${variable} is a config variable`)
    // What the container's config sees: image ENV < env_file < environment.
    const config = loadConfig({ ...imageEnv(), ...example, ...s.environment })
    t.equal(config.NODE_ENV, 'production')
    t.equal(config.HOST, '0.0.0.0')
    t.match(config.redis, { mode: 'standalone', url: 'redis://redis:6379' })
    t.match(config.DATABASE_URL, /^postgres:\/\/logosync:pw@postgres:5432\/logosync$/)
    t.equal(config.trustProxy, 1, `${name}: trusts exactly one proxy hop (nginx)`)
    t.ok(durationMs(s.stop_grace_period as string) > config.SHUTDOWN_GRACE_MS, `${name}: Docker waits longer (${s.stop_grace_period}) than the shutdown may take (${config.SHUTDOWN_GRACE_MS} ms)`)
  }
  t.equal(services.app1.environment!.SEED_DEMO_DATA, 'true', 'app1 seeds the demo logos')
  for (const name of ['app2', 'app3']) t.match(services[name].depends_on, { app1: { condition: 'service_healthy' } }, `${name} starts after app1, so nothing races to seed`)
  for (const mount of Object.values(services).flatMap((s) => s.volumes ?? [])) {
    const source = mount.split(':')[0]
    if (!source.startsWith('.')) t.ok(source in compose.volumes, `named volume ${source} is declared`)
  }
  t.ok('pgdata' in compose.volumes, 'PostgreSQL keeps its data in a named volume')
})

interface K8sDoc { kind: string, metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }, [key: string]: unknown }

function k8sDocs (): K8sDoc[] {
  return readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS() as K8sDoc))
}

t.test('k8s: every manifest is valid against the Kubernetes schemas', async (t) => {
  const models: Record<string, new (data: never) => { validate (): void }> = { ConfigMap, Service, Deployment, Ingress, PodDisruptionBudget }
  const docs = k8sDocs()
  t.same(docs.map((d) => d.kind).sort(), Object.keys(models).sort(), 'a ConfigMap, Deployment, Service, Ingress and PodDisruptionBudget')
  for (const doc of docs) {
    t.doesNotThrow(() => new models[doc.kind](doc as never).validate(), `${doc.kind} ${doc.metadata.name}`)
  }
  t.throws(() => new Deployment({ ...docs.find((d) => d.kind === 'Deployment'), spec: { replicas: 'three' } } as never).validate(), 'the validator does refuse a bad manifest')
  const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[] }
  t.same(kustomization.resources.slice().sort(), readdirSync(K8S).filter((f) => f !== 'kustomization.yaml').sort(), 'kustomization.yaml lists every manifest')
})

t.test('k8s: probes, ports, env and shutdown timing match the app', async (t) => {
  const docs = k8sDocs()
  const of = <T>(kind: string) => docs.find((d) => d.kind === kind) as unknown as T
  interface Probe { httpGet: { path: string, port: string | number } }
  interface Container {
    ports: { name: string, containerPort: number }[]
    env: { name: string, value: string }[]
    envFrom: { configMapRef?: { name: string }, secretRef?: { name: string } }[]
    livenessProbe: Probe
    readinessProbe: Probe
    startupProbe: Probe
    lifecycle: { preStop: { exec: { command: string[] } } }
  }
  const deployment = of<{ spec: { selector: { matchLabels: Record<string, string> }, template: { metadata: { labels: Record<string, string> }, spec: { terminationGracePeriodSeconds: number, containers: Container[] } } } }>('Deployment')
  const configMap = of<{ metadata: { name: string }, data: Record<string, string> }>('ConfigMap')
  const [container] = deployment.spec.template.spec.containers

  // Env: every name is a config variable; the config boots with the ConfigMap over the image.
  for (const name of [...container.env.map((e) => e.name), ...Object.keys(configMap.data)]) t.ok(schemaVariables.has(name), `${name} is a config variable`)
  t.ok(container.envFrom.some((e) => e.configMapRef?.name === configMap.metadata.name), 'the container reads the ConfigMap')
  const env = { ...imageEnv(), ...configMap.data, ...Object.fromEntries(container.env.map((e) => [e.name, e.value])) }
  const config = loadConfig({ ...env, JWT_SECRET, DATABASE_URL: 'postgres://u:p@db/logosync', REDIS_URL: 'redis://redis:6379' })

  // Probes: on the container's port (the config's PORT), on routes that answer as they should.
  const port = container.ports.find((p) => p.name === 'http')!
  t.equal(port.containerPort, config.PORT, `containerPort is PORT (${config.PORT})`)
  const probes = { liveness: container.livenessProbe, readiness: container.readinessProbe, startup: container.startupProbe }
  for (const [kind, probe] of Object.entries(probes)) t.equal(probe.httpGet.port, 'http', `${kind} probe on the app port`)
  t.equal(container.livenessProbe.httpGet.path, '/healthz', 'liveness: /healthz (the process only, never the dependencies)')
  t.equal(container.readinessProbe.httpGet.path, '/readyz', 'readiness: /readyz (dependencies, and the drain)')
  const app = await build(t)
  for (const [kind, probe] of Object.entries(probes)) {
    t.equal((await app.inject({ url: probe.httpGet.path })).statusCode, 200, `${kind} probe path ${probe.httpGet.path} answers 200 on a healthy app`)
  }

  // Shutdown: preStop, then the app's whole shutdown, inside the grace period.
  const [sleep, seconds] = container.lifecycle.preStop.exec.command
  t.equal(sleep, 'sleep')
  const budgetMs = Number(seconds) * 1000 + config.SHUTDOWN_GRACE_MS
  t.ok(deployment.spec.template.spec.terminationGracePeriodSeconds * 1000 > budgetMs, `terminationGracePeriodSeconds outlasts preStop + SHUTDOWN_GRACE_MS (${budgetMs} ms)`)

  // Service, PodDisruptionBudget and Ingress point at these pods and this port.
  const labels = deployment.spec.template.metadata.labels
  t.match(labels, deployment.spec.selector.matchLabels, 'the Deployment selects its own pods')
  const service = of<{ metadata: { name: string }, spec: { selector: Record<string, string>, ports: { name: string, targetPort: string }[] } }>('Service')
  t.match(labels, service.spec.selector, 'the Service selects the pods')
  t.equal(service.spec.ports[0].targetPort, port.name, 'the Service targets the app port')
  const pdb = of<{ spec: { maxUnavailable: number, selector: { matchLabels: Record<string, string> } } }>('PodDisruptionBudget')
  t.match(labels, pdb.spec.selector.matchLabels, 'the PodDisruptionBudget covers the pods')
  t.equal(pdb.spec.maxUnavailable, 1, 'one replica at a time')
  const ingress = of<{ metadata: { annotations: Record<string, string> }, spec: { rules: { http: { paths: { backend: { service: { name: string, port: { name: string } } } }[] } }[] } }>('Ingress')
  const backend = ingress.spec.rules[0].http.paths[0].backend.service
  t.same([backend.name, backend.port.name], [service.metadata.name, service.spec.ports[0].name], 'the Ingress routes to the Service')
  const annotations = ingress.metadata.annotations
  for (const timeout of ['proxy-read-timeout', 'proxy-send-timeout']) {
    t.ok(Number(annotations[`nginx.ingress.kubernetes.io/${timeout}`]) * 1000 > 2 * config.SYNC_HEARTBEAT_MS, `${timeout} is well above SYNC_HEARTBEAT_MS`)
  }
  t.notOk(Object.keys(annotations).some((a) => /affinity|sticky/.test(a)), 'no session affinity')
})

t.test('nginx.conf: the tests run it with only the addresses replaced', async (t) => {
  const shipped = readFileSync(NGINX_SITE, 'utf8').split('\n')
  const tested = nginxSiteFor([41001, 41002], 41000).split('\n')
  const removed = shipped.filter((line) => !tested.includes(line))
  const added = tested.filter((line) => !shipped.includes(line))
  t.ok(removed.every((l) => /^\s*(server\s+app\d:3000|listen\s+80;)/.test(l)), `only server and listen lines replaced: ${JSON.stringify(removed)}`)
  const servers = ['server 127.0.0.1:41001 max_fails=1 fail_timeout=5s;', 'server 127.0.0.1:41002 max_fails=1 fail_timeout=5s;']
  t.same(added.map((l) => l.trim()), [...servers, ...servers, 'listen 127.0.0.1:41000;'], 'both upstreams (REST and /sync) get the test replicas')
  const text = shipped.join('\n')
  t.match(text, /location = \/sync \{[^}]*proxy_pass http:\/\/logo_sync_ws;/, '/sync has an upstream of its own, so its 503s do not mark replicas down for REST')
  t.match(text, /location \/ \{[^}]*proxy_pass http:\/\/logo_sync;/, 'REST goes to the other')
  // The /sync location's (REST has a shorter one at server level).
  const readTimeout = /location = \/sync \{[^}]*proxy_read_timeout\s+(\d+)(s|m|h)?;/.exec(text)!
  t.ok(durationMs(`${readTimeout[1]}${readTimeout[2] ?? 's'}`) > 2 * defaults.SYNC_HEARTBEAT_MS, 'proxy_read_timeout well above SYNC_HEARTBEAT_MS')
  t.match(text, /proxy_set_header Upgrade \$http_upgrade;/, 'passes the WebSocket upgrade')
  t.match(text, /proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/, 'X-Forwarded-For for TRUST_PROXY')
  t.notMatch(text, /^\s*(ip_hash|hash|sticky)\b/m, 'no sticky sessions')
})
