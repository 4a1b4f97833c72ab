{{/* The release's full name: the release name, or release-chart when it does not contain the chart's name. */}}
{{- define "ipvs-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The labels every object carries. */}}
{{- define "ipvs-proxy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* What the DaemonSet selects its pods by: never kube-proxy's pods. */}}
{{- define "ipvs-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ipvs-proxy.serviceAccountName" -}}
{{- default (include "ipvs-proxy.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "ipvs-proxy.configMapName" -}}
{{- if .Values.kubeProxyConfigMap.use -}}{{ .Values.kubeProxyConfigMap.name }}{{- else -}}{{ include "ipvs-proxy.fullname" . }}{{- end -}}
{{- end -}}

{{- define "ipvs-proxy.configKey" -}}
{{- if .Values.kubeProxyConfigMap.use -}}{{ .Values.kubeProxyConfigMap.key }}{{- else -}}config.conf{{- end -}}
{{- end -}}
