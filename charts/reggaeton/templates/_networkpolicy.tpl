{{/*
Egress every application pod needs: DNS, the in-chart MongoDB and MLflow, extra rules.
*/}}
{{- define "reggaeton.appEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if .Values.mongodb.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "reggaeton.componentSelectorLabels" (list . "mongodb") | nindent 10 }}
  ports:
    - port: {{ .Values.mongodb.port | int64 }}
      protocol: TCP
{{- end }}
{{- if .Values.mlflow.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "reggaeton.componentSelectorLabels" (list . "mlflow") | nindent 10 }}
  ports:
    - port: {{ .Values.mlflow.port | int64 }}
      protocol: TCP
{{- end }}
{{- with .Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- define "reggaeton.apiServerEgress" -}}
- ports:
    {{- range .Values.networkPolicy.apiServerPorts }}
    - port: {{ . | int64 }}
      protocol: TCP
    {{- end }}
{{- end }}
