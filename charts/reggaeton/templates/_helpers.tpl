{{/*
Chart name (app.kubernetes.io/name).
*/}}
{{- define "reggaeton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name: fullnameOverride, else the release name. Deliberately the release name
(not "<release>-<chart>"), so `make retrain` / `make rollback` can address
deployment/<release> and cronjob/<release>-train for any release name.
*/}}
{{- define "reggaeton.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- end }}

{{- define "reggaeton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "reggaeton.labels" -}}
helm.sh/chart: {{ include "reggaeton.chart" . }}
{{ include "reggaeton.selectorLabels" . }}
app.kubernetes.io/version: {{ include "reggaeton.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: reggaeton
{{- end }}

{{/*
Selector labels (without component).
*/}}
{{- define "reggaeton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reggaeton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels / selector labels for one component: include "reggaeton.componentLabels" (list $ "serving").
*/}}
{{- define "reggaeton.componentLabels" -}}
{{ include "reggaeton.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "reggaeton.componentSelectorLabels" -}}
{{ include "reggaeton.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
Service account names.
*/}}
{{- define "reggaeton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reggaeton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reggaeton.monitorServiceAccountName" -}}
{{- if .Values.monitor.serviceAccount.create }}
{{- default (printf "%s-monitor" (include "reggaeton.fullname" .)) .Values.monitor.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.monitor.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reggaeton.trainServiceAccountName" -}}
{{- if .Values.train.serviceAccount.create }}
{{- default (printf "%s-train" (include "reggaeton.fullname" .)) .Values.train.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.train.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image of the service (also used by the monitor, train and test pods). Pinned: the tag defaults to
appVersion, "latest" is rejected by the schema; a digest, when given, wins.
*/}}
{{- define "reggaeton.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "reggaeton.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "reggaeton.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Image of the monitor/train Jobs and the bootstrap init container (jobImage, else the service image).
*/}}
{{- define "reggaeton.jobImage" -}}
{{- $job := .Values.jobImage }}
{{- if not $job.repository }}
{{- include "reggaeton.image" . }}
{{- else if $job.digest }}
{{- printf "%s@%s" $job.repository $job.digest }}
{{- else }}
{{- printf "%s:%s" $job.repository (default (include "reggaeton.imageTag" .) $job.tag) }}
{{- end }}
{{- end }}

{{- define "reggaeton.jobImagePullPolicy" -}}
{{- default .Values.image.pullPolicy .Values.jobImage.pullPolicy }}
{{- end }}

{{/*
Names of generated objects.
*/}}
{{- define "reggaeton.secretName" -}}
{{- default (include "reggaeton.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "reggaeton.modelStoreClaim" -}}
{{- default (printf "%s-model-store" (include "reggaeton.fullname" .)) .Values.modelStore.existingClaim }}
{{- end }}

{{- define "reggaeton.trainCronJobName" -}}
{{- printf "%s-train" (include "reggaeton.fullname" .) }}
{{- end }}

{{- define "reggaeton.mongodbHost" -}}
{{- printf "%s-mongodb" (include "reggaeton.fullname" .) }}
{{- end }}

{{- define "reggaeton.mlflowHost" -}}
{{- printf "%s-mlflow" (include "reggaeton.fullname" .) }}
{{- end }}

{{/*
PREDICTION_STORE_URI: secret.predictionStoreUri, else the in-chart MongoDB, else SQLite in the
pod's scratch directory (one file per pod: a demo default only, the monitor cannot read it).
*/}}
{{- define "reggaeton.predictionStoreUri" -}}
{{- if .Values.secret.predictionStoreUri }}
{{- .Values.secret.predictionStoreUri }}
{{- else if .Values.mongodb.enabled }}
{{- $host := printf "%s:%d" (include "reggaeton.mongodbHost" .) (int .Values.mongodb.port) }}
{{- if .Values.mongodb.auth.enabled }}
{{- printf "mongodb://%s:%s@%s/%s?authSource=admin" (.Values.mongodb.auth.rootUsername | urlquery) (required "mongodb.auth.rootPassword is required when mongodb.auth.enabled" .Values.mongodb.auth.rootPassword | urlquery) $host .Values.mongodb.database }}
{{- else }}
{{- printf "mongodb://%s/%s" $host .Values.mongodb.database }}
{{- end }}
{{- else }}
{{- printf "sqlite:///%s/var/predictions.db" .Values.workingDir }}
{{- end }}
{{- end }}

{{/*
MLFLOW_TRACKING_URI: config.mlflowTrackingUri, else the in-chart MLflow server, else SQLite in
the pod's scratch directory (ephemeral).
*/}}
{{- define "reggaeton.mlflowTrackingUri" -}}
{{- if .Values.config.mlflowTrackingUri }}
{{- .Values.config.mlflowTrackingUri }}
{{- else if .Values.mlflow.enabled }}
{{- printf "http://%s:%d" (include "reggaeton.mlflowHost" .) (int .Values.mlflow.port) }}
{{- else }}
{{- printf "sqlite:///%s/var/mlflow.db" .Values.workingDir }}
{{- end }}
{{- end }}

{{/*
Pod-level annotations that roll the pods when the configuration changes.
*/}}
{{- define "reggaeton.checksums" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.existingSecret }}
checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
{{- else }}
{{- /* A Secret the chart does not render: hash what `lookup` reads at install/upgrade time
(empty under `helm template`), and/or the checksum the user's CD computed. */}}
{{- if .Values.existingSecretOptions.lookup }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace .Values.existingSecret }}
{{- with $existing }}
checksum/secret: {{ toJson (.data | default dict) | sha256sum }}
{{- end }}
{{- end }}
{{- with .Values.existingSecretOptions.checksum }}
checksum/existing-secret: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Non-secret environment shared by every application container (serving, monitor, train,
bootstrap): the ConfigMap. Secret keys are not loaded wholesale: each container lists the keys
it reads with include "reggaeton.secretEnv" (list $ "<component>") (templates/_safety.tpl).
*/}}
{{- define "reggaeton.envFrom" -}}
- configMapRef:
    name: {{ include "reggaeton.fullname" . }}
{{- end }}

{{- define "reggaeton.podEnv" -}}
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}

{{/*
Writable scratch space for a read-only root filesystem: /tmp plus one emptyDir per entry of
scratchDirs under the image's working directory (var/ for local state, reports/, mlruns/).
*/}}
{{- define "reggaeton.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ include "reggaeton.number" .Values.scratch.tmpSizeLimit }}
{{- range .Values.scratch.dirs }}
- name: scratch-{{ . | replace "/" "-" | replace "_" "-" | replace "." "-" | lower }}
  emptyDir:
    sizeLimit: {{ include "reggaeton.number" $.Values.scratch.sizeLimit }}
{{- end }}
{{- end }}

{{- define "reggaeton.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
{{- range .Values.scratch.dirs }}
- name: scratch-{{ . | replace "/" "-" | replace "_" "-" | replace "." "-" | lower }}
  mountPath: {{ printf "%s/%s" $.Values.workingDir . }}
{{- end }}
{{- end }}

{{- define "reggaeton.modelStoreVolume" -}}
{{- if .Values.modelStore.enabled }}
- name: model-store
  persistentVolumeClaim:
    claimName: {{ include "reggaeton.modelStoreClaim" . }}
{{- end }}
{{- end }}

{{/*
Pod scheduling fields shared by the application pods.
*/}}
{{- define "reggaeton.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
A number from values, rendered without an exponent. Helm reads every number of a values file as
a float64, which prints large values as 8.388608e+06 (a string that no int parser accepts):
whole numbers render as int64, fractions as they are, strings (a quantity such as 1Gi, a
percentage such as 25%) unchanged. Call: include "reggaeton.number" .Values.some.value
*/}}
{{- define "reggaeton.number" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else if eq (float64 (int64 .)) (float64 .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end }}

{{/*
MODEL_TAG of the serving container: modelTag when pinned in values; else the value the live
Deployment carries (set by the train Job's rollout or `kubectl rollout undo`), so that a
`helm upgrade` neither reverts the model nor conflicts with their field ownership (server-side
apply: the same value is shared, not contested); else "" (first install: the bootstrapped
version). `lookup` finds nothing under `helm template` and `--dry-run`.
*/}}
{{- define "reggaeton.modelTag" -}}
{{- if .Values.modelTag -}}
{{- .Values.modelTag -}}
{{- else -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "reggaeton.fullname" .) -}}
{{- $tag := "" -}}
{{- range (dig "spec" "template" "spec" "containers" list $live) -}}
{{- if eq .name "service" -}}
{{- range (.env | default list) -}}
{{- if eq .name "MODEL_TAG" -}}{{- $tag = .value | default "" -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $tag -}}
{{- end -}}
{{- end }}

{{/*
Pod spec of the bootstrap Job (hashed into its name, see job-bootstrap.yaml).
*/}}
{{- define "reggaeton.bootstrapPodSpec" -}}
restartPolicy: Never
serviceAccountName: {{ include "reggaeton.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{ include "reggaeton.scheduling" . }}
containers:
  - name: bootstrap
    image: {{ include "reggaeton.jobImage" . }}
    imagePullPolicy: {{ include "reggaeton.jobImagePullPolicy" . }}
    workingDir: {{ .Values.workingDir }}
    command:
      {{- toYaml .Values.modelStore.bootstrap.command | nindent 6 }}
    envFrom:
      {{- include "reggaeton.envFrom" . | nindent 6 }}
    env:
      {{- include "reggaeton.podEnv" . | nindent 6 }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml .Values.modelStore.bootstrap.resources | nindent 6 }}
    volumeMounts:
      - name: model-store
        mountPath: {{ .Values.modelStore.mountPath }}
      {{- include "reggaeton.scratchMounts" . | nindent 6 }}
volumes:
  {{- include "reggaeton.modelStoreVolume" . | nindent 2 }}
  {{- include "reggaeton.scratchVolumes" . | nindent 2 }}
{{- end }}
