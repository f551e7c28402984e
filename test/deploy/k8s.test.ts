// deploy/k8s/ checked offline: `kubectl kustomize` renders it (kubectl's client-side dry run needs an API server's
// discovery even with --dry-run=client, so it cannot run here), every object validates against the schema the API
// server would use (kubernetes-models' and @kubernetes-models/gateway-api's, generated from the Kubernetes and Gateway
// API OpenAPI documents; the InferencePool against its CRD's openAPIV3Schema, unknown fields refused), and the
// pieces agree with each other and with fury (labels, ports, probes, the drain timing, the serve flags).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { SERVE_HELP } from '../../cli/serve.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any };

async function manifests(): Promise<Obj[]> {
  const out: Obj[] = [];
  for (const f of (await readdir(K8S)).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml').sort())
    for (const d of parseAllDocuments(await readFile(join(K8S, f), 'utf8'))) {
      assert.deepEqual(d.errors, [], f);
      out.push(d.toJS() as Obj);
    }
  return out;
}

/** The CRD's schema with unknown fields refused (the API server prunes them; strict field validation rejects them). */
async function inferencePoolSchema(): Promise<(o: unknown) => string | null> {
  const crd = parseAllDocuments(
    await readFile(join(ROOT, 'test', 'deploy', 'fixtures', 'inferencepools.crd.yaml'), 'utf8'),
  )[0]!.toJS();
  const schema = crd.spec.versions.find((v: { name: string }) => v.name === 'v1').schema.openAPIV3Schema;
  const strict = (s: any): any => {
    if (Array.isArray(s)) return s.map(strict);
    if (!s || typeof s !== 'object') return s;
    const o: any = {};
    for (const [k, v] of Object.entries(s)) if (!k.startsWith('x-kubernetes')) o[k] = strict(v);
    if (o.type === 'object' && o.properties && o.additionalProperties === undefined && k8sOpen(s) === false)
      o.additionalProperties = false;
    return o;
  };
  const k8sOpen = (s: any) => s['x-kubernetes-preserve-unknown-fields'] === true;
  const top = strict(schema);
  top.properties.metadata = { type: 'object' }; // ObjectMeta: checked by the API server's own schema
  const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(top);
  return (o) => (validate(o) ? null : JSON.stringify(validate.errors));
}

/** An object's validation error, or null. */
async function check(o: Obj, pool: (o: unknown) => string | null): Promise<string | null> {
  if (o.kind === 'InferencePool') return pool(o);
  const [g, v] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const mod =
    g === 'gateway.networking.k8s.io'
      ? await import(`@kubernetes-models/gateway-api/${g}/${v}`)
      : await import(`kubernetes-models/${g ? g + '/' : ''}${v}`);
  const Model = mod[o.kind];
  if (!Model) return `no schema for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o).validate();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

test('kubectl kustomize renders deploy/k8s: every object of every file', async () => {
  const r = spawnSync('kubectl', ['kustomize', K8S], { encoding: 'utf8' });
  assert.equal(r.error, undefined, 'kubectl is not installed: apt-get install kubernetes-client (.ci/run does)');
  assert.equal(r.status, 0, r.stderr);
  const rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
  const names = (xs: Obj[]) => xs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  assert.deepEqual(names(rendered), names(await manifests()));
});

test('every manifest validates against its API schema; a broken copy does not', async () => {
  const pool = await inferencePoolSchema();
  const all = await manifests();
  assert.ok(all.length >= 12);
  for (const o of all) assert.equal(await check(o, pool), null, `${o.kind}/${o.metadata.name}`);
  // the validators bite: a wrong type, a missing required field, an unknown InferencePool field
  const dep = structuredClone(all.find((o) => o.kind === 'Deployment' && o.metadata.name === 'fury')!);
  dep.spec.replicas = 'three';
  assert.match((await check(dep, pool)) ?? '', /replicas/);
  const ip = structuredClone(all.find((o) => o.kind === 'InferencePool')!);
  delete ip.spec.selector;
  assert.ok(await check(ip, pool));
  const ip2 = structuredClone(all.find((o) => o.kind === 'InferencePool')!);
  ip2.spec.targetPortNumber = 8080; // v1alpha2's spelling
  assert.match((await check(ip2, pool)) ?? '', /additionalProperties/);
});

test('the manifests agree with each other and with fury serve', async () => {
  const all = await manifests();
  const get = (kind: string, name: string) => all.find((o) => o.kind === kind && o.metadata.name === name)!;
  const fury = get('Deployment', 'fury'),
    pod = fury.spec.template,
    c = pod.spec.containers[0];
  const labels = pod.metadata.labels;
  for (const [kind, sel] of [
    ['Service', get('Service', 'fury').spec.selector],
    ['PodDisruptionBudget', get('PodDisruptionBudget', 'fury').spec.selector.matchLabels],
    ['InferencePool', get('InferencePool', 'fury').spec.selector.matchLabels],
    ['Deployment', fury.spec.selector.matchLabels],
  ])
    for (const [k, v] of Object.entries(sel)) assert.equal(labels[k], v, `${kind} selects ${k}=${v}`);
  const port = c.ports.find((p: { name: string }) => p.name === 'http').containerPort;
  assert.deepEqual(get('InferencePool', 'fury').spec.targetPorts, [{ number: port }]);
  assert.ok(c.args.includes(`--port=${port}`));
  // every serve flag exists
  for (const a of c.args.filter((s: string) => s.startsWith('--')))
    assert.ok(SERVE_HELP.includes(a.split('=')[0] + ' '), `fury serve has no ${a}`);
  // readiness follows /health (503 while loading or draining); the grace period covers preStop and the drain
  assert.equal(c.readinessProbe.httpGet.path, '/health');
  assert.equal(c.livenessProbe.httpGet.path, '/health/live');
  const drain = Number(c.args.find((s: string) => s.startsWith('--drain-timeout=')).split('=')[1]);
  const preStop = Number(c.lifecycle.preStop.exec.command[1]);
  assert.ok(pod.spec.terminationGracePeriodSeconds > preStop + drain, 'grace period > preStop + drain timeout');
  assert.ok(c.resources.limits['nvidia.com/gpu']);
  // the endpoint picker serves this pool and scrapes the names fury exports
  const epp = get('Deployment', 'fury-epp').spec.template.spec.containers[0].args as string[];
  assert.ok(epp.includes('--pool-name=fury'));
  const svc = get('Service', 'fury-epp').spec.ports[0].port;
  assert.equal(get('InferencePool', 'fury').spec.endpointPickerRef.port.number, svc);
  for (const m of ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc'])
    assert.ok(
      epp.some((a) => a.endsWith(`=${m}`)),
      m,
    );
  const hpa = get('HorizontalPodAutoscaler', 'fury').spec;
  assert.deepEqual([hpa.scaleTargetRef.kind, hpa.scaleTargetRef.name], ['Deployment', 'fury']);
  assert.ok(c.args.some((a: string) => a.startsWith('--state-cache-redis=redis://fury-redis:')));
});
