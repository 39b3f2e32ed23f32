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
