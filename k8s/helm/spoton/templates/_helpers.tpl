{{- define "spoton.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "spoton.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "detection") */}}
{{- define "spoton.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "spoton.secretName" -}}
{{- .Values.existingSecret | default (printf "%s-secrets" (include "spoton.fullname" .)) -}}
{{- end -}}

{{/* The services' certificate Secret (tls.crt, tls.key, ca.crt); fails the render when TLS is on without one. */}}
{{- define "spoton.tlsSecretName" -}}
{{- if .Values.tls.secretName -}}
{{- .Values.tls.secretName -}}
{{- else if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "spoton.fullname" .) -}}
{{- else -}}
{{- fail "tls.enabled needs tls.secretName (a Secret with tls.crt, tls.key, ca.crt) or tls.certManager.enabled" -}}
{{- end -}}
{{- end -}}

{{/* gRPC target of a stage: dns:/// so the gateway's round_robin policy sees every pod of a headless Service. */}}
{{- define "spoton.addr" -}}
{{- $svc := index .root.Values.services .component -}}
{{- printf "dns:///%s-%s:%v" (include "spoton.fullname" .root) .component $svc.port -}}
{{- end -}}

{{- define "spoton.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "spoton.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}
