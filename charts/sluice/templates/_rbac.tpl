{{/*
The permissions of each Sluice process, one rule per reason. docs/install.md explains them.
A rule is granted in the watched namespaces (Roles) or cluster-wide (ClusterRole); the
cluster-scoped review APIs always need a ClusterRole.
*/}}

{{- define "sluice.operator.rules" -}}
# Watch the Sluice resources; patch adds kopf's finalizer and progress annotations.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines", "connectors"]
  verbs: ["get", "list", "watch", "patch"]
# ... plus delete for CompletionTokens past spec.ttlSecondsAfterFinished.
- apiGroups: ["sluice.dev"]
  resources: ["completiontokens"]
  verbs: ["get", "list", "watch", "patch", "delete"]
# Conditions, observedGeneration and the domain status are written through /status.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines/status", "connectors/status", "completiontokens/status"]
  verbs: ["patch"]
# Children carry an owner reference with blockOwnerDeletion; clusters with the
# OwnerReferencesPermissionEnforcement admission plugin require update on the owner's finalizers.
- apiGroups: ["sluice.dev"]
  resources: ["pipelines/finalizers"]
  verbs: ["update"]
# A pipeline's children: the runtime-config ConfigMap (also read for spec.sqlFrom), its Service
# and storage claim, created, kept in shape with patches and deleted when no longer wanted.
- apiGroups: [""]
  resources: ["configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# The StatefulSet of one pod that runs `sluice runtime`.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pipeline pods are watched (never changed) to learn their address, readiness and restarts.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# kopf reports handler outcomes as Events on the resource; patch folds repeated ones.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
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
# API keys: the gateway watches the Secrets labelled as Sluice API keys (SHA-256 hashes only).
# RBAC cannot filter by label, so this grants read on Secrets where it applies.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end }}
