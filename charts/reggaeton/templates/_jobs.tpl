{{/*
The spec of a CronJob running the service image with another command.
Call: include "reggaeton.cronJobSpec" (dict "root" $ "component" "monitor" "job" .Values.monitor
  "serviceAccountName" "..." "storeReadOnly" true "env" (list ...) "podFailureExitCodes" (list 1 2)
  "apiAccess" true): apiAccess mounts the service-account token (only where a Role exists).
*/}}
{{- define "reggaeton.cronJobSpec" -}}
{{- $root := .root -}}
{{- $job := .job -}}
schedule: {{ $job.schedule | quote }}
{{- with $job.timeZone }}
timeZone: {{ . | quote }}
{{- end }}
suspend: {{ $job.suspend }}
concurrencyPolicy: {{ $job.concurrencyPolicy }}
successfulJobsHistoryLimit: {{ $job.successfulJobsHistoryLimit | int64 }}
failedJobsHistoryLimit: {{ $job.failedJobsHistoryLimit | int64 }}
startingDeadlineSeconds: {{ $job.startingDeadlineSeconds | int64 }}
jobTemplate:
  metadata:
    labels:
      {{- include "reggaeton.componentLabels" (list $root .component) | nindent 6 }}
  spec:
    backoffLimit: {{ $job.backoffLimit | int64 }}
    activeDeadlineSeconds: {{ $job.activeDeadlineSeconds | int64 }}
    ttlSecondsAfterFinished: {{ $job.ttlSecondsAfterFinished | int64 }}
    podFailurePolicy:
      rules:
        {{- with .podFailureExitCodes }}
        # Exit codes that report a status (not a crash): fail the Job at once, no retries.
        - action: FailJob
          onExitCodes:
            containerName: {{ $.component }}
            operator: In
            values: {{ toJson . }}
        {{- end }}
        # A pod killed by a node drain, preemption or eviction (restartPolicy Never): a new
        # pod, not counted against backoffLimit (so backoffLimit 0 still means no retry of a
        # crash).
        - action: Ignore
          onPodConditions:
            - type: DisruptionTarget
              status: "True"
    template:
      metadata:
        annotations:
          {{- include "reggaeton.checksums" $root | nindent 10 }}
        labels:
          {{- include "reggaeton.componentLabels" (list $root .component) | nindent 10 }}
      spec:
        restartPolicy: Never
        serviceAccountName: {{ .serviceAccountName }}
        automountServiceAccountToken: {{ .apiAccess }}
        enableServiceLinks: false
        securityContext:
          {{- toYaml $root.Values.podSecurityContext | nindent 10 }}
        {{- include "reggaeton.scheduling" $root | nindent 8 }}
        containers:
          - name: {{ .component }}
            image: {{ include "reggaeton.jobImage" $root }}
            imagePullPolicy: {{ include "reggaeton.jobImagePullPolicy" $root }}
            workingDir: {{ $root.Values.workingDir }}
            command:
              {{- toYaml $job.command | nindent 14 }}
            {{- with $job.args }}
            args:
              {{- toYaml . | nindent 14 }}
            {{- end }}
            envFrom:
              {{- include "reggaeton.envFrom" $root | nindent 14 }}
            env:
              {{- include "reggaeton.podEnv" $root | nindent 14 }}
              {{- include "reggaeton.secretEnv" (list $root .component) | nindent 14 }}
              {{- with .env }}
              {{- toYaml . | nindent 14 }}
              {{- end }}
            securityContext:
              {{- toYaml $root.Values.securityContext | nindent 14 }}
            resources:
              {{- toYaml $job.resources | nindent 14 }}
            volumeMounts:
              {{- if $root.Values.modelStore.enabled }}
              - name: model-store
                mountPath: {{ $root.Values.modelStore.mountPath }}
                {{- if .storeReadOnly }}
                readOnly: true
                {{- end }}
              {{- end }}
              {{- include "reggaeton.scratchMounts" $root | nindent 14 }}
              {{- with $root.Values.volumeMounts }}
              {{- toYaml . | nindent 14 }}
              {{- end }}
        volumes:
          {{- include "reggaeton.modelStoreVolume" $root | nindent 10 }}
          {{- include "reggaeton.scratchVolumes" $root | nindent 10 }}
          {{- with $root.Values.volumes }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
{{- end }}

{{/*
Pod spec of the scoring Indexed Job (job-score.yaml): the jobs image, the model store
read-only, the data claim read-write; the store's Secret key only when it logs predictions.
*/}}
{{- define "reggaeton.scorePodSpec" -}}
{{- $s := .Values.score -}}
restartPolicy: Never
serviceAccountName: {{ include "reggaeton.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{ include "reggaeton.scheduling" . }}
containers:
  - name: score
    image: {{ include "reggaeton.jobImage" . }}
    imagePullPolicy: {{ include "reggaeton.jobImagePullPolicy" . }}
    workingDir: {{ .Values.workingDir }}
    command:
      - python
      - -m
      - service.score
      - --input
      - {{ printf "%s/%s" $s.volume.mountPath $s.input | quote }}
      - --output
      - {{ printf "%s/%s/" $s.volume.mountPath $s.outputDir | quote }}
      - --format
      - {{ $s.format | quote }}
      - --no-progress
    envFrom:
      {{- include "reggaeton.envFrom" . | nindent 6 }}
    env:
      {{- include "reggaeton.podEnv" . | nindent 6 }}
      - name: SCORE_SHARD_COUNT
        value: {{ $s.completions | int64 | quote }}
      - name: SCORE_CHUNK_ROWS
        value: {{ $s.chunkRows | int64 | quote }}
      {{- if $s.logPredictions }}
      - name: SCORE_LOG_PREDICTIONS
        value: "true"
      {{- include "reggaeton.secretEnv" (list . "score") | nindent 6 }}
      {{- end }}
    securityContext:
      {{- toYaml .Values.securityContext | nindent 6 }}
    resources:
      {{- toYaml $s.resources | nindent 6 }}
    volumeMounts:
      {{- if .Values.modelStore.enabled }}
      - name: model-store
        mountPath: {{ .Values.modelStore.mountPath }}
        readOnly: true
      {{- end }}
      - name: score-data
        mountPath: {{ $s.volume.mountPath }}
      {{- include "reggaeton.scratchMounts" . | nindent 6 }}
volumes:
  {{- include "reggaeton.modelStoreVolume" . | nindent 2 }}
  - name: score-data
    persistentVolumeClaim:
      claimName: {{ $s.volume.existingClaim }}
  {{- include "reggaeton.scratchVolumes" . | nindent 2 }}
{{- end }}
