{{/*
The permissions of each Sluice process, one rule per reason. docs/install.md explains them.
A rule is granted in the watched namespaces (Roles) or cluster-wide (ClusterRole); the
cluster-scoped review APIs always need a ClusterRole.
*/}}

{{- define "sluice.operator.rules" -}}
# Watch the Sluice resources (kopf event handlers: no finalizers, no annotations, no writes).
- apiGroups: ["sluice.dev"]
  resources: ["pipelines", "connectors"]
  verbs: ["get", "list", "watch"]
# ... and delete CompletionTokens past spec.ttlSecondsAfterFinished.
- apiGroups: ["sluice.dev"]
  resources: ["completiontokens"]
  verbs: ["get", "list", "watch", "delete"]
# Conditions, observedGeneration and the domain status: one merge patch of /status.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines/status", "connectors/status", "completiontokens/status"]
  verbs: ["patch"]
# Children carry a controller owner reference with blockOwnerDeletion; clusters with the
# OwnerReferencesPermissionEnforcement admission plugin require update on the owner's finalizers.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines/finalizers"]
  verbs: ["update"]
# A pipeline's children: the runtime-config ConfigMap (ConfigMaps are also read for
# spec.sqlFrom), its Service and storage claim. Server-side apply is a patch, and a create when
# the object is new; delete removes children the spec no longer wants.
- apiGroups: [""]
  resources: ["configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The StatefulSet of one pod that runs `sluice runtime`.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pipeline pods are watched for address, readiness and restarts; a pod stuck on an old config
# is deleted, because a StatefulSet never replaces a pod that is not Ready.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete"]
# Events on the resources (state changes, errors).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "sluice.gateway.rules" -}}
# The API lists and reads pipelines; start/pause/resume/stop patch spec.desiredState, so the
# resource stays the source of truth.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines"]
  verbs: ["get", "list", "watch", "patch"]
# The watch-fed routing cache: which pod runs which pipeline, and whether it is ready.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- if and .Values.auth.enabled .Values.auth.apiKeys.enabled }}
# API keys: the gateway lists the Secrets labelled sluice.dev/api-key (SHA-256 hashes only),
# again at most every few seconds. RBAC cannot filter by label, so this grants listing Secrets
# wherever the gateway's rules apply.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["list"]
{{- end }}
{{- end }}
