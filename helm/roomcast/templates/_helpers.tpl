{{/* vim: set filetype=mustache: */}}

{{/* The chart name (app.kubernetes.io/name). */}}
{{- define "roomcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name prefix of every resource: <release>-roomcast, or the release name when it
already contains the chart name. Truncated so that the longest suffix the chart adds
("-worker-metrics", 15 characters) keeps names within 63 characters.
*/}}
{{- define "roomcast.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Resource names. */}}
{{- define "roomcast.gateway.fullname" -}}{{ include "roomcast.fullname" . }}-gateway{{- end -}}
{{- define "roomcast.worker.fullname" -}}{{ include "roomcast.fullname" . }}-worker{{- end -}}
{{- define "roomcast.redis.fullname" -}}{{ include "roomcast.fullname" . }}-redis{{- end -}}
{{- define "roomcast.configFile.name" -}}{{ include "roomcast.fullname" . }}-config{{- end -}}

{{/* chart label value: name-version. */}}
{{- define "roomcast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "roomcast.labels" -}}
helm.sh/chart: {{ include "roomcast.chart" . }}
app.kubernetes.io/name: {{ include "roomcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: roomcast
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a component's resources: pass (dict "ctx" $ "component" "gateway"). */}}
{{- define "roomcast.componentLabels" -}}
{{ include "roomcast.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Labels of a component's pods: no helm.sh/chart, so that upgrading only the chart (a new chart
version, same settings and image) does not restart every gateway and move all its clients.
*/}}
{{- define "roomcast.podLabels" -}}
{{ include "roomcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: roomcast
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
sha256 of the data of a rendered ConfigMap or Secret template (not its metadata, which names
the chart version): pass (dict "ctx" $ "template" "/configmap-gateway.yaml").
*/}}
{{- define "roomcast.dataChecksum" -}}
{{- $rendered := include (print .ctx.Template.BasePath .template) .ctx | fromYaml -}}
{{- toJson (dict "data" (default dict $rendered.data) "stringData" (default dict $rendered.stringData)) | sha256sum -}}
{{- end -}}

{{/* Selector labels of a component: pass (dict "ctx" $ "component" "gateway"). */}}
{{- define "roomcast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "roomcast.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* metadata.annotations of a resource: commonAnnotations merged with the given ones. */}}
{{- define "roomcast.annotations" -}}
{{- $all := merge (deepCopy (default dict .extra)) (deepCopy (default dict .ctx.Values.commonAnnotations)) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount of the pods. */}}
{{- define "roomcast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "roomcast.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference: pass a dict with registry, repository, tag, digest. */}}
{{- define "roomcast.imageRef" -}}
{{- $repo := .repository -}}
{{- if .registry }}{{ $repo = printf "%s/%s" .registry .repository }}{{ end -}}
{{- if .digest -}}
{{- printf "%s@%s" $repo .digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString .tag) -}}
{{- end -}}
{{- end -}}

{{/* The gateway image. */}}
{{- define "roomcast.image" -}}
{{- include "roomcast.imageRef" (dict "registry" .Values.image.registry "repository" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) -}}
{{- end -}}

{{/* The worker image: worker.image where set, else image. */}}
{{- define "roomcast.worker.image" -}}
{{- $w := .Values.worker.image -}}
{{- if $w.repository -}}
{{- include "roomcast.imageRef" (dict "registry" (default .Values.image.registry $w.registry) "repository" $w.repository "tag" (default (default .Chart.AppVersion .Values.image.tag) $w.tag) "digest" $w.digest) -}}
{{- else -}}
{{- include "roomcast.imageRef" (dict "registry" (default .Values.image.registry $w.registry) "repository" .Values.image.repository "tag" (default (default .Chart.AppVersion .Values.image.tag) $w.tag) "digest" (default .Values.image.digest $w.digest)) -}}
{{- end -}}
{{- end -}}

{{/* The embedded Redis image. */}}
{{- define "roomcast.redis.image" -}}
{{- $i := .Values.redis.embedded.image -}}
{{- include "roomcast.imageRef" (dict "registry" $i.registry "repository" $i.repository "tag" $i.tag "digest" "") -}}
{{- end -}}

{{/* imagePullSecrets of a pod spec. */}}
{{- define "roomcast.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
  {{- range . }}
  - name: {{ . | quote }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/* The Secret the pods read: existingSecret, or the chart's own. */}}
{{- define "roomcast.secretName" -}}
{{- default (include "roomcast.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/*
Where REDIS_URL comes from: "embedded", "secret" (the chart's Secret, from redis.url) or
"existingSecret". Fails, saying what to set, when nothing (or two things) configure it.
*/}}
{{- define "roomcast.redisSource" -}}
{{- if .Values.redis.embedded.enabled -}}
{{- if .Values.redis.url -}}
{{- fail "roomcast: redis.url and redis.embedded.enabled are both set; choose one (the embedded Redis is for trials only)" -}}
{{- end -}}
embedded
{{- else if .Values.existingSecret -}}
{{- if .Values.redis.url -}}
{{- fail (printf "roomcast: redis.url is set, but with existingSecret the Redis URL is read from its key %s; put the URL there and unset redis.url" .Values.existingSecretKeys.redisUrl) -}}
{{- end -}}
existingSecret
{{- else if .Values.redis.url -}}
secret
{{- else -}}
{{- fail "roomcast: no Redis configured. Set redis.url (redis://host:6379, rediss://..., or redis+cluster://host:port,host:port for Redis Cluster), or existingSecret with a REDIS_URL key, or redis.embedded.enabled=true for a trial (single pod, no persistence: not for production)" -}}
{{- end -}}
{{- end -}}

{{/* REDIS_URL of the embedded Redis. */}}
{{- define "roomcast.redis.embeddedUrl" -}}
{{- printf "redis://%s:6379" (include "roomcast.redis.fullname" .) -}}
{{- end -}}

{{/*
Checks the JWT key settings (exactly one, per auth.method) and the admin settings; fails with
a message naming the values to set.
*/}}
{{- define "roomcast.validateAuth" -}}
{{- $a := .Values.auth -}}
{{- $given := dict "hs256" $a.jwtSecret "publicKey" $a.publicKey "jwks" $a.jwks -}}
{{- $valueOf := dict "hs256" "auth.jwtSecret" "publicKey" "auth.publicKey" "jwks" "auth.jwks" -}}
{{- range $method, $value := $given -}}
{{- if and $value (ne $method $a.method) -}}
{{- fail (printf "roomcast: %s is set but auth.method is %s; the gateway takes exactly one key setting: unset %s or set auth.method=%s" (get $valueOf $method) $a.method (get $valueOf $method) $method) -}}
{{- end -}}
{{- end -}}
{{- if $.Values.existingSecret -}}
{{- if get $given $a.method -}}
{{- fail (printf "roomcast: %s is set, but with existingSecret the key is read from that Secret; unset %s" (get $valueOf $a.method) (get $valueOf $a.method)) -}}
{{- end -}}
{{- else if not (get $given $a.method) -}}
{{- fail (printf "roomcast: no JWT key configured for auth.method=%s. Set %s (for hs256: --set auth.jwtSecret=$(openssl rand -base64 32)), or existingSecret with the key %s" $a.method (get $valueOf $a.method) (include "roomcast.authSecretKey" $)) -}}
{{- end -}}
{{- if .Values.admin.enabled -}}
{{- if not .Values.admin.user -}}
{{- fail "roomcast: admin.enabled is true but admin.user is empty (ROOMCAST_ADMIN_USER)" -}}
{{- end -}}
{{- if and (not .Values.existingSecret) (not .Values.admin.passwordHash) -}}
{{- fail "roomcast: admin.enabled is true but admin.passwordHash is empty: set a bcrypt hash (htpasswd -nbBC 12 \"\" 'password' | tr -d ':\\n') or existingSecret with the key ROOMCAST_ADMIN_PASSWORD_HASH" -}}
{{- end -}}
{{- if and .Values.existingSecret .Values.admin.passwordHash -}}
{{- fail "roomcast: admin.passwordHash is set, but with existingSecret the hash is read from that Secret; unset admin.passwordHash" -}}
{{- end -}}
{{- else if .Values.admin.passwordHash -}}
{{- fail "roomcast: admin.passwordHash is set but admin.enabled is false; set admin.enabled=true (and admin.user) or unset it" -}}
{{- end -}}
{{- end -}}

{{/* Whether presence webhooks are on (webhooks.urls set). */}}
{{- define "roomcast.webhooksEnabled" -}}
{{- if .Values.webhooks.urls -}}true{{- end -}}
{{- end -}}

{{/*
Checks the webhook values: with urls, the secret comes from webhooks.secret or existingSecret
(roomcast refuses to start without one); a secret with nothing to sign is a mistake.
*/}}
{{- define "roomcast.validateWebhooks" -}}
{{- $w := .Values.webhooks -}}
{{- $key := .Values.existingSecretKeys.webhookSecret -}}
{{- if and .Values.existingSecret $w.secret -}}
{{- fail (printf "roomcast: webhooks.secret is set, but with existingSecret the webhook secret is read from its key %s; put it there and unset webhooks.secret" $key) -}}
{{- end -}}
{{- if $w.urls -}}
{{- if and (not .Values.existingSecret) (not $w.secret) -}}
{{- fail (printf "roomcast: webhooks.urls is set but webhooks.secret is empty: webhooks are signed. Set webhooks.secret (at least 32 bytes: --set webhooks.secret=$(openssl rand -base64 32)), or existingSecret with the key %s" $key) -}}
{{- end -}}
{{- else if $w.secret -}}
{{- fail "roomcast: webhooks.secret is set but webhooks.urls is empty; set webhooks.urls or unset webhooks.secret" -}}
{{- end -}}
{{- end -}}

{{/* The key (in the chart's Secret or existingSecret) of the auth.method's key material. */}}
{{- define "roomcast.authSecretKey" -}}
{{- $k := .Values.existingSecretKeys -}}
{{- if eq .Values.auth.method "hs256" -}}{{ $k.jwtSecret }}
{{- else if eq .Values.auth.method "publicKey" -}}{{ $k.jwtPublicKey }}
{{- else -}}{{ $k.jwks }}
{{- end -}}
{{- end -}}

{{/* The file name the key material is mounted as (publicKey, jwks). */}}
{{- define "roomcast.authFileName" -}}
{{- if eq .Values.auth.method "publicKey" -}}public.pem{{- else -}}jwks.json{{- end -}}
{{- end -}}

{{/* ROOMCAST_TRUST_PROXY: gateway.trustProxy, or 1 behind an ingress or Gateway, else 0. */}}
{{- define "roomcast.trustProxy" -}}
{{- if kindIs "invalid" .Values.gateway.trustProxy -}}
{{- if or .Values.ingress.enabled .Values.httpRoute.enabled -}}1{{- else -}}0{{- end -}}
{{- else -}}
{{- int64 .Values.gateway.trustProxy -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds of a workload: pass (dict "w" .Values.gateway "name" "gateway").
The process exits 1 by itself drainSeconds + 15 s after SIGTERM, which comes after the preStop
hook: the grace period must be longer than all of that, or the kubelet SIGKILLs a pod that is
still moving its clients.
*/}}
{{- define "roomcast.terminationGracePeriod" -}}
{{- $w := .w -}}
{{- $floor := add (int64 $w.preStopSleepSeconds) (int64 $w.drainSeconds) 15 -}}
{{- if kindIs "invalid" $w.terminationGracePeriodSeconds -}}
{{- add $floor 5 -}}
{{- else if le (int64 $w.terminationGracePeriodSeconds) $floor -}}
{{- fail (printf "roomcast: %s.terminationGracePeriodSeconds is %d, but must be greater than %s.preStopSleepSeconds + %s.drainSeconds + 15 = %d (the drain ends at most drainSeconds + 15 s after SIGTERM, which comes after the preStop sleep); raise it, or leave it null to have it computed" .name (int64 $w.terminationGracePeriodSeconds) .name .name $floor) -}}
{{- else -}}
{{- int64 $w.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
An environment value as a string: integers without exponent (YAML numbers reach templates as
float64), lists joined with commas.
*/}}
{{- define "roomcast.envValue" -}}
{{- $v := . -}}
{{- if kindIs "slice" $v -}}
{{- join "," $v -}}
{{- else if and (kindIs "float64" $v) (eq $v (float64 (int64 $v))) -}}
{{- int64 $v -}}
{{- else -}}
{{- toString $v -}}
{{- end -}}
{{- end -}}

{{/* Whether the ROOMCAST_CONFIG file is rendered. */}}
{{- define "roomcast.hasConfigFile" -}}
{{- if .Values.channelNamespaces -}}true{{- end -}}
{{- end -}}

{{/* The ROOMCAST_CONFIG file's directory and path in the pods. */}}
{{- define "roomcast.configFile.dir" -}}/etc/roomcast/config{{- end -}}
{{- define "roomcast.configFile.path" -}}{{ include "roomcast.configFile.dir" . }}/roomcast.yaml{{- end -}}

{{/*
Topology spread constraints of a component: pass (dict "ctx" $ "w" .Values.gateway "component"
"gateway").
*/}}
{{- define "roomcast.topologySpread" -}}
{{- if .w.topologySpreadConstraints -}}
topologySpreadConstraints:
  {{- toYaml .w.topologySpreadConstraints | nindent 2 }}
{{- else if .w.topologySpread.enabled -}}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - topologyKey: {{ . }}
    maxSkew: {{ $.w.topologySpread.maxSkew }}
    whenUnsatisfiable: {{ $.w.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "roomcast.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
An HTTP probe: pass (dict "p" .Values.gateway.readinessProbe "path" "/readyz").
*/}}
{{- define "roomcast.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .p.initialDelaySeconds }}
periodSeconds: {{ .p.periodSeconds }}
timeoutSeconds: {{ .p.timeoutSeconds }}
failureThreshold: {{ .p.failureThreshold }}
successThreshold: {{ .p.successThreshold }}
{{- end -}}

{{/* Whether the Prometheus Operator CRDs are there. */}}
{{- define "roomcast.hasPrometheusOperator" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

{{/*
The paths routed from outside (Ingress and HTTPRoute): pass (dict "ctx" $ "paths" .Values.ingress.paths).
Each line: "<pathType> <path> <socket|api>". /metrics, /healthz and /readyz are never among them.
*/}}
{{- define "roomcast.publicPaths" -}}
Prefix /socket.io/ socket
Prefix /v1/ api
{{- if .paths.console }}
Exact / api
Prefix /console/ api
{{- end }}
{{- if .paths.admin }}
Prefix /admin/ api
{{- end }}
{{- end -}}

{{/* Checks that the routed console and admin paths have something to route to. */}}
{{- define "roomcast.validateRoutes" -}}
{{- $routes := dict -}}
{{- if .Values.ingress.enabled }}{{ $_ := set $routes "ingress" .Values.ingress.paths }}{{ end -}}
{{- if .Values.httpRoute.enabled }}{{ $_ := set $routes "httpRoute" .Values.httpRoute.paths }}{{ end -}}
{{- range $kind, $paths := $routes -}}
{{- if and $paths.console (not $.Values.gateway.console) -}}
{{- fail (printf "roomcast: %s.paths.console is true but gateway.console is false: / would answer 404; set gateway.console=true" $kind) -}}
{{- end -}}
{{- if and $paths.admin (not $.Values.admin.enabled) -}}
{{- fail (printf "roomcast: %s.paths.admin is true but admin.enabled is false: /admin/ would answer 404; set admin.enabled=true (with admin.user and a password hash)" $kind) -}}
{{- end -}}
{{- end -}}
{{- end -}}
