{{- define "ak.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ak.nodeName" -}}
{{- default (printf "vk-ak-%s" .Release.Name) .Values.nodeName -}}
{{- end -}}

{{- define "ak.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "ak.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ak.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ak.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* AK's local identity: a node kubeconfig (Secret) or the ServiceAccount with RBAC. */}}
{{- define "ak.localSecret" -}}
{{- if .Values.local.existingSecret -}}
{{- .Values.local.existingSecret -}}
{{- else if .Values.local.kubeconfig -}}
{{- printf "%s-local" (include "ak.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "ak.remoteSecret" -}}
{{- default (printf "%s-remote" (include "ak.fullname" .)) .Values.remote.existingSecret -}}
{{- end -}}

{{/* The remote kubeconfig built from the seed's values. */}}
{{- define "ak.remoteKubeconfig" -}}
{{- if .Values.remote.kubeconfig -}}
{{- .Values.remote.kubeconfig -}}
{{- else -}}
{{- $host := required "remote.apiserverHost is required (or remote.kubeconfig / remote.existingSecret)" .Values.remote.apiserverHost -}}
{{- $token := required "remote.token is required (or remote.kubeconfig / remote.existingSecret)" .Values.remote.token -}}
{{- $server := ternary $host (printf "https://%s" $host) (hasPrefix "https://" $host) -}}
{{- $ca := .Values.remote.caData | trim -}}
apiVersion: v1
kind: Config
clusters:
  - name: remote
    cluster:
      server: {{ $server | quote }}
      {{- if $ca }}
      certificate-authority-data: {{ ternary ($ca | b64enc) ($ca | replace "\n" "") (contains "-----BEGIN" $ca) | quote }}
      {{- end }}
users:
  - name: actual-kubelets
    user:
      token: {{ $token | quote }}
contexts:
  - name: remote
    context:
      cluster: remote
      user: actual-kubelets
current-context: remote
{{- end -}}
{{- end -}}
