{{/* Names, labels and shared pod fragments of the Sluice chart. */}}

{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sluice.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ include "sluice.chart" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "sluice.selectorLabels" . }}
{{- end }}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the operator pod (which also runs the gateway in sidecar mode). */}}
{{- define "sluice.operator.selectorLabels" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector of the pods that serve the gateway API, in either mode. */}}
{{- define "sluice.gateway.selectorLabels" -}}
{{- if eq .Values.gateway.mode "deployment" -}}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- else -}}
{{ include "sluice.operator.selectorLabels" . }}
{{- end }}
{{- end }}

{{- define "sluice.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "sluice.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The account the gateway runs as: its own in deployment mode, the operator's as a sidecar. */}}
{{- define "sluice.gateway.serviceAccountName" -}}
{{- if ne .Values.gateway.mode "deployment" }}
{{- include "sluice.operator.serviceAccountName" . }}
{{- else if .Values.gateway.serviceAccount.create }}
{{- default (printf "%s-gateway" (include "sluice.fullname" .)) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespaces that hold pipelines when the chart knows them (for Roles and policies). */}}
{{- define "sluice.pipelineNamespaces" -}}
{{- if .Values.watchNamespaces }}
{{- toJson .Values.watchNamespaces }}
{{- else if .Values.networkPolicy.pipelineNamespaces }}
{{- toJson .Values.networkPolicy.pipelineNamespaces }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* The gateway's tenant for calls without a Feldera-Tenant header: where `kubectl apply`
without -n puts resources when every namespace is watched. */}}
{{- define "sluice.defaultTenant" -}}
{{- if .Values.gateway.defaultNamespace }}
{{- .Values.gateway.defaultNamespace }}
{{- else if .Values.watchNamespaces }}
{{- first (sortAlpha .Values.watchNamespaces) }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{/* `sluice operator` and `sluice gateway` take the same namespace flags. */}}
{{- define "sluice.namespaceArgs" -}}
{{- if .Values.watchNamespaces }}
{{- range .Values.watchNamespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- end }}

{{- define "sluice.gateway.container" -}}
- name: gateway
  image: {{ include "sluice.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["sluice"]
  args:
    - --log-level
    - {{ .Values.logLevel | quote }}
    - gateway
    {{- include "sluice.namespaceArgs" . | trim | nindent 4 }}
    - --default-namespace
    - {{ include "sluice.defaultTenant" . | quote }}
    {{- if not .Values.auth.enabled }}
    # The gateway refuses to serve without authentication unless told so explicitly.
    - --insecure-no-auth
    {{- end }}
  env:
    - name: SLUICE_GATEWAY_HOST
      value: "0.0.0.0"
    - name: SLUICE_GATEWAY_PORT
      value: {{ .Values.gateway.port | quote }}
    - name: SLUICE_AUTH_ENABLED
      value: {{ .Values.auth.enabled | quote }}
    - name: SLUICE_AUTH_API_KEYS
      value: {{ and .Values.auth.enabled .Values.auth.apiKeys.enabled | quote }}
    - name: SLUICE_AUTH_SERVICE_ACCOUNT_TOKENS
      value: {{ and .Values.auth.enabled .Values.auth.serviceAccountTokens.enabled | quote }}
    {{- if and .Values.auth.enabled .Values.auth.oidc.enabled }}
    - name: SLUICE_AUTH_OIDC_ISSUER
      value: {{ .Values.auth.oidc.issuer | quote }}
    - name: SLUICE_AUTH_OIDC_AUDIENCE
      value: {{ .Values.auth.oidc.audience | quote }}
    {{- with .Values.auth.oidc.jwksUrl }}
    - name: SLUICE_AUTH_OIDC_JWKS_URL
      value: {{ . | quote }}
    {{- end }}
    - name: SLUICE_AUTH_OIDC_ROLE_CLAIM
      value: {{ .Values.auth.oidc.roleClaim | quote }}
    - name: SLUICE_AUTH_OIDC_DEFAULT_ROLE
      value: {{ .Values.auth.oidc.defaultRole | quote }}
    {{- with .Values.auth.oidc.clientId }}
    - name: SLUICE_AUTH_OIDC_CLIENT_ID
      value: {{ . | quote }}
    {{- end }}
    {{- end }}
    {{- with .Values.gateway.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.gateway.port }}
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    failureThreshold: 6
  readinessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 5
    failureThreshold: 3
  resources:
    {{- toYaml .Values.gateway.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}
