{{/*
Names and labels.
*/}}
{{- define "email-otp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "email-otp.fullname" -}}
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

{{- define "email-otp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "email-otp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "email-otp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "email-otp.labels" -}}
helm.sh/chart: {{ include "email-otp.chart" . }}
{{ include "email-otp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: email-otp
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of a pod besides its selector labels: commonLabels, then the given maps
(later ones win). (list $root.Values.commonLabels $root.Values.podLabels ...)
*/}}
{{- define "email-otp.extraPodLabels" -}}
{{- $labels := dict }}
{{- range . }}
{{- $labels = merge (deepCopy (. | default dict)) $labels }}
{{- end }}
{{- with $labels }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of one component: (dict "root" $ "component" "api") */}}
{{- define "email-otp.componentLabels" -}}
{{ include "email-otp.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "email-otp.componentSelectorLabels" -}}
{{ include "email-otp.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "email-otp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "email-otp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "email-otp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) }}
{{- end }}
{{- end }}

{{- define "email-otp.redisImage" -}}
{{- $i := .Values.redis.image }}
{{- if $i.digest }}
{{- printf "%s@%s" $i.repository $i.digest }}
{{- else }}
{{- printf "%s:%s" $i.repository (toString $i.tag) }}
{{- end }}
{{- end }}

{{- define "email-otp.secretName" -}}
{{- default (include "email-otp.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "email-otp.templatesConfigMapName" -}}
{{- default (printf "%s-templates" (include "email-otp.fullname" .)) .Values.mail.existingConfigMap }}
{{- end }}

{{- define "email-otp.redisName" -}}
{{- printf "%s-redis" (include "email-otp.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Secret with the bundled Redis's password (and, when the chart made it, the app's URL). */}}
{{- define "email-otp.redisAuthSecretName" -}}
{{- default (include "email-otp.redisName" .) .Values.redis.auth.existingSecret }}
{{- end }}

{{- define "email-otp.redisAuthSecretKey" -}}
{{- if .Values.redis.auth.existingSecret }}
{{- .Values.redis.auth.existingSecretPasswordKey }}
{{- else -}}
redis-password
{{- end }}
{{- end }}

{{/*
Where the app's Redis URL comes from:
  bundled          the chart's Redis Secret, key redis-url (URL with the generated password)
  bundled-compose  an init container writes it from redis.auth.existingSecret into an emptyDir
  external-secret  externalRedis.existingSecret
  secrets-key      secrets.existingSecretKeys.redisUrl of secrets.existingSecret
  external-url     externalRedis.url as plain env
*/}}
{{- define "email-otp.redisUrlSource" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.existingSecret }}bundled-compose{{ else }}bundled{{ end }}
{{- else if and .Values.secrets.existingSecret .Values.secrets.existingSecretKeys.redisUrl }}secrets-key
{{- else if .Values.externalRedis.existingSecret }}external-secret
{{- else }}external-url
{{- end }}
{{- end }}

{{- define "email-otp.redisUrlFile" -}}
{{- $src := include "email-otp.redisUrlSource" . }}
{{- if or (eq $src "bundled") (eq $src "bundled-compose") -}}
/etc/email-otp/redis/url
{{- else if eq $src "secrets-key" -}}
/etc/email-otp/secrets/redis-url
{{- else if eq $src "external-secret" -}}
/etc/email-otp/redis/{{ .Values.externalRedis.existingSecretKey }}
{{- end }}
{{- end }}

{{/*
Key names inside the secrets volume's Secret: secrets.existingSecretKeys for an
existing Secret, the fixed names of the chart's own Secret otherwise.
*/}}
{{- define "email-otp.secretItems" -}}
{{- $keys := dict "hmacKey" "hmac-key" "smtpPassword" "smtp-password" }}
{{- if .Values.secrets.existingSecret }}
{{- $keys = .Values.secrets.existingSecretKeys }}
{{- end }}
- key: {{ $keys.hmacKey }}
  path: hmac-key
{{- if .Values.smtp.username }}
- key: {{ $keys.smtpPassword }}
  path: smtp-password
{{- end }}
{{- if eq (include "email-otp.redisUrlSource" .) "secrets-key" }}
- key: {{ .Values.secrets.existingSecretKeys.redisUrl }}
  path: redis-url
{{- end }}
{{- end }}

{{/*
Validation of values that the JSON schema cannot express. Included by every
workload template, so a bad combination fails rendering with a clear message.
*/}}
{{- define "email-otp.validate" -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.hmacKey) }}
{{- fail "secrets.hmacKey is required (at least 32 characters, e.g. `openssl rand -hex 32`), or set secrets.existingSecret to a Secret holding it (key secrets.existingSecretKeys.hmacKey, default hmac-key)" }}
{{- end }}
{{- if and .Values.smtp.username (not .Values.secrets.existingSecret) (not .Values.secrets.smtpPassword) }}
{{- fail "smtp.username is set: also set secrets.smtpPassword, or secrets.existingSecret holding it (key secrets.existingSecretKeys.smtpPassword, default smtp-password)" }}
{{- end }}
{{- if and (eq .Values.mail.transport "smtp") (not .Values.smtp.host) }}
{{- fail "smtp.host is required when mail.transport is smtp" }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.lifecycle.preStopSleepSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds (%d): it covers the preStop pause plus the drain" (int .Values.terminationGracePeriodSeconds) (int .Values.lifecycle.preStopSleepSeconds)) }}
{{- end }}
{{- if .Values.secrets.existingSecretKeys.redisUrl }}
{{- if .Values.redis.enabled }}
{{- fail "secrets.existingSecretKeys.redisUrl is for an external Redis: set redis.enabled=false (the bundled Redis's URL comes from the chart)" }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- fail "secrets.existingSecretKeys.redisUrl needs secrets.existingSecret (the Secret that holds the key)" }}
{{- end }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) (not (and .Values.secrets.existingSecret .Values.secrets.existingSecretKeys.redisUrl)) }}
{{- fail "redis.enabled is false: set externalRedis.url or externalRedis.existingSecret (or secrets.existingSecretKeys.redisUrl)" }}
{{- end }}
{{- $r := .Values.externalRedis }}
{{- if and .Values.redis.enabled (ne $r.mode "standalone") }}
{{- fail (printf "externalRedis.mode %s needs redis.enabled=false (the bundled Redis is one server)" $r.mode) }}
{{- end }}
{{- if and (eq $r.mode "sentinel") (or (not $r.masterName) (not $r.sentinels)) }}
{{- fail "externalRedis.mode sentinel needs externalRedis.masterName and externalRedis.sentinels" }}
{{- end }}
{{- end }}

{{/*
Environment shared by the API and worker containers, one variable per setting:
OTP_<SECTION>__<KEY>. Secrets come in as files (<KEY>_FILE).
*/}}
{{- define "email-otp.env" -}}
{{- $v := .Values -}}
{{- with include "email-otp.redisUrlFile" . }}
- name: OTP_REDIS__URL_FILE
  value: {{ . }}
{{- else }}
- name: OTP_REDIS__URL
  value: {{ $v.externalRedis.url | quote }}
{{- end }}
- name: OTP_REDIS__KEY_PREFIX
  value: {{ $v.redis.keyPrefix | quote }}
{{- with $v.externalRedis }}
{{- if ne .mode "standalone" }}
- name: OTP_REDIS__MODE
  value: {{ .mode | quote }}
{{- end }}
{{- if eq .mode "sentinel" }}
- name: OTP_REDIS__MASTER_NAME
  value: {{ .masterName | quote }}
- name: OTP_REDIS__SENTINELS
  value: {{ printf "[%s]" (join "," .sentinels) | quote }}
{{- if .sentinelPasswordSecret }}
- name: OTP_REDIS__SENTINEL_PASSWORD_FILE
  value: /etc/email-otp/sentinel/{{ .sentinelPasswordSecretKey }}
{{- end }}
{{- end }}
{{- if and (eq .mode "cluster") .clusterNodes }}
- name: OTP_REDIS__CLUSTER_NODES
  value: {{ printf "[%s]" (join "," .clusterNodes) | quote }}
{{- end }}
{{- if .waitReplicas }}
- name: OTP_REDIS__WAIT_REPLICAS
  value: {{ .waitReplicas | quote }}
- name: OTP_REDIS__WAIT_TIMEOUT_MS
  value: {{ .waitTimeoutMs | quote }}
{{- end }}
{{- end }}
- name: OTP_OTP__HMAC_KEY_FILE
  value: /etc/email-otp/secrets/hmac-key
- name: OTP_OTP__TTL_SECS
  value: {{ $v.otp.ttlSecs | quote }}
- name: OTP_OTP__MAX_ATTEMPTS
  value: {{ $v.otp.maxAttempts | quote }}
- name: OTP_LIMITS__EMAIL_COOLDOWN_SECS
  value: {{ $v.limits.emailCooldownSecs | quote }}
- name: OTP_LIMITS__EMAIL_PER_HOUR
  value: {{ $v.limits.emailPerHour | quote }}
- name: OTP_LIMITS__IP_PER_MINUTE
  value: {{ $v.limits.ipPerMinute | quote }}
- name: OTP_LIMITS__VERIFY_FAILURES_PER_HOUR
  value: {{ $v.limits.verifyFailuresPerHour | quote }}
- name: OTP_LIMITS__IP_VERIFY_FAILURES_PER_HOUR
  value: {{ $v.limits.ipVerifyFailuresPerHour | quote }}
- name: OTP_LIMITS__MAILS_PER_MINUTE
  value: {{ $v.limits.mailsPerMinute | quote }}
- name: OTP_LIMITS__DOMAIN_MAILS_PER_MINUTE
  value: {{ $v.limits.domainMailsPerMinute | quote }}
- name: OTP_LIMITS__QUEUE_MAX_DEPTH
  value: {{ $v.limits.queueMaxDepth | quote }}
- name: OTP_QUEUE__PARTITIONS
  value: {{ $v.queue.partitions | quote }}
{{- with $v.http.trustedProxies }}
- name: OTP_HTTP__TRUSTED_PROXIES
  value: {{ toJson . | quote }}
{{- end }}
- name: OTP_MAIL__TRANSPORT
  value: {{ $v.mail.transport | quote }}
- name: OTP_MAIL__TEMPLATE_DIR
  value: /app/mailer
{{- if eq $v.mail.transport "outbox" }}
- name: OTP_MAIL__OUTBOX_DIR
  value: /app/outbox
{{- end }}
{{- with $v.mail.from }}
- name: OTP_MAIL__FROM
  value: {{ . | quote }}
{{- end }}
{{- with $v.mail.productName }}
- name: OTP_MAIL__PRODUCT_NAME
  value: {{ . | quote }}
{{- end }}
{{- with $v.mail.subject }}
- name: OTP_MAIL__SUBJECT
  value: {{ . | quote }}
{{- end }}
{{- with $v.smtp.host }}
- name: OTP_SMTP__HOST
  value: {{ . | quote }}
{{- end }}
- name: OTP_SMTP__PORT
  value: {{ $v.smtp.port | quote }}
- name: OTP_SMTP__SECURITY
  value: {{ $v.smtp.security | quote }}
{{- if $v.smtp.allowInsecureAuth }}
- name: OTP_SMTP__ALLOW_INSECURE_AUTH
  value: "true"
{{- end }}
- name: OTP_SMTP__POOL_SIZE
  value: {{ $v.smtp.poolSize | quote }}
{{- if $v.smtp.username }}
- name: OTP_SMTP__USERNAME
  value: {{ $v.smtp.username | quote }}
- name: OTP_SMTP__PASSWORD_FILE
  value: /etc/email-otp/secrets/smtp-password
{{- end }}
- name: OTP_WORKER__CONCURRENCY
  value: {{ $v.worker.concurrency | quote }}
- name: OTP_WORKER__MAX_ATTEMPTS
  value: {{ $v.worker.maxAttempts | quote }}
- name: OTP_WORKER__HEARTBEAT_SECS
  value: {{ $v.worker.heartbeatSecs | quote }}
- name: OTP_WORKER__REAP_AFTER_SECS
  value: {{ $v.worker.reapAfterSecs | quote }}
- name: OTP_RUNTIME__WORKER_THREADS
  value: {{ $v.runtime.workerThreads | quote }}
- name: OTP_LOG__FORMAT
  value: {{ $v.log.format | quote }}
- name: OTP_LOG__LEVEL
  value: {{ $v.log.level | quote }}
{{- with $v.telemetry.otlpEndpoint }}
- name: OTP_TELEMETRY__OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volume mounts shared by the API and worker containers. */}}
{{- define "email-otp.volumeMounts" -}}
- name: templates
  mountPath: /app/mailer
  readOnly: true
- name: secrets
  mountPath: /etc/email-otp/secrets
  readOnly: true
{{- if has (include "email-otp.redisUrlSource" .) (list "bundled" "bundled-compose" "external-secret") }}
- name: redis-url
  mountPath: /etc/email-otp/redis
  readOnly: true
{{- end }}
{{- if and (eq .Values.externalRedis.mode "sentinel") .Values.externalRedis.sentinelPasswordSecret }}
- name: sentinel-password
  mountPath: /etc/email-otp/sentinel
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- if eq .Values.mail.transport "outbox" }}
- name: outbox
  mountPath: /app/outbox
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
One application container.
(dict "root" $ "name" "api" "args" (list "api") "adminPort" 9090 "adminPortName" "admin" "http" true "resources" ...)
*/}}
{{- define "email-otp.container" -}}
{{- $root := .root -}}
- name: {{ .name }}
  image: {{ include "email-otp.image" $root | quote }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args: {{ toJson .args }}
  {{- with .envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  env:
    - name: OTP_ADMIN__LISTEN
      value: {{ printf "0.0.0.0:%d" (int .adminPort) | quote }}
    {{- if .http }}
    - name: OTP_HTTP__LISTEN
      value: {{ printf "0.0.0.0:%d" (int $root.Values.http.port) | quote }}
    {{- end }}
    {{- include "email-otp.env" $root | trim | nindent 4 }}
  ports:
    {{- if .http }}
    - name: http
      containerPort: {{ $root.Values.http.port }}
      protocol: TCP
    {{- end }}
    - name: {{ .adminPortName }}
      containerPort: {{ .adminPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ .adminPortName }}
    {{- toYaml $root.Values.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ .adminPortName }}
    {{- toYaml $root.Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ .adminPortName }}
    {{- toYaml $root.Values.probes.readiness | nindent 4 }}
  {{- /* Only the API takes traffic that must move away before SIGTERM. */}}
  {{- if and .http (gt (int $root.Values.lifecycle.preStopSleepSeconds) 0) }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ int $root.Values.lifecycle.preStopSleepSeconds }}
  {{- end }}
  {{- with .resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "email-otp.volumeMounts" $root | nindent 4 }}
{{- end }}

{{/*
Pod template of a Deployment.
(dict "root" $ "component" "api" "containers" "<rendered container list>")
*/}}
{{- define "email-otp.podTemplate" -}}
{{- $root := .root -}}
{{- $comp := index $root.Values .component -}}
{{- $urlSource := include "email-otp.redisUrlSource" $root -}}
metadata:
  labels:
    {{- include "email-otp.componentSelectorLabels" . | nindent 4 }}
    {{- with include "email-otp.extraPodLabels" (list $root.Values.commonLabels $root.Values.podLabels $comp.podLabels) }}
    {{- . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
    checksum/templates: {{ include (print $root.Template.BasePath "/configmap-templates.yaml") $root | sha256sum }}
    {{- with merge (deepCopy ($comp.podAnnotations | default dict)) ($root.Values.podAnnotations | default dict) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "email-otp.serviceAccountName" $root }}
  automountServiceAccountToken: false
  # No OTP_<RELEASE>_SERVICE_HOST and friends in the environment (the binary ignores variables
  # without a section anyway).
  enableServiceLinks: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- $inits := concat ($root.Values.initContainers | default list) ($comp.initContainers | default list) }}
  {{- if or $inits (eq $urlSource "bundled-compose") }}
  initContainers:
    {{- if eq $urlSource "bundled-compose" }}
    {{- include "email-otp.redisUrlInitContainer" $root | nindent 4 }}
    {{- end }}
    {{- with $inits }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  containers:
    {{- .containers | nindent 4 }}
    {{- with concat ($root.Values.extraContainers | default list) ($comp.extraContainers | default list) }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    - name: templates
      configMap:
        name: {{ include "email-otp.templatesConfigMapName" $root }}
    - name: secrets
      secret:
        secretName: {{ include "email-otp.secretName" $root }}
        defaultMode: 0440
        items:
          {{- include "email-otp.secretItems" $root | trim | nindent 10 }}
    {{- if eq $urlSource "bundled" }}
    - name: redis-url
      secret:
        secretName: {{ include "email-otp.redisName" $root }}
        defaultMode: 0440
        items:
          - key: redis-url
            path: url
    {{- else if eq $urlSource "bundled-compose" }}
    - name: redis-url
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
    {{- else if eq $urlSource "external-secret" }}
    - name: redis-url
      secret:
        secretName: {{ $root.Values.externalRedis.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $root.Values.externalRedis.existingSecretKey }}
            path: {{ $root.Values.externalRedis.existingSecretKey }}
    {{- end }}
    {{- with $root.Values.externalRedis }}
    {{- if and (eq .mode "sentinel") .sentinelPasswordSecret }}
    - name: sentinel-password
      secret:
        secretName: {{ .sentinelPasswordSecret }}
        defaultMode: 0440
        items:
          - key: {{ .sentinelPasswordSecretKey }}
            path: {{ .sentinelPasswordSecretKey }}
    {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- if eq $root.Values.mail.transport "outbox" }}
    - name: outbox
      emptyDir:
        sizeLimit: 64Mi
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $root.Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml $root.Values.topologySpreadConstraints | nindent 4 }}
  {{- else if $root.Values.podSpread.enabled }}
  {{- $spread := $root.Values.podSpread }}
  topologySpreadConstraints:
    - maxSkew: {{ $spread.maxSkew }}
      topologyKey: {{ $spread.topologyKey }}
      whenUnsatisfiable: {{ $spread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "email-otp.componentSelectorLabels" . | nindent 10 }}
  {{- end }}
{{- end }}

{{/*
Init container for redis.auth.existingSecret: the chart cannot read that password
when it renders, so this writes the URL redis://:<password, percent-encoded>@<redis>:6379
into the in-memory redis-url volume (mode 0600, the pod's user) before the app starts.
Uses the Redis image (it has a shell and awk; the app image has neither).
*/}}
{{- define "email-otp.redisUrlInitContainer" -}}
- name: redis-url
  image: {{ include "email-otp.redisImage" . | quote }}
  imagePullPolicy: {{ .Values.redis.image.pullPolicy }}
  command: [sh, -c]
  args:
    - |
      umask 077
      LC_ALL=C awk 'BEGIN {
        for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i
        s = ENVIRON["REDIS_PASSWORD"]; out = ""
        for (i = 1; i <= length(s); i++) {
          c = substr(s, i, 1)
          if (c ~ /[A-Za-z0-9._~-]/) out = out c; else out = out sprintf("%%%02X", ord[c])
        }
        printf "redis://:%s@%s:6379", out, ENVIRON["REDIS_HOST"]
      }' > /etc/email-otp/redis/url
  env:
    - name: REDIS_HOST
      value: {{ include "email-otp.redisName" . }}
    - name: REDIS_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ include "email-otp.redisAuthSecretName" . }}
          key: {{ include "email-otp.redisAuthSecretKey" . }}
  resources:
    requests:
      cpu: 10m
      memory: 16Mi
    limits:
      memory: 32Mi
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: redis-url
      mountPath: /etc/email-otp/redis
{{- end }}
