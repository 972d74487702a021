/**
 * The Helm chart (helm/roomcast), with the real helm: lint, render, and check what it renders.
 *
 * - `helm lint --strict` over ci/default-values.yaml and ci/production-values.yaml;
 * - `helm template` of both (the production file with and without the Prometheus Operator API),
 *   and of a "variant" release that takes the other branches (chart-managed Secret with a PEM
 *   key, external Redis URL, admin UI, webhooks, console, HTTPRoute, PrometheusRule without extra
 *   labels);
 * - every rendered document is validated against its schema (kubernetes-models and the CRD
 *   models; an unknown kind fails), and type-checked against the models' TypeScript types,
 *   which catches the unknown fields (typos) the JSON schemas let through;
 * - the SRE rules: probes, grace periods, security contexts, settings the app knows and
 *   accepts (its own loadConfig), routes, monitors, alert rules and dashboards equal to grafana/;
 * - values.schema.json refuses bad values, and rendering fails clearly without Redis, without
 *   a key, with webhook URLs but no secret, or with a grace period that cuts the drain short.
 *
 * Needs helm on PATH (or /root/go/bin/helm); without it the test is skipped outside CI. In CI
 * a missing helm is a failure. Every helm command runs once, in parallel, before the checks.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import {
  isMap,
  parse as parseYaml,
  parseAllDocuments,
  parseDocument,
  stringify as stringifyYaml,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
import {
  loadConfig,
  requireKeySetting,
  requireRedisSetting,
  requireServerSettings,
} from "../../src/config/load-config.js";
import { SETTINGS, type SettingSpec } from "../../src/config/settings.js";
import { createTokenVerifier } from "../../src/auth/token-verifier.js";
import { chartFileCopies } from "../../scripts/sync-chart-files.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHART = join(ROOT, "helm", "roomcast");
const DEFAULT_VALUES = join(CHART, "ci", "default-values.yaml");
const PRODUCTION_VALUES = join(CHART, "ci", "production-values.yaml");
const RELEASE = "rc";
const NAMESPACE = "realtime";
const FULLNAME = `${RELEASE}-roomcast`;
/** helm built with `go install` reports Kubernetes v1.20 by default, below the chart's kubeVersion. */
const KUBE_VERSION = "1.30.0";
const OPERATOR_API = ["--api-versions", "monitoring.coreos.com/v1"];
const GATEWAY_API = ["--api-versions", "gateway.networking.k8s.io/v1"];
/** A bcrypt hash (of "pw", cost 4), as in test/unit/config.test.ts. */
const BCRYPT = "$2a$04$OBCLNttAtWFyRrq3SasuuuFjLClqXzXEYJpHcuDGYeFLaR/Lb3eu6";
/** The variant's webhook secret (chart-managed Secret). */
const WEBHOOK_SECRET = "variant-webhook-secret-of-at-least-32-bytes";

/** Environment variables the chart sets that are not in SETTINGS (README, Configuration). */
const EXTRA_ENV = new Set(["ROOMCAST_CONFIG"]);
/** The settings a user may set (not those roomcast start sets for its own processes). */
const USER_SETTINGS: SettingSpec[] = Object.values(SETTINGS).filter((s: SettingSpec) => !s.internal);
/** Settings the chart sets from its own values, so values.schema.json refuses them in `settings`. */
const CHART_MANAGED = new Set([
  "PORT",
  "HOST",
  "REDIS_URL",
  "ROOMCAST_JWT_SECRET",
  "ROOMCAST_JWT_PUBLIC_KEY_FILE",
  "ROOMCAST_JWKS_FILE",
  "ROOMCAST_JWT_ISSUER",
  "ROOMCAST_JWT_AUDIENCE",
  "ROOMCAST_NODE_ID",
  "ROOMCAST_DRAIN_S",
  "ROOMCAST_TRUST_PROXY",
  "ROOMCAST_CONSOLE",
  "ROOMCAST_ADMIN_USER",
  "ROOMCAST_ADMIN_PASSWORD_HASH",
  "ROOMCAST_ADMIN_READONLY",
  "ROOMCAST_WORKER_CONCURRENCY",
  "ROOMCAST_PROCESSORS",
  "ROOMCAST_SAMPLE_PROCESSORS",
  "ROOMCAST_WEBHOOK_URLS",
  "ROOMCAST_WEBHOOK_SECRET",
  "ROOMCAST_WEBHOOK_EVENTS",
]);
/** Dummy values of the keys of a Secret the chart does not render (existingSecret). */
const DUMMY_SECRET: Record<string, string> = {
  REDIS_URL: "rediss+cluster://default:pw@redis-0.example.internal:6379,redis-1.example.internal:6379",
  ROOMCAST_JWT_SECRET: "dummy-secret-of-at-least-32-bytes",
  ROOMCAST_ADMIN_PASSWORD_HASH: BCRYPT,
  ROOMCAST_WEBHOOK_SECRET: "dummy-webhook-secret-of-at-least-32-bytes",
  "jwt-public.pem": "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
  "jwks.json": '{"keys": []}',
};

// ---------------------------------------------------------------------------------------------
// helm

function findHelm(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "helm"))) return join(dir, "helm");
  }
  return existsSync("/root/go/bin/helm") ? "/root/go/bin/helm" : undefined;
}

const HELM = findHelm();
let helmHome = tmpdir();
// In CI a missing helm fails the "helm is installed" test below instead of skipping everything.
const skip =
  !HELM && !process.env.CI
    ? "no helm binary on PATH or at /root/go/bin/helm (go install helm.sh/helm/v3/cmd/helm@v3.22.0): skipped outside CI"
    : false;

interface HelmResult {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

function helm(args: string[]): Promise<HelmResult> {
  // Its own cache and config directories: nothing read from or written to the user's.
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
  };
  return new Promise((resolve) => {
    execFile(HELM ?? "helm", args, { maxBuffer: 64 * 1024 * 1024, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 127;
      resolve({ args, code, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? "") });
    });
  });
}

function template(values: string[], extra: string[] = [], chart = CHART): Promise<HelmResult> {
  return helm([
    "template",
    RELEASE,
    chart,
    "--namespace",
    NAMESPACE,
    "--kube-version",
    KUBE_VERSION,
    ...values.flatMap((v) => ["--values", v]),
    ...extra,
  ]);
}

// ---------------------------------------------------------------------------------------------
// rendered documents

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // The checks below walk rendered documents, whose shape the validation establishes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

function parseManifests(result: HelmResult): Manifest[] {
  assert.equal(result.code, 0, `helm ${result.args.join(" ")} failed:\n${result.stderr}`);
  const docs = parseAllDocuments(result.stdout);
  for (const doc of docs) assert.deepEqual(doc.errors, [], `YAML errors in helm ${result.args.join(" ")}`);
  return docs.map((d) => d.toJS() as Manifest | null).filter((d): d is Manifest => d !== null);
}

/** The model of each kind the chart may render: its schema validation. */
const MODELS: Record<string, (data: Manifest) => { validate(): void }> = {
  "v1/ConfigMap": (d) => new ConfigMap(d as never),
  "v1/Secret": (d) => new Secret(d as never),
  "v1/Service": (d) => new Service(d as never),
  "v1/ServiceAccount": (d) => new ServiceAccount(d as never),
  "apps/v1/Deployment": (d) => new Deployment(d as never),
  "autoscaling/v2/HorizontalPodAutoscaler": (d) => new HorizontalPodAutoscaler(d as never),
  "policy/v1/PodDisruptionBudget": (d) => new PodDisruptionBudget(d as never),
  "networking.k8s.io/v1/Ingress": (d) => new Ingress(d as never),
  "monitoring.coreos.com/v1/ServiceMonitor": (d) => new ServiceMonitor(d as never),
  "monitoring.coreos.com/v1/PrometheusRule": (d) => new PrometheusRule(d as never),
  "gateway.networking.k8s.io/v1/HTTPRoute": (d) => new HTTPRoute(d as never),
};

/** The TypeScript type of each kind (same packages), for the unknown-field check. */
const TYPES: Record<string, [module: string, name: string]> = {
  "v1/ConfigMap": ["kubernetes-models/v1/ConfigMap", "IConfigMap"],
  "v1/Secret": ["kubernetes-models/v1/Secret", "ISecret"],
  "v1/Service": ["kubernetes-models/v1/Service", "IService"],
  "v1/ServiceAccount": ["kubernetes-models/v1/ServiceAccount", "IServiceAccount"],
  "apps/v1/Deployment": ["kubernetes-models/apps/v1/Deployment", "IDeployment"],
  "autoscaling/v2/HorizontalPodAutoscaler": [
    "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler",
    "IHorizontalPodAutoscaler",
  ],
  "policy/v1/PodDisruptionBudget": ["kubernetes-models/policy/v1/PodDisruptionBudget", "IPodDisruptionBudget"],
  "networking.k8s.io/v1/Ingress": ["kubernetes-models/networking.k8s.io/v1/Ingress", "IIngress"],
  "monitoring.coreos.com/v1/ServiceMonitor": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
    "IServiceMonitor",
  ],
  "monitoring.coreos.com/v1/PrometheusRule": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
    "IPrometheusRule",
  ],
  "gateway.networking.k8s.io/v1/HTTPRoute": [
    "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute",
    "IHTTPRoute",
  ],
};

const kindOf = (d: Manifest) => `${d.apiVersion}/${d.kind}`;

/**
 * Type-checks every document as an object literal of its model's interface: TypeScript's
 * excess property check names any field the API does not have (kubernetes-models' JSON schema
 * validation allows unknown fields, which the API server would drop or refuse).
 */
function unknownFieldErrors(sets: { name: string; docs: Manifest[] }[]): string[] {
  const file = join(ROOT, "test", "unit", "__rendered_manifests__.ts");
  const imports = Object.entries(TYPES).map(
    ([, [module, name]], i) => `import type { ${name} as T${i} } from "${module}";`,
  );
  const index = Object.keys(TYPES);
  const where: string[] = [];
  const lines: string[] = [];
  for (const { name, docs } of sets) {
    for (const doc of docs) {
      where.push(`${name}: ${doc.kind} ${doc.metadata.name}`);
      lines.push(`export const d${where.length - 1}: T${index.indexOf(kindOf(doc))} = ${JSON.stringify(doc)};`);
    }
  }
  const text = [...imports, ...lines].join("\n");
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, text, language) : getSourceFile(name, language, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram({ rootNames: [file], options, host });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
    const doc = line >= imports.length ? where[line - imports.length] : "imports";
    return `${doc}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`.slice(0, 600);
  });
}

const find = (docs: Manifest[], kind: string, name: string) =>
  docs.find((d) => d.kind === kind && d.metadata.name === name);
function get(docs: Manifest[], kind: string, name: string): Manifest {
  const doc = find(docs, kind, name);
  assert.ok(doc, `no ${kind} ${name} among ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(", ")}`);
  return doc;
}
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The roomcast Deployments (gateway, worker), not the embedded Redis. */
const roomcastDeployments = (docs: Manifest[]) =>
  docs.filter(
    (d) =>
      d.kind === "Deployment" &&
      ["gateway", "worker"].includes(d.metadata.labels?.["app.kubernetes.io/component"] ?? ""),
  );

interface ResolvedEnv {
  env: Record<string, string>;
  /** Where each variable came from, for messages. */
  from: Record<string, string>;
}

/**
 * A container's environment as the kubelet would make it: envFrom ConfigMaps and Secrets of the
 * render, env values, the pod name for metadata.name, Secret keys from the rendered Secret or,
 * for existingSecret, a dummy value.
 */
function resolveEnv(docs: Manifest[], deployment: Manifest): ResolvedEnv {
  const container = deployment.spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  const from: Record<string, string> = {};
  const secretValue = (name: string, key: string): string => {
    const secret = find(docs, "Secret", name);
    if (secret) {
      assert.ok(secret.data?.[key] !== undefined, `Secret ${name} has no key ${key}`);
      return Buffer.from(secret.data[key] as string, "base64").toString("utf8");
    }
    assert.ok(key in DUMMY_SECRET, `no dummy value for key ${key} of the existing Secret ${name}`);
    return DUMMY_SECRET[key]!;
  };
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) {
      const cm = get(docs, "ConfigMap", source.configMapRef.name);
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        env[k] = String(v);
        from[k] = `ConfigMap ${cm.metadata.name}`;
      }
    } else {
      assert.fail(`unexpected envFrom ${JSON.stringify(source)} in ${deployment.metadata.name}`);
    }
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.fieldRef) {
      assert.equal(
        e.valueFrom.fieldRef.fieldPath,
        "metadata.name",
        `${e.name} comes from ${e.valueFrom.fieldRef.fieldPath}`,
      );
      env[e.name] = `${deployment.metadata.name}-7d9f8b6c5-x2x9q`;
    } else if (e.valueFrom?.secretKeyRef)
      env[e.name] = secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    else assert.fail(`unexpected env ${JSON.stringify(e)} in ${deployment.metadata.name}`);
    from[e.name] = "env";
  }
  return { env, from };
}

/**
 * The files a container sees: each volume mount of a ConfigMap or Secret of the render (or a
 * dummy existing Secret) written under `dir`, keyed by path in the pod.
 */
function mountedFiles(docs: Manifest[], deployment: Manifest, dir: string): Map<string, string> {
  const pod = deployment.spec.template.spec;
  const files = new Map<string, string>();
  for (const mount of pod.containers[0].volumeMounts ?? []) {
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
    assert.ok(volume, `volumeMount ${mount.name} of ${deployment.metadata.name} has no volume`);
    let data: Record<string, string> | undefined;
    if (volume.configMap) data = get(docs, "ConfigMap", volume.configMap.name).data;
    else if (volume.secret) {
      const secret = find(docs, "Secret", volume.secret.secretName);
      data = secret
        ? Object.fromEntries(
            Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64").toString("utf8")]),
          )
        : DUMMY_SECRET;
    } else continue;
    const items: { key: string; path: string }[] =
      volume.configMap?.items ?? volume.secret?.items ?? Object.keys(data ?? {}).map((key) => ({ key, path: key }));
    for (const { key, path } of items) {
      assert.ok(
        data?.[key] !== undefined,
        `volume ${volume.name} of ${deployment.metadata.name} mounts key ${key}, which its source lacks`,
      );
      files.set(`${mount.mountPath}/${path}`, data[key]);
    }
  }
  for (const [podPath, content] of files) {
    const local = join(dir, deployment.metadata.name, podPath);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, content);
  }
  return files;
}

/** Whether a request for `path` would be routed by an Ingress path or HTTPRoute match. */
function routes(rule: { type: "Prefix" | "Exact"; value: string }, path: string): boolean {
  if (rule.type === "Exact") return rule.value === path;
  // Prefix: element-wise, a trailing slash ignored (networking.k8s.io/v1 and Gateway API alike).
  const prefix = rule.value.replace(/\/+$/, "");
  return prefix === "" || path === prefix || path.startsWith(`${prefix}/`);
}

function ingressRules(ingress: Manifest): { type: "Prefix" | "Exact"; value: string }[] {
  return ingress.spec.rules.flatMap((r: { http: { paths: { path: string; pathType: string }[] } }) =>
    r.http.paths.map((p) => ({ type: p.pathType as "Prefix" | "Exact", value: p.path })),
  );
}

// ---------------------------------------------------------------------------------------------

describe("helm chart helm/roomcast", { skip }, () => {
  let dir: string;
  let lintDefault: HelmResult;
  let lintProduction: HelmResult;
  let defaults: Manifest[];
  let production: Manifest[];
  let productionNoOperator: Manifest[];
  let variant: Manifest[];
  let variantValues: string;
  let bumped: Manifest[];
  let notes: Record<"defaults" | "production" | "productionNoOperator", string>;
  let refusals: Record<string, HelmResult>;
  let failures: Record<string, HelmResult>;
  let renamedKey: Manifest[];
  let webhooksWithoutWorkers: string;
  const started = Date.now();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "roomcast-helm-"));
    helmHome = join(dir, "helm-home");
    if (!HELM) return;
    const { publicKey } = generateKeyPairSync("ed25519");
    variantValues = join(dir, "variant-values.yaml");
    // The branches the two ci/ files do not take.
    writeFileSync(
      variantValues,
      stringifyYaml({
        redis: { url: "redis://:secret@redis.example.internal:6379/0" },
        auth: { method: "publicKey", publicKey: publicKey.export({ type: "spki", format: "pem" }).toString() },
        admin: { enabled: true, user: "ops", passwordHash: BCRYPT, readonly: false },
        webhooks: {
          urls: ["https://hooks.example.com/roomcast", "http://audit.tools.svc:8080/presence"],
          secret: WEBHOOK_SECRET,
        },
        settings: {
          LOG_LEVEL: "debug",
          ROOMCAST_RATE_LIMIT: 12.5,
          ROOMCAST_ALLOWED_TENANTS: ["acme", "globex"],
          ROOMCAST_TOKEN_QUERY: false,
        },
        channelNamespaces: {
          chat: { subscribe: { match: "any" }, publish: false, policy: "conflate", snapshot: "latest" },
        },
        gateway: {
          console: true,
          replicas: 3,
          drainSeconds: 20,
          preStopSleepSeconds: 3,
          terminationGracePeriodSeconds: 60,
          service: { sessionAffinity: "ClientIP" },
        },
        worker: { sampleProcessors: true, preStopSleepSeconds: 2, drainSeconds: 10, terminationGracePeriodSeconds: 28 },
        ingress: { enabled: true, nginx: { enabled: false }, paths: { console: true, admin: true } },
        httpRoute: {
          enabled: true,
          parentRefs: [{ name: "public", namespace: "gateway-system" }],
          hostnames: ["rt.example.com"],
          paths: { console: true, admin: true },
          sessionPersistence: { sessionName: "roomcast-gw", type: "Cookie" },
        },
        metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } },
      }),
    );
    // The same chart under another chart version: a chart-only upgrade.
    const bumpedChart = join(dir, "roomcast");
    cpSync(CHART, bumpedChart, { recursive: true });
    const chartYaml = join(bumpedChart, "Chart.yaml");
    writeFileSync(chartYaml, readFileSync(chartYaml, "utf8").replace(/^version: .*$/m, "version: 99.0.0"));
    // NOTES.txt, which `helm template` does not render: the same text through tpl in a copy.
    const notesChart = join(dir, "notes", "roomcast");
    cpSync(CHART, notesChart, { recursive: true });
    cpSync(join(CHART, "templates", "NOTES.txt"), join(notesChart, "files", "notes.txt"));
    rmSync(join(notesChart, "templates", "NOTES.txt"));
    writeFileSync(
      join(notesChart, "templates", "notes-check.yaml"),
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n    {{- tpl (.Files.Get "files/notes.txt") . | nindent 4 }}\n',
    );
    const notesOf = (values: string, extra: string[] = []) =>
      template([values], [...extra, "--show-only", "templates/notes-check.yaml"], notesChart);
    const bad = (set: string[]) => template([DEFAULT_VALUES], set);
    const [ld, lp, d, p, pn, v, b, nd, np, npn, ...rest] = await Promise.all([
      helm(["lint", "--strict", CHART, "--values", DEFAULT_VALUES]),
      helm(["lint", "--strict", CHART, "--values", PRODUCTION_VALUES]),
      template([DEFAULT_VALUES]),
      template([PRODUCTION_VALUES], [...OPERATOR_API, ...GATEWAY_API]),
      template([PRODUCTION_VALUES]),
      template([variantValues], [...OPERATOR_API, ...GATEWAY_API]),
      template([DEFAULT_VALUES], [], bumpedChart),
      notesOf(DEFAULT_VALUES),
      notesOf(PRODUCTION_VALUES, OPERATOR_API),
      notesOf(PRODUCTION_VALUES),
      // values.schema.json refusals
      bad(["--set", "gateway.replicas=-1"]),
      bad(["--set", "ingres.enabled=true"]),
      bad(["--set", "ingress.className=5"]),
      bad(["--set", "settings.ROOMCAST_MAX_CONECTIONS_PER_IP=1000"]),
      bad(["--set", "settings.ROOMCAST_DRAIN_S=30"]),
      bad(["--set", "channelNamespaces.chat.subscribe.match=anyone"]),
      bad(["--set", "channelNamespaces.chat.subscribe.match=any", "--set", "channelNamespaces.chat.joinLeave=true"]),
      bad(["--set", "auth.method=rsa"]),
      bad(["--set", "redis.url=http://redis:6379"]),
      bad(["--set", "settings.ROOMCAST_WEBHOOK_URLS=https://hooks.example.com/roomcast"]),
      bad(["--set", "webhooks.urls[0]=ftp://hooks.example.com/roomcast"]),
      bad(["--set", "webhooks.events[0]=member_joined"]),
      bad(["--set", "webhooks.urls[0]=https://hooks.example.com/roomcast", "--set", "webhooks.secret=too-short"]),
      // template failures
      template([], ["--set", "auth.jwtSecret=a-secret-of-at-least-thirty-two-bytes"]),
      bad(["--set", "gateway.terminationGracePeriodSeconds=30"]),
      bad(["--set", "worker.terminationGracePeriodSeconds=45"]),
      template([], ["--set", "redis.embedded.enabled=true"]),
      bad(["--set", "auth.method=jwks"]),
      bad(["--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=public"]),
      bad(["--set", "webhooks.urls[0]=https://hooks.example.com/roomcast"]),
      template([PRODUCTION_VALUES], ["--set", `webhooks.secret=${WEBHOOK_SECRET}`]),
      bad(["--set", `webhooks.secret=${WEBHOOK_SECRET}`]),
      // The webhook secret under another key name; webhooks without workers (NOTES).
      template([variantValues], [...GATEWAY_API, "--set", "existingSecretKeys.webhookSecret=hook-signing-key"]),
      notesOf(DEFAULT_VALUES, [
        "--set",
        "webhooks.urls[0]=https://hooks.example.com/roomcast",
        "--set",
        `webhooks.secret=${WEBHOOK_SECRET}`,
        "--set",
        "worker.enabled=false",
      ]),
    ]);
    lintDefault = ld!;
    lintProduction = lp!;
    defaults = parseManifests(d!);
    production = parseManifests(p!);
    productionNoOperator = parseManifests(pn!);
    variant = parseManifests(v!);
    bumped = parseManifests(b!);
    const notesText = (r: HelmResult) => parseManifests(r)[0]!.data.notes as string;
    notes = { defaults: notesText(nd!), production: notesText(np!), productionNoOperator: notesText(npn!) };
    const [
      replicas,
      topLevel,
      className,
      settingTypo,
      managed,
      nsTypo,
      nsJoinLeave,
      method,
      redisScheme,
      webhookSetting,
      webhookScheme,
      webhookEvent,
      webhookShortSecret,
      noRedis,
      gatewayGrace,
      workerGrace,
      noKey,
      jwksConflict,
      noGatewayApi,
      webhookNoSecret,
      webhookSecretAndExisting,
      webhookSecretOnly,
      renamed,
      notesNoWorkers,
    ] = rest;
    refusals = {
      replicas: replicas!,
      topLevel: topLevel!,
      className: className!,
      settingTypo: settingTypo!,
      managed: managed!,
      nsTypo: nsTypo!,
      nsJoinLeave: nsJoinLeave!,
      method: method!,
      redisScheme: redisScheme!,
      webhookSetting: webhookSetting!,
      webhookScheme: webhookScheme!,
      webhookEvent: webhookEvent!,
      webhookShortSecret: webhookShortSecret!,
    };
    failures = {
      noRedis: noRedis!,
      gatewayGrace: gatewayGrace!,
      workerGrace: workerGrace!,
      noKey: noKey!,
      jwksConflict: jwksConflict!,
      noGatewayApi: noGatewayApi!,
      webhookNoSecret: webhookNoSecret!,
      webhookSecretAndExisting: webhookSecretAndExisting!,
      webhookSecretOnly: webhookSecretOnly!,
    };
    renamedKey = parseManifests(renamed!);
    webhooksWithoutWorkers = notesText(notesNoWorkers!);
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
    console.log(`helm chart test: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  const renders = () => [
    { name: "default", docs: defaults },
    { name: "production", docs: production },
    { name: "production without the operator API", docs: productionNoOperator },
    { name: "variant", docs: variant },
  ];

  it("helm is installed", () => {
    assert.ok(HELM, "helm is required in CI: go install helm.sh/helm/v3/cmd/helm@v3.22.0");
  });

  it("passes helm lint --strict with the default and the production-like values", () => {
    assert.equal(
      lintDefault.code,
      0,
      `helm lint (ci/default-values.yaml):\n${lintDefault.stdout}${lintDefault.stderr}`,
    );
    assert.equal(
      lintProduction.code,
      0,
      `helm lint (ci/production-values.yaml):\n${lintProduction.stdout}${lintProduction.stderr}`,
    );
  });

  it("renders documents that each validate against their schema, with no unknown field", () => {
    for (const { name, docs } of renders()) {
      assert.ok(docs.length > 5, `${name}: only ${docs.length} documents`);
      for (const doc of docs) {
        const model = MODELS[kindOf(doc)];
        assert.ok(
          model,
          `${name}: ${kindOf(doc)} ${doc.metadata?.name} has no model to validate it with; add it to MODELS and TYPES`,
        );
        assert.doesNotThrow(
          () => model(doc).validate(),
          (err: Error) => assert.fail(`${name}: ${doc.kind} ${doc.metadata.name}: ${err.message}`),
        );
        assert.equal(
          doc.metadata.namespace ?? NAMESPACE,
          NAMESPACE,
          `${name}: ${doc.kind} ${doc.metadata.name} is in another namespace`,
        );
        assert.ok(doc.metadata.name.length <= 63, `${name}: ${doc.metadata.name} is longer than 63 characters`);
      }
      const names = docs.map((d) => `${d.kind}/${d.metadata.name}`);
      assert.equal(new Set(names).size, names.length, `${name}: duplicate resources: ${names.join(", ")}`);
    }
    assert.deepEqual(unknownFieldErrors(renders()), []);
  });

  it("renders the workloads each configuration asks for", () => {
    const kinds = (docs: Manifest[]) => [...new Set(docs.map((d) => d.kind))].sort();
    assert.deepEqual(kinds(defaults), [
      "ConfigMap",
      "Deployment",
      "PodDisruptionBudget",
      "Secret",
      "Service",
      "ServiceAccount",
    ]);
    assert.ok(find(defaults, "Deployment", `${FULLNAME}-redis`), "the default trial runs the embedded Redis");
    assert.deepEqual(kinds(production), [
      "ConfigMap",
      "Deployment",
      "HorizontalPodAutoscaler",
      "Ingress",
      "PodDisruptionBudget",
      "PrometheusRule",
      "Service",
      "ServiceAccount",
      "ServiceMonitor",
    ]);
    assert.equal(find(production, "Secret", FULLNAME), undefined, "with existingSecret the chart makes no Secret");
    assert.equal(find(production, "Deployment", `${FULLNAME}-redis`), undefined, "no embedded Redis in production");
    assert.ok(find(variant, "HTTPRoute", `${FULLNAME}-gateway`));
    for (const docs of [defaults, production, variant]) {
      const gateway = get(docs, "Deployment", `${FULLNAME}-gateway`);
      const worker = get(docs, "Deployment", `${FULLNAME}-worker`);
      assert.deepEqual(gateway.spec.template.spec.containers[0].args, ["gateway"]);
      assert.deepEqual(worker.spec.template.spec.containers[0].args, ["worker"]);
    }
    assert.equal(get(defaults, "Deployment", `${FULLNAME}-gateway`).spec.replicas, 2);
    assert.equal(
      get(production, "Deployment", `${FULLNAME}-gateway`).spec.replicas,
      undefined,
      "the HPA owns the replica count",
    );
    assert.equal(get(production, "Deployment", `${FULLNAME}-worker`).spec.replicas, 3);
    assert.equal(
      get(production, "Deployment", `${FULLNAME}-worker`).spec.template.spec.containers[0].image,
      "registry.example.com/platform/roomcast-worker:0.1.0",
    );
    assert.equal(
      get(production, "Deployment", `${FULLNAME}-gateway`).spec.template.spec.containers[0].image,
      "registry.example.com/platform/roomcast:0.1.0",
    );
  });

  it("probes /readyz for readiness and /healthz for liveness on the container port, with sane timings", () => {
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const what = `${name}: ${deployment.metadata.name}`;
        const container = deployment.spec.template.spec.containers[0];
        const { env } = resolveEnv(docs, deployment);
        const port = container.ports.find((p: { name: string }) => p.name === "http");
        assert.ok(port, `${what}: no port named http`);
        assert.equal(String(port.containerPort), env.PORT, `${what}: PORT is not the container port`);
        const probePort = (probe: { httpGet: { port: string | number } }) =>
          typeof probe.httpGet.port === "string"
            ? container.ports.find((p: { name: string }) => p.name === probe.httpGet.port)?.containerPort
            : probe.httpGet.port;
        const { readinessProbe: ready, livenessProbe: live, startupProbe: startup } = container;
        assert.equal(ready?.httpGet?.path, "/readyz", `${what}: readiness probe`);
        assert.equal(
          live?.httpGet?.path,
          "/healthz",
          `${what}: liveness probe (never /readyz: it is 503 while draining)`,
        );
        assert.equal(probePort(ready), port.containerPort, `${what}: readiness probe port`);
        assert.equal(probePort(live), port.containerPort, `${what}: liveness probe port`);
        if (startup) {
          assert.equal(startup.httpGet.path, "/healthz", `${what}: startup probe`);
          assert.equal(probePort(startup), port.containerPort);
        }
        assert.ok(ready.periodSeconds <= 10, `${what}: readiness checked every ${ready.periodSeconds} s`);
        assert.ok(
          live.periodSeconds * live.failureThreshold >= 30,
          `${what}: liveness gives up after ${live.periodSeconds * live.failureThreshold} s`,
        );
        assert.ok(live.timeoutSeconds >= 2, `${what}: liveness timeout ${live.timeoutSeconds} s`);
        assert.equal(live.successThreshold, 1);
      }
    }
  });

  it("gives each pod a grace period longer than preStop + ROOMCAST_DRAIN_S + 15 s", () => {
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const what = `${name}: ${deployment.metadata.name}`;
        const container = deployment.spec.template.spec.containers[0];
        const command: string[] | undefined = container.lifecycle?.preStop?.exec?.command;
        let preStop = 0;
        if (command) {
          assert.equal(command[0], "sleep", `${what}: preStop ${JSON.stringify(command)}`);
          preStop = Number(command[1]);
          assert.ok(Number.isInteger(preStop) && preStop > 0, `${what}: preStop sleeps ${command[1]}`);
        }
        const drain = Number(resolveEnv(docs, deployment).env.ROOMCAST_DRAIN_S);
        assert.ok(Number.isInteger(drain), `${what}: ROOMCAST_DRAIN_S`);
        const grace = deployment.spec.template.spec.terminationGracePeriodSeconds;
        assert.ok(
          grace > preStop + drain + 15,
          `${what}: terminationGracePeriodSeconds ${grace} <= ${preStop} + ${drain} + 15`,
        );
        if (deployment.metadata.labels?.["app.kubernetes.io/component"] === "gateway")
          assert.ok(preStop >= 3, `${what}: the gateway sleeps ${preStop} s before SIGTERM`);
      }
    }
    const grace = (docs: Manifest[], component: string) =>
      get(docs, "Deployment", `${FULLNAME}-${component}`).spec.template.spec.terminationGracePeriodSeconds;
    assert.equal(grace(defaults, "gateway"), 5 + 10 + 15 + 5, "computed from the defaults");
    assert.equal(grace(production, "worker"), 0 + 120 + 15 + 5);
    assert.equal(grace(variant, "gateway"), 60, "an explicit value is kept");
  });

  it("runs hardened pods: non-root uid 1000, read-only root with /tmp an emptyDir, no privilege escalation, no capabilities, RuntimeDefault seccomp, no API token", () => {
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const what = `${name}: ${deployment.metadata.name}`;
        const pod = deployment.spec.template.spec;
        const container = pod.containers[0];
        const sc = container.securityContext;
        assert.equal(pod.securityContext.runAsNonRoot, true, `${what}: pod runAsNonRoot`);
        assert.equal(pod.securityContext.runAsUser, 1000, `${what}: pod runAsUser`);
        assert.equal(pod.securityContext.seccompProfile?.type, "RuntimeDefault", `${what}: pod seccomp`);
        assert.equal(sc.runAsNonRoot, true, `${what}: runAsNonRoot`);
        assert.equal(sc.runAsUser, 1000, `${what}: runAsUser`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${what}: readOnlyRootFilesystem`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${what}: allowPrivilegeEscalation`);
        assert.ok(sc.capabilities?.drop?.includes("ALL"), `${what}: capabilities.drop ALL`);
        assert.equal(sc.capabilities?.add, undefined, `${what}: capabilities.add`);
        assert.notEqual(sc.privileged, true, `${what}: privileged`);
        assert.equal(sc.seccompProfile?.type, "RuntimeDefault", `${what}: seccomp`);
        const tmp = container.volumeMounts.find((m: { mountPath: string }) => m.mountPath === "/tmp");
        assert.ok(tmp, `${what}: /tmp is not mounted`);
        assert.ok(
          pod.volumes.find((v: { name: string }) => v.name === tmp.name)?.emptyDir,
          `${what}: /tmp is not an emptyDir`,
        );
        assert.equal(pod.automountServiceAccountToken, false, `${what}: automountServiceAccountToken`);
        assert.ok(
          container.resources?.requests?.cpu &&
            container.resources?.requests?.memory &&
            container.resources?.limits?.memory,
          `${what}: resources`,
        );
        const account = find(docs, "ServiceAccount", pod.serviceAccountName);
        assert.ok(account, `${what}: ServiceAccount ${pod.serviceAccountName} is not rendered`);
        assert.equal(account.automountServiceAccountToken, false);
      }
    }
  });

  it("spreads pods over zones and nodes, and rolls them when their settings change, not when only the chart version does", () => {
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const what = `${name}: ${deployment.metadata.name}`;
        const pod = deployment.spec.template;
        const constraints: {
          topologyKey: string;
          whenUnsatisfiable: string;
          labelSelector: { matchLabels: Record<string, string> };
        }[] = pod.spec.topologySpreadConstraints ?? [];
        assert.deepEqual(
          constraints.map((c) => c.topologyKey).sort(),
          ["kubernetes.io/hostname", "topology.kubernetes.io/zone"],
          `${what}: topology spread`,
        );
        for (const c of constraints) {
          assert.equal(c.whenUnsatisfiable, "ScheduleAnyway", `${what}: ${c.topologyKey}`);
          assert.ok(
            matches(c.labelSelector.matchLabels, pod.metadata.labels),
            `${what}: ${c.topologyKey} selects other pods`,
          );
        }
        assert.match(pod.metadata.annotations?.["checksum/config"] ?? "", /^[0-9a-f]{64}$/, `${what}: checksum/config`);
        const ownSecret = find(docs, "Secret", FULLNAME);
        if (ownSecret)
          assert.match(
            pod.metadata.annotations?.["checksum/secret"] ?? "",
            /^[0-9a-f]{64}$/,
            `${what}: checksum/secret`,
          );
        assert.ok(
          matches(deployment.spec.selector.matchLabels, pod.metadata.labels),
          `${what}: selector does not select its pods`,
        );
        const nodeId = pod.spec.containers[0].env.find((e: { name: string }) => e.name === "ROOMCAST_NODE_ID");
        assert.equal(
          nodeId?.valueFrom?.fieldRef?.fieldPath,
          "metadata.name",
          `${what}: ROOMCAST_NODE_ID is not the pod name`,
        );
      }
    }
    // A setting change changes the checksum (so `helm upgrade` rolls the pods)...
    const checksum = (docs: Manifest[]) =>
      get(docs, "Deployment", `${FULLNAME}-gateway`).spec.template.metadata.annotations["checksum/config"];
    assert.notEqual(checksum(defaults), checksum(variant));
    // ...but a chart-only upgrade does not restart the pods (and move every client).
    assert.notEqual(
      get(bumped, "ConfigMap", `${FULLNAME}-gateway`).metadata.labels?.["helm.sh/chart"],
      get(defaults, "ConfigMap", `${FULLNAME}-gateway`).metadata.labels?.["helm.sh/chart"],
    );
    for (const deployment of roomcastDeployments(defaults)) {
      assert.deepEqual(
        get(bumped, "Deployment", deployment.metadata.name).spec.template,
        deployment.spec.template,
        `${deployment.metadata.name}: a new chart version changes the pod template`,
      );
    }
  });

  it("sets only environment variables that are roomcast settings (src/config/settings.ts) or ROOMCAST_CONFIG", () => {
    const known = new Set<string>([...USER_SETTINGS.map((s) => s.env), ...EXTRA_ENV]);
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const { env, from } = resolveEnv(docs, deployment);
        for (const key of Object.keys(env))
          assert.ok(
            known.has(key),
            `${name}: ${deployment.metadata.name} sets ${key} (${from[key]}), which is no roomcast setting`,
          );
      }
      for (const cm of docs.filter(
        (d) =>
          d.kind === "ConfigMap" &&
          !d.metadata.name.includes("-dashboard-") &&
          d.metadata.name !== `${FULLNAME}-config`,
      )) {
        for (const key of Object.keys(cm.data ?? {}))
          assert.ok(
            known.has(key),
            `${name}: ConfigMap ${cm.metadata.name} holds ${key}, which is no roomcast setting`,
          );
      }
    }
  });

  it("lists in values.schema.json every setting the chart does not manage itself, with its kind", () => {
    const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8"));
    const props: Record<string, { $ref?: string; enum?: string[] }> = schema.definitions.settings.properties;
    const refOf = {
      int: "#/definitions/settingInt",
      number: "#/definitions/settingNumber",
      bool: "#/definitions/settingBool",
      list: "#/definitions/settingList",
      string: "#/definitions/settingString",
    } as const;
    for (const spec of USER_SETTINGS) {
      if (CHART_MANAGED.has(spec.env)) {
        assert.equal(
          props[spec.env],
          undefined,
          `${spec.env} is set by the chart, so values.schema.json must refuse it in settings`,
        );
        continue;
      }
      const prop = props[spec.env];
      assert.ok(
        prop,
        `${spec.env} (src/config/settings.ts) is missing from values.schema.json definitions.settings (or add it to the chart's own values and CHART_MANAGED)`,
      );
      if (spec.kind === "level")
        assert.deepEqual(prop.enum, ["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
      else if (spec.kind === "choice")
        assert.deepEqual(prop.enum, [...(spec as { choices: readonly string[] }).choices]);
      else assert.equal(prop.$ref, refOf[spec.kind], `${spec.env} is a ${spec.kind}`);
    }
    const envs = new Set<string>(USER_SETTINGS.map((s) => s.env));
    for (const key of Object.keys(props))
      assert.ok(envs.has(key), `values.schema.json allows ${key}, which is no roomcast setting`);
  });

  it("renders environments that roomcast's own loadConfig accepts, with exactly one key for gateways and none for workers", async () => {
    for (const { name, docs } of renders()) {
      for (const deployment of roomcastDeployments(docs)) {
        const what = `${name}: ${deployment.metadata.name}`;
        const { env } = resolveEnv(docs, deployment);
        const files = mountedFiles(docs, deployment, join(dir, name.replace(/\W+/g, "-")));
        const local = (podPath: string) => {
          assert.ok(
            files.has(podPath),
            `${what}: ${podPath} is not a mounted file (mounted: ${[...files.keys()].join(", ")})`,
          );
          return join(dir, name.replace(/\W+/g, "-"), deployment.metadata.name, podPath);
        };
        // The file settings must point at mounted files; loadConfig reads ROOMCAST_CONFIG.
        for (const key of ["ROOMCAST_CONFIG", "ROOMCAST_JWT_PUBLIC_KEY_FILE", "ROOMCAST_JWKS_FILE"])
          if (env[key]) env[key] = local(env[key]);
        const config = (() => {
          try {
            return loadConfig({ env, argv: [] });
          } catch (err) {
            return assert.fail(`${what}: loadConfig refuses the rendered environment: ${(err as Error).message}`);
          }
        })();
        assert.equal(config.nodeId, env.ROOMCAST_NODE_ID);
        if (deployment.metadata.labels?.["app.kubernetes.io/component"] === "gateway") {
          assert.doesNotThrow(
            () => requireServerSettings(config),
            (err: Error) => assert.fail(`${what}: ${err.message}`),
          );
          // The key material itself: the verifier reads the mounted PEM or JWKS (dummy for an existing Secret's JWKS).
          if (find(docs, "Secret", FULLNAME) || config.jwtSecret)
            assert.doesNotThrow(
              () => createTokenVerifier(config),
              (err: Error) => assert.fail(`${what}: ${err.message}`),
            );
          const expected = name === "variant" ? 1 : name.startsWith("production") ? 1 : 0;
          assert.equal(
            config.trustProxy,
            expected,
            `${what}: ROOMCAST_TRUST_PROXY behind ${expected ? "an ingress" : "no proxy"}`,
          );
        } else {
          assert.doesNotThrow(() => requireRedisSetting(config, "worker"));
          assert.throws(
            () => requireKeySetting(config),
            /missing setting ROOMCAST_JWT_SECRET/,
            `${what}: workers get no JWT key`,
          );
          assert.equal(config.adminPasswordHash, undefined, `${what}: workers get no admin hash`);
        }
      }
    }
    const gatewayConfig = (docs: Manifest[]) => {
      const { env } = resolveEnv(docs, get(docs, "Deployment", `${FULLNAME}-gateway`));
      delete env.ROOMCAST_CONFIG;
      return loadConfig({ env, argv: [] });
    };
    assert.equal(
      gatewayConfig(defaults).redisUrl,
      `redis://${FULLNAME}-redis:6379`,
      "REDIS_URL points at the embedded Redis",
    );
    assert.equal(
      gatewayConfig(variant).redisUrl,
      "redis://:secret@redis.example.internal:6379/0",
      "REDIS_URL comes from the chart's Secret",
    );
    assert.equal(gatewayConfig(production).redisUrl, DUMMY_SECRET.REDIS_URL, "REDIS_URL comes from existingSecret");
    assert.equal(gatewayConfig(variant).rateLimit, 12.5);
    assert.deepEqual(gatewayConfig(variant).allowedTenants, ["acme", "globex"]);
    assert.equal(gatewayConfig(production).maxConnectionsPerIp, 1000);
    assert.equal(gatewayConfig(production).drainS, 30);
  });

  it("renders channelNamespaces as a ROOMCAST_CONFIG file that roomcast's loadConfig parses", () => {
    assert.equal(
      find(defaults, "ConfigMap", `${FULLNAME}-config`),
      undefined,
      "no config file without channelNamespaces",
    );
    const file = get(production, "ConfigMap", `${FULLNAME}-config`).data["roomcast.yaml"];
    const path = join(dir, "roomcast.yaml");
    writeFileSync(path, file);
    const config = loadConfig({ env: { ROOMCAST_CONFIG: path }, argv: [] });
    assert.deepEqual(Object.keys(config.namespaces).sort(), ["chat", "env", "job", "team", "user"]);
    assert.equal(config.namespaces.chat!.historySize, 200);
    assert.equal(config.namespaces.chat!.presence, true);
    assert.equal(config.namespaces.chat!.joinLeave, true);
    assert.deepEqual(config.namespaces.chat!.publish, { match: "any", scope: "chat:write" });
    assert.deepEqual(config.namespaces.team!.streams?.presence, { policy: "conflate", snapshot: "latest" });
    // The same values as the values file said, nothing lost on the way.
    const values = parseYaml(readFileSync(PRODUCTION_VALUES, "utf8"));
    assert.deepEqual(parseYaml(file).namespaces, values.channelNamespaces);
  });

  it("gives gateways and workers the same webhook settings, the secret from the chart's Secret or existingSecret", () => {
    const webhookEnv = (docs: Manifest[], component: "gateway" | "worker") => {
      const deployment = get(docs, "Deployment", `${FULLNAME}-${component}`);
      const { env } = resolveEnv(docs, deployment);
      const secretRef = deployment.spec.template.spec.containers[0].env.find(
        (e: { name: string }) => e.name === "ROOMCAST_WEBHOOK_SECRET",
      )?.valueFrom?.secretKeyRef;
      return { env, secretRef, config: loadConfig({ env: { ...env, ROOMCAST_CONFIG: "" }, argv: [] }) };
    };
    // Chart-managed Secret: the secret is one of its keys; URLs and (default) events in both ConfigMaps.
    assert.equal(
      Buffer.from(get(variant, "Secret", FULLNAME).data.ROOMCAST_WEBHOOK_SECRET, "base64").toString("utf8"),
      WEBHOOK_SECRET,
    );
    for (const component of ["gateway", "worker"] as const) {
      const { env, secretRef, config } = webhookEnv(variant, component);
      assert.deepEqual(secretRef, { name: FULLNAME, key: "ROOMCAST_WEBHOOK_SECRET" }, `variant ${component}`);
      assert.equal(env.ROOMCAST_WEBHOOK_SECRET, WEBHOOK_SECRET, `variant ${component}`);
      assert.deepEqual(config.webhookUrls, [
        "https://hooks.example.com/roomcast",
        "http://audit.tools.svc:8080/presence",
      ]);
      assert.equal(env.ROOMCAST_WEBHOOK_EVENTS, undefined, "no events listed: roomcast's default, all of them");
      assert.deepEqual(config.webhookEvents, ["channel_occupied", "channel_vacated", "member_added", "member_removed"]);
    }
    // existingSecret: the same key read from it; the events of the values.
    for (const component of ["gateway", "worker"] as const) {
      const { secretRef, config } = webhookEnv(production, component);
      assert.deepEqual(
        secretRef,
        { name: "roomcast-secrets", key: "ROOMCAST_WEBHOOK_SECRET" },
        `production ${component}`,
      );
      assert.deepEqual(config.webhookUrls, ["https://api.example.com/hooks/roomcast"]);
      assert.deepEqual(config.webhookEvents, ["channel_occupied", "channel_vacated"]);
    }
    // Another key name, in the Secret and in both references.
    assert.deepEqual(
      Object.keys(get(renamedKey, "Secret", FULLNAME).data).filter((k) => k.includes("hook")),
      ["hook-signing-key"],
    );
    for (const component of ["gateway", "worker"] as const)
      assert.equal(webhookEnv(renamedKey, component).secretRef?.key, "hook-signing-key");
    // Off by default: nothing about webhooks anywhere.
    for (const component of ["gateway", "worker"] as const) {
      const { env } = webhookEnv(defaults, component);
      assert.deepEqual(
        Object.keys(env).filter((k) => k.startsWith("ROOMCAST_WEBHOOK_")),
        [],
        `defaults: ${component} has webhook settings`,
      );
    }
    assert.equal(get(defaults, "Secret", FULLNAME).data.ROOMCAST_WEBHOOK_SECRET, undefined);
    // Only workers deliver: NOTES warns when there are none.
    assert.match(webhooksWithoutWorkers, /WARNING: webhooks\.urls is set but worker\.enabled is false/);
    assert.doesNotMatch(notes.production, /webhooks\.urls is set/);
  });

  it("routes /socket.io/ and /v1/ through the Ingress, never /metrics, with WebSocket timeouts and cookie affinity", () => {
    const ingress = get(production, "Ingress", `${FULLNAME}-gateway`);
    const rules = ingressRules(ingress);
    for (const path of ["/socket.io/", "/socket.io", "/v1/channels/user:a/events", "/v1/jobs"])
      assert.ok(
        rules.some((r) => routes(r, path)),
        `${path} is not routed`,
      );
    for (const path of ["/metrics", "/healthz", "/readyz", "/", "/admin/", "/console/console.js"])
      assert.ok(!rules.some((r) => routes(r, path)), `${path} is routed from outside`);
    assert.equal(ingress.spec.ingressClassName, "nginx");
    assert.deepEqual(ingress.spec.tls, [{ secretName: "rt-example-com-tls", hosts: ["rt.example.com"] }]);
    assert.deepEqual(
      ingress.spec.rules.map((r: { host: string }) => r.host),
      ["rt.example.com"],
    );
    const a = ingress.metadata.annotations ?? {};
    assert.ok(Number(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600, "proxy-read-timeout");
    assert.ok(Number(a["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600, "proxy-send-timeout");
    assert.equal(a["nginx.ingress.kubernetes.io/affinity"], "cookie");
    assert.equal(a["nginx.ingress.kubernetes.io/session-cookie-name"], "roomcast-gw");
    assert.equal(a["cert-manager.io/cluster-issuer"], "letsencrypt");
    const service = get(production, "Service", `${FULLNAME}-gateway`);
    for (const p of ingress.spec.rules[0].http.paths) {
      assert.equal(p.backend.service.name, service.metadata.name);
      assert.ok(
        service.spec.ports.some((sp: { name: string }) => sp.name === p.backend.service.port.name),
        `port ${p.backend.service.port.name}`,
      );
    }
    // The console and admin UI only when asked for, exactly.
    const extra = ingressRules(get(variant, "Ingress", `${FULLNAME}-gateway`));
    for (const path of ["/", "/console/console.js", "/admin/", "/socket.io/", "/v1/jobs"])
      assert.ok(
        extra.some((r) => routes(r, path)),
        `variant: ${path} is not routed`,
      );
    for (const path of ["/metrics", "/healthz", "/readyz", "/other"])
      assert.ok(!extra.some((r) => routes(r, path)), `variant: ${path} is routed`);
    assert.equal(
      Object.keys(get(variant, "Ingress", `${FULLNAME}-gateway`).metadata.annotations ?? {}).filter((k) =>
        k.startsWith("nginx."),
      ).length,
      0,
      "no nginx annotations when ingress.nginx.enabled=false",
    );
  });

  it("routes the same paths through the Gateway API HTTPRoute, with long Socket.IO timeouts", () => {
    const route = get(variant, "HTTPRoute", `${FULLNAME}-gateway`);
    assert.deepEqual(route.spec.parentRefs, [{ name: "public", namespace: "gateway-system" }]);
    assert.deepEqual(route.spec.hostnames, ["rt.example.com"]);
    const service = get(variant, "Service", `${FULLNAME}-gateway`);
    const all: { type: "Prefix" | "Exact"; value: string }[] = [];
    for (const rule of route.spec.rules) {
      for (const ref of rule.backendRefs) {
        assert.equal(ref.name, service.metadata.name);
        assert.ok(
          service.spec.ports.some((p: { port: number }) => p.port === ref.port),
          `backend port ${ref.port}`,
        );
      }
      for (const m of rule.matches)
        all.push({ type: m.path.type === "PathPrefix" ? "Prefix" : "Exact", value: m.path.value });
    }
    const socket = route.spec.rules.find((r: { matches: { path: { value: string } }[] }) =>
      r.matches.some((m) => m.path.value === "/socket.io/"),
    );
    assert.equal(socket.timeouts.request, "3600s");
    assert.deepEqual(socket.sessionPersistence, { sessionName: "roomcast-gw", type: "Cookie" });
    for (const path of ["/", "/console/console.js", "/admin/", "/socket.io/", "/v1/jobs"])
      assert.ok(
        all.some((r) => routes(r, path)),
        `${path} is not routed`,
      );
    for (const path of ["/metrics", "/healthz", "/readyz"])
      assert.ok(!all.some((r) => routes(r, path)), `${path} is routed`);
  });

  it("selects the right pods with Services, PodDisruptionBudgets and the HPA, and scales down slowly", () => {
    for (const { name, docs } of renders()) {
      const gateway = get(docs, "Deployment", `${FULLNAME}-gateway`);
      const worker = get(docs, "Deployment", `${FULLNAME}-worker`);
      const service = get(docs, "Service", `${FULLNAME}-gateway`);
      assert.ok(
        matches(service.spec.selector, gateway.spec.template.metadata.labels),
        `${name}: the gateway Service does not select gateways`,
      );
      assert.ok(
        !matches(service.spec.selector, worker.spec.template.metadata.labels),
        `${name}: the gateway Service selects workers`,
      );
      assert.deepEqual(
        service.spec.ports.map((p: { name: string; port: number; targetPort: string }) => [p.name, p.targetPort]),
        [["http", "http"]],
      );
      const workerService = get(docs, "Service", `${FULLNAME}-worker-metrics`);
      assert.ok(
        matches(workerService.spec.selector, worker.spec.template.metadata.labels),
        `${name}: the worker metrics Service does not select workers`,
      );
      assert.ok(
        !matches(workerService.spec.selector, gateway.spec.template.metadata.labels),
        `${name}: the worker metrics Service selects gateways`,
      );
      for (const [component, deployment] of [
        ["gateway", gateway],
        ["worker", worker],
      ] as const) {
        const pdb = get(docs, "PodDisruptionBudget", `${FULLNAME}-${component}`);
        assert.ok(
          matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels),
          `${name}: ${component} PDB`,
        );
        assert.ok(
          !matches(
            pdb.spec.selector.matchLabels,
            (component === "gateway" ? worker : gateway).spec.template.metadata.labels,
          ),
          `${name}: ${component} PDB selects the other component`,
        );
      }
    }
    assert.equal(get(variant, "Service", `${FULLNAME}-gateway`).spec.sessionAffinity, "ClientIP");
    const hpa = get(production, "HorizontalPodAutoscaler", `${FULLNAME}-gateway`);
    assert.deepEqual(hpa.spec.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: `${FULLNAME}-gateway`,
    });
    assert.equal(hpa.spec.minReplicas, 4);
    assert.equal(hpa.spec.maxReplicas, 40);
    const metrics: {
      type: string;
      resource?: { name: string };
      pods?: { metric: { name: string }; target: { type: string; averageValue: string } };
    }[] = hpa.spec.metrics;
    assert.ok(
      metrics.some((m) => m.type === "Resource" && m.resource?.name === "cpu"),
      "a CPU metric",
    );
    const pods = metrics.find((m) => m.type === "Pods");
    assert.equal(pods?.pods?.metric.name, "roomcast_connections");
    assert.deepEqual(pods?.pods?.target, { type: "AverageValue", averageValue: "12000" });
    const down = hpa.spec.behavior.scaleDown;
    assert.ok(down.stabilizationWindowSeconds >= 300, `scale-down stabilization ${down.stabilizationWindowSeconds} s`);
    for (const p of down.policies)
      assert.ok(
        p.type === "Pods" ? p.value <= 2 && p.periodSeconds >= 60 : p.value <= 20,
        `scale-down policy ${JSON.stringify(p)}`,
      );
    assert.equal(down.selectPolicy, "Min");
  });

  it("renders ServiceMonitors and the PrometheusRule only with the monitoring.coreos.com/v1 API", () => {
    const monitoring = (docs: Manifest[]) => docs.filter((d) => d.apiVersion.startsWith("monitoring.coreos.com/"));
    assert.deepEqual(monitoring(productionNoOperator), []);
    assert.deepEqual(
      monitoring(production)
        .map((d) => `${d.kind}/${d.metadata.name}`)
        .sort(),
      [`PrometheusRule/${FULLNAME}`, `ServiceMonitor/${FULLNAME}-gateway`, `ServiceMonitor/${FULLNAME}-worker`],
    );
    // Otherwise the same release.
    const rest = (docs: Manifest[]) =>
      docs
        .filter((d) => !d.apiVersion.startsWith("monitoring.coreos.com/"))
        .map((d) => `${d.kind}/${d.metadata.name}`)
        .sort();
    assert.deepEqual(rest(productionNoOperator), rest(production));
    for (const [component, job, serviceName] of [
      ["gateway", "roomcast", `${FULLNAME}-gateway`],
      ["worker", "roomcast-worker", `${FULLNAME}-worker-metrics`],
    ] as const) {
      const monitor = get(production, "ServiceMonitor", `${FULLNAME}-${component}`);
      const services = production.filter(
        (d) => d.kind === "Service" && matches(monitor.spec.selector.matchLabels, d.metadata.labels),
      );
      assert.deepEqual(
        services.map((s) => s.metadata.name),
        [serviceName],
        `the ${component} ServiceMonitor selects ${services.map((s) => s.metadata.name).join(", ")}`,
      );
      assert.deepEqual(monitor.spec.namespaceSelector, { matchNames: [NAMESPACE] });
      assert.equal(monitor.metadata.labels?.release, "kube-prometheus-stack");
      const [endpoint] = monitor.spec.endpoints;
      assert.equal(endpoint.path, "/metrics");
      assert.ok(
        services[0]!.spec.ports.some((p: { name: string }) => p.name === endpoint.port),
        `port ${endpoint.port}`,
      );
      // The alert rules expect exactly these job names.
      assert.deepEqual(endpoint.relabelings[0], { action: "replace", targetLabel: "job", replacement: job });
    }
  });

  it("holds in the PrometheusRule exactly the groups of grafana/alerts/roomcast-rules.yml", () => {
    const source = parseYaml(readFileSync(join(ROOT, "grafana", "alerts", "roomcast-rules.yml"), "utf8"));
    assert.deepEqual(
      get(variant, "PrometheusRule", FULLNAME).spec.groups,
      source.groups,
      "as is without additionalRuleLabels",
    );
    // With additionalRuleLabels: the same rules, each with the extra labels (its own win).
    const extra = parseYaml(readFileSync(PRODUCTION_VALUES, "utf8")).metrics.prometheusRule.additionalRuleLabels;
    const expected = source.groups.map((g: { rules: { labels?: Record<string, string> }[] }) => ({
      ...g,
      rules: g.rules.map((r) => ({ ...r, labels: { ...extra, ...r.labels } })),
    }));
    assert.deepEqual(get(production, "PrometheusRule", FULLNAME).spec.groups, expected);
    const rule = get(production, "PrometheusRule", FULLNAME);
    assert.equal(rule.metadata.labels?.release, "kube-prometheus-stack");
  });

  it("holds in the dashboard ConfigMaps exactly the JSON of grafana/dashboards, labelled for the Grafana sidecar", () => {
    const files = readdirSync(join(ROOT, "grafana", "dashboards"))
      .filter((f) => f.endsWith(".json"))
      .sort();
    assert.equal(files.length, 4);
    const maps = production.filter((d) => d.kind === "ConfigMap" && d.metadata.labels?.grafana_dashboard === "1");
    assert.equal(maps.length, files.length, `dashboard ConfigMaps: ${maps.map((m) => m.metadata.name).join(", ")}`);
    for (const file of files) {
      const map = maps.find((m) => file in (m.data ?? {}));
      assert.ok(map, `no ConfigMap holds ${file}`);
      assert.deepEqual(Object.keys(map.data), [file]);
      assert.equal(
        map.data[file],
        readFileSync(join(ROOT, "grafana", "dashboards", file), "utf8"),
        `${file} differs from grafana/dashboards`,
      );
      assert.equal(map.metadata.annotations?.grafana_folder, "roomcast");
    }
    assert.equal(
      defaults.filter((d) => d.metadata.labels?.grafana_dashboard).length,
      0,
      "no dashboards unless enabled",
    );
  });

  it("keeps byte-identical copies of grafana/ in files/ (npx tsx scripts/sync-chart-files.ts)", () => {
    const copies = chartFileCopies(ROOT);
    assert.equal(copies.length, 5);
    for (const { source, copy } of copies) {
      assert.ok(existsSync(copy), `${copy} is missing: run npx tsx scripts/sync-chart-files.ts`);
      assert.ok(
        readFileSync(source).equals(readFileSync(copy)),
        `${copy} differs from ${source}: run npx tsx scripts/sync-chart-files.ts`,
      );
    }
    assert.deepEqual(
      readdirSync(join(CHART, "files", "dashboards")).sort(),
      readdirSync(join(ROOT, "grafana", "dashboards"))
        .filter((f) => f.endsWith(".json"))
        .sort(),
    );
  });

  it("says in NOTES.txt how to reach it, mint a token and see metrics", () => {
    const d = notes.defaults;
    assert.match(d, /kubectl -n realtime port-forward service\/rc-roomcast-gateway 3000:3000/);
    assert.ok(
      d.includes(
        `kubectl -n realtime exec deploy/rc-roomcast-gateway -c gateway -- \\\n    node dist/cli.js token --sub dev --envs '*' --scope "publish env:read jobs:read jobs:write admin"`,
      ),
      d,
    );
    assert.match(d, /curl -s localhost:9300\/metrics/);
    assert.match(d, /WARNING: REDIS_URL points at the embedded single-pod Redis/);
    const p = notes.production;
    assert.match(p, /Socket\.IO: https:\/\/rt\.example\.com/);
    assert.match(p, /auth\.method is jwks: gateways verify tokens signed by your identity provider/);
    assert.doesNotMatch(p, /dist\/cli\.js token/);
    assert.match(
      p,
      /ServiceMonitors rc-roomcast-gateway \(job "roomcast"\) and rc-roomcast-worker \(job "roomcast-worker"\)/,
    );
    assert.match(p, /custom\.metrics\.k8s\.io/);
    assert.doesNotMatch(p, /WARNING/);
    assert.match(
      notes.productionNoOperator,
      /WARNING: metrics\.serviceMonitor\.enabled is true, but the cluster has no monitoring\.coreos\.com\/v1/,
    );
  });

  it("refuses bad values through values.schema.json, naming the value", () => {
    const expect: Record<string, RegExp> = {
      replicas: /\/gateway\/replicas': minimum: got -1, want 0/,
      topLevel: /additional properties 'ingres' not allowed/,
      className: /\/ingress\/className': got number, want string/,
      settingTypo: /\/settings': additional properties 'ROOMCAST_MAX_CONECTIONS_PER_IP' not allowed/,
      managed: /\/settings': additional properties 'ROOMCAST_DRAIN_S' not allowed/,
      nsTypo: /\/channelNamespaces\/chat\/subscribe\/match': value must be one of/,
      nsJoinLeave: /\/channelNamespaces\/chat': missing property 'presence'/,
      method: /\/auth\/method': value must be one of 'hs256', 'publicKey', 'jwks'/,
      redisScheme: /\/redis\/url'/,
      webhookSetting: /\/settings': additional properties 'ROOMCAST_WEBHOOK_URLS' not allowed/,
      webhookScheme: /\/webhooks\/urls\/0': 'ftp:\/\/hooks\.example\.com\/roomcast' does not match pattern/,
      webhookEvent: /\/webhooks\/events\/0': value must be one of 'channel_occupied'/,
      webhookShortSecret: /\/webhooks\/secret': 'too-short' does not match pattern/,
    };
    for (const [name, pattern] of Object.entries(expect)) {
      const result = refusals[name]!;
      assert.notEqual(result.code, 0, `${name}: helm ${result.args.join(" ")} succeeded`);
      assert.match(result.stderr, /values don't meet the specifications of the schema/, `${name}: ${result.stderr}`);
      assert.match(result.stderr, pattern, `${name}: ${result.stderr}`);
    }
  });

  it("fails rendering with a clear message without Redis, without a key, without a webhook secret, or with a grace period too short", () => {
    const expect: Record<string, RegExp> = {
      noRedis:
        /roomcast: no Redis configured\. Set redis\.url .*redis\+cluster:\/\/.*existingSecret.*redis\.embedded\.enabled=true/,
      gatewayGrace:
        /roomcast: gateway\.terminationGracePeriodSeconds is 30, but must be greater than gateway\.preStopSleepSeconds \+ gateway\.drainSeconds \+ 15 = 30/,
      workerGrace: /roomcast: worker\.terminationGracePeriodSeconds is 45, but must be greater than .* = 45/,
      noKey: /roomcast: no JWT key configured for auth\.method=hs256\. Set auth\.jwtSecret/,
      jwksConflict:
        /roomcast: auth\.jwtSecret is set but auth\.method is jwks; the gateway takes exactly one key setting/,
      noGatewayApi: /roomcast: httpRoute\.enabled is true but the cluster has no gateway\.networking\.k8s\.io\/v1 API/,
      webhookNoSecret:
        /roomcast: webhooks\.urls is set but webhooks\.secret is empty: webhooks are signed\. Set webhooks\.secret .*or existingSecret with the key ROOMCAST_WEBHOOK_SECRET/,
      webhookSecretAndExisting:
        /roomcast: webhooks\.secret is set, but with existingSecret the webhook secret is read from its key ROOMCAST_WEBHOOK_SECRET; .*unset webhooks\.secret/,
      webhookSecretOnly: /roomcast: webhooks\.secret is set but webhooks\.urls is empty/,
    };
    for (const [name, pattern] of Object.entries(expect)) {
      const result = failures[name]!;
      assert.notEqual(result.code, 0, `${name}: helm ${result.args.join(" ")} succeeded`);
      assert.match(result.stderr, pattern, `${name}: ${result.stderr}`);
    }
  });

  it("documents every value in values.yaml (a comment above it) and in the chart README's table", () => {
    const doc = parseDocument(readFileSync(join(CHART, "values.yaml"), "utf8"));
    const readme = readFileSync(join(CHART, "README.md"), "utf8");
    // Values whose content is free-form (Kubernetes objects, settings by name) are one row.
    const FREE_FORM = new Set([
      "settings",
      "channelNamespaces",
      "resources",
      "behavior",
      "podSecurityContext",
      "containerSecurityContext",
      "strategy",
      "socketTimeouts",
      "apiTimeouts",
    ]);
    const leaves: string[] = [];
    const walk = (map: YAMLMap, path: string[], commentedParent: boolean) => {
      map.items.forEach((pair, i) => {
        const key = String((pair.key as Scalar).value);
        const here = [...path, key];
        const own = Boolean(
          (pair.key as Scalar).commentBefore ||
          (i === 0 && map.commentBefore) ||
          (path.length === 0 && i === 0 && doc.commentBefore),
        );
        if (isMap(pair.value) && pair.value.items.length > 0 && !FREE_FORM.has(key))
          walk(pair.value, here, own || commentedParent);
        else {
          leaves.push(here.join("."));
          assert.ok(
            own || (commentedParent && FREE_FORM.has(path[path.length - 1] ?? "")),
            `values.yaml: ${here.join(".")} has no comment above it`,
          );
        }
      });
    };
    walk(doc.contents as YAMLMap, [], false);
    assert.ok(leaves.length > 100, `${leaves.length} values`);
    for (const leaf of leaves)
      assert.ok(readme.includes(`| \`${leaf}\` |`), `helm/roomcast/README.md has no row for ${leaf}`);
  });
});
