{{/*
Safe routes, least-privilege Secret keys and a shared prediction store (issue 11).
*/}}

{{/*
The routes of the service that must not be public without a bearer token (service/app.py
checks API_TOKEN on them): labels that training uses, and the model switch.
*/}}
{{- define "reggaeton.tokenRoutes" -}}
{{- list "/feedback" "/admin/reload" | toJson }}
{{- end }}

{{/*
Paths of one ingress host: its own `paths`, else ingress.paths (the prediction endpoints and
the API docs). Call: include "reggaeton.ingressPaths" (list $ .) -> JSON list.
*/}}
{{- define "reggaeton.ingressPaths" -}}
{{- $root := index . 0 }}
{{- $host := index . 1 }}
{{- default $root.Values.ingress.paths $host.paths | toJson }}
{{- end }}

{{/*
"true" when an ingress path routes `route`: Exact matches the path only; Prefix (and
ImplementationSpecific, which controllers such as ingress-nginx treat as a prefix) matches by
path element, so "/" and "/admin" route "/admin/reload" but "/adm" does not.
Call: include "reggaeton.pathRoutes" (list $path $route).
*/}}
{{- define "reggaeton.pathRoutes" -}}
{{- $p := index . 0 }}
{{- $route := index . 1 }}
{{- if eq $p.pathType "Exact" }}
{{- if eq (trimSuffix "/" $p.path) $route }}true{{ end }}
{{- else }}
{{- $prefix := trimSuffix "/" $p.path }}
{{- if or (eq $prefix "") (eq $prefix $route) (hasPrefix (printf "%s/" $prefix) $route) }}true{{ end }}
{{- end }}
{{- end }}

{{/*
Whether the pods get an API token: secret.apiToken (rendered Secret), or an existingSecret the
operator declares to hold API_TOKEN (existingSecretOptions.hasApiToken: the key is then
required, so a pod without it does not start).
*/}}
{{- define "reggaeton.hasApiToken" -}}
{{- if .Values.existingSecret }}
{{- if .Values.existingSecretOptions.hasApiToken }}true{{ end }}
{{- else if .Values.secret.apiToken }}true{{ end }}
{{- end }}

{{/*
Refuse an Ingress that routes /feedback or /admin/reload to the public without a token.
*/}}
{{- define "reggaeton.checkIngress" -}}
{{- $root := . }}
{{- if not (or (include "reggaeton.hasApiToken" $root) $root.Values.ingress.allowUnauthenticated) }}
{{- range $host := $root.Values.ingress.hosts }}
{{- range $p := include "reggaeton.ingressPaths" (list $root $host) | fromJsonArray }}
{{- range $route := include "reggaeton.tokenRoutes" $root | fromJsonArray }}
{{- if include "reggaeton.pathRoutes" (list $p $route) }}
{{- fail (printf "ingress: host %q path %q (%s) routes %s to the public, but the pods have no API_TOKEN: anyone could post the labels that training uses or switch models. Set secret.apiToken (or, with existingSecret, put API_TOKEN in it and set existingSecretOptions.hasApiToken=true), route only the prediction and docs paths (the default ingress.paths), or set ingress.allowUnauthenticated=true when the ingress controller authenticates these routes itself" $host.host $p.path $p.pathType $route) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Secret keys each component reads (nothing else reaches its environment): serving reads the
store and the token, the monitor the store and its alert credentials, train the store (the
labelled rows), score the store (only with score.logPredictions), bootstrap none. secret.extra keys go to every application container.
*/}}
{{- define "reggaeton.componentSecretKeys" -}}
{{- $keys := dict
  "serving" (list "PREDICTION_STORE_URI" "API_TOKEN")
  "monitor" (list "PREDICTION_STORE_URI" "ALERT_WEBHOOK_URL" "SMTP_USER" "SMTP_PASSWORD")
  "train" (list "PREDICTION_STORE_URI")
  "score" (list "PREDICTION_STORE_URI")
  "bootstrap" (list) }}
{{- if not (hasKey $keys .) }}
{{- fail (printf "reggaeton.componentSecretKeys: no Secret keys declared for component %q (templates/_safety.tpl)" .) }}
{{- end }}
{{- index $keys . | toJson }}
{{- end }}

{{/*
env entries (secretKeyRef, one per key) of a component's Secret keys.
Call: include "reggaeton.secretEnv" (list $ "serving").
Rendered Secret: exactly the keys it holds (empty values are not rendered). existingSecret:
PREDICTION_STORE_URI is required (the shared store), API_TOKEN is required when
existingSecretOptions.hasApiToken, every other key is optional (a missing key leaves the
variable unset, as Kubernetes does for optional references).
*/}}
{{- define "reggaeton.secretEnv" -}}
{{- $root := index . 0 }}
{{- $name := include "reggaeton.secretName" $root }}
{{- $existing := $root.Values.existingSecret }}
{{- $s := $root.Values.secret }}
{{- $rendered := dict "PREDICTION_STORE_URI" true "API_TOKEN" $s.apiToken "ALERT_WEBHOOK_URL" $s.alertWebhookUrl "SMTP_USER" $s.smtpUser "SMTP_PASSWORD" $s.smtpPassword }}
{{- $required := dict "PREDICTION_STORE_URI" true "API_TOKEN" $root.Values.existingSecretOptions.hasApiToken }}
{{- $env := list }}
{{- range $key := include "reggaeton.componentSecretKeys" (index . 1) | fromJsonArray }}
{{- if or $existing (index $rendered $key) }}
{{- $ref := dict "name" $name "key" $key }}
{{- if and $existing (not (index $required $key)) }}
{{- $_ := set $ref "optional" true }}
{{- end }}
{{- $env = append $env (dict "name" $key "valueFrom" (dict "secretKeyRef" $ref)) }}
{{- end }}
{{- end }}
{{- if not $existing }}
{{- range $key, $_ := $s.extra }}
{{- $env = append $env (dict "name" $key "valueFrom" (dict "secretKeyRef" (dict "name" $name "key" $key))) }}
{{- end }}
{{- end }}
{{- with $env }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
"true" when PREDICTION_STORE_URI is a SQLite file private to each pod: the chart's fallback
(no URI, no in-chart MongoDB), a relative path (under the working directory, whose writable
parts are scratch emptyDirs), or an absolute one on /tmp or a scratch dir. An absolute path
elsewhere (a shared volume from `volumes`) is the user's explicit choice. existingSecret: the
URI comes from the Secret, where PREDICTION_STORE_URI is a required key.
*/}}
{{- define "reggaeton.perPodStore" -}}
{{- if not .Values.existingSecret }}
{{- $uri := include "reggaeton.predictionStoreUri" . }}
{{- if hasPrefix "sqlite:" $uri }}
{{- $path := trimPrefix "sqlite:///" $uri }}
{{- $private := or (not (hasPrefix "/" $path)) (hasPrefix "/tmp/" $path) }}
{{- range .Values.scratch.dirs }}
{{- if hasPrefix (printf "%s/%s/" $.Values.workingDir .) $path }}
{{- $private = true }}
{{- end }}
{{- end }}
{{- if $private }}true{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse several serving pods, or a monitor, on per-pod SQLite: /feedback would answer 404 on
the pod that did not log the prediction and the monitor would read its own empty file.
*/}}
{{- define "reggaeton.checkStore" -}}
{{- if include "reggaeton.perPodStore" . }}
{{- $uri := include "reggaeton.predictionStoreUri" . }}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "PREDICTION_STORE_URI %s is a SQLite file inside each serving pod, and %s: each pod would log to its own file, so /feedback answers 404 when it reaches another pod than the prediction did, and the monitor sees none of them. Use one shared store: mongodb.enabled=true (in-chart, single node), secret.predictionStoreUri=mongodb://... or existingSecret with PREDICTION_STORE_URI; or run one replica (replicaCount=1, autoscaling.enabled=false)" $uri (ternary "autoscaling is enabled" (printf "replicaCount is %d" (int .Values.replicaCount)) .Values.autoscaling.enabled)) }}
{{- end }}
{{- if .Values.monitor.enabled }}
{{- fail (printf "PREDICTION_STORE_URI %s is a SQLite file inside each serving pod, and monitor.enabled is true: the monitor's pod would read its own empty file and report insufficient data forever. Use one shared store (mongodb.enabled=true, secret.predictionStoreUri=mongodb://... or an absolute sqlite://// path on a shared volume, or existingSecret), or set monitor.enabled=false" $uri) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
PREDICTION_SPILL_DRAIN_S, refused when the serving pods' grace period cannot hold it: the
kubelet kills a pod after terminationGracePeriodSeconds, preStop sleep included, and the drain
runs after gRPC's grace (up to 6 s) and the queue flush.
*/}}
{{- define "reggaeton.spillDrainSeconds" -}}
{{- $drain := int .Values.config.predictionLog.spillDrainSeconds }}
{{- $needed := add (int .Values.preStopSleepSeconds) $drain 15 }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds %d is shorter than preStopSleepSeconds (%d) + config.predictionLog.spillDrainSeconds (%d) + 15 s: a pod deleted during a store outage would be killed before its spill is replayed, and its spill (an emptyDir) deleted with it. Raise terminationGracePeriodSeconds to %d or lower spillDrainSeconds" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $drain $needed) }}
{{- end }}
{{- $drain }}
{{- end }}

{{/*
Bytes of a Kubernetes quantity from values (1Gi, 512Mi, 1G, or a plain number).
*/}}
{{- define "reggaeton.bytes" -}}
{{- $q := toString . }}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- $n := "" }}
{{- range $suffix, $factor := $units }}
{{- if and (not $n) (hasSuffix $suffix $q) }}
{{- $n = mul (int64 (trimSuffix $suffix $q)) $factor | toString }}
{{- end }}
{{- end }}
{{- default (include "reggaeton.number" .) $n }}
{{- end }}

{{/*
PREDICTION_SPILL_MAX_BYTES, refused unless the spill files fit the var/ scratch emptyDir: the
kubelet evicts a pod whose emptyDir exceeds its sizeLimit, and the spill goes with it. Each of
the service's 2 workers (service/service.py WORKERS) has a spill file and a rejects file, both
capped by it; 128 MiB stay for the rest of var/ (SQLite fallbacks).
*/}}
{{- define "reggaeton.spillMaxBytes" -}}
{{- $cap := int64 .Values.config.predictionLog.spillMaxBytes }}
{{- $limit := int64 (include "reggaeton.bytes" .Values.scratch.sizeLimit) }}
{{- $needed := add (mul 2 2 $cap) 134217728 }}
{{- if or (eq $cap 0) (gt (int64 $needed) $limit) }}
{{- fail (printf "config.predictionLog.spillMaxBytes %d does not fit scratch.sizeLimit %v (%d bytes): 2 workers x (spill + rejects file) x the cap + 128 MiB = %d bytes. A spill past the emptyDir's sizeLimit gets the pod evicted and its spill deleted; 0 (no cap) is refused for the same reason. Lower spillMaxBytes to %d or raise scratch.sizeLimit" $cap .Values.scratch.sizeLimit $limit (int64 $needed) (div (sub $limit 134217728) 4)) }}
{{- end }}
{{- $cap }}
{{- end }}
