# Names, switches and settings derived from the inputs only (no resource).

locals {
  iot_project    = coalesce(var.iot_project, var.project_id)
  source_archive = coalesce(var.source_archive, "${path.module}/../dist/mender-bridge-function.zip")

  # What is deployed. ClearBlade writes no audit-log entry anyone has seen (docs/cloud-iot.md#events):
  # there the scheduled reconcile is the primary path, and no sink, topic, subscription or
  # event function exists.
  google            = var.registry_backend == "google"
  clearblade        = var.registry_backend == "clearblade"
  push_delivery     = local.google && var.event_delivery == "push"
  pull_delivery     = local.google && var.event_delivery == "pull"
  eventarc_delivery = local.google && var.event_delivery == "eventarc"
  # The module owns the events subscription in push and pull mode; Eventarc owns its own.
  events_subscription = local.push_delivery || local.pull_delivery
  event_function      = local.push_delivery || local.eventarc_delivery
  reconcile_schedule  = local.clearblade ? var.clearblade_reconcile_schedule : var.reconcile_schedule

  # The registries in scope: the targets' when Mender targets are given (iot_registries may
  # only repeat them), else iot_registries; none means every registry of iot_location.
  target_registries = flatten([for t in var.mender_targets : t.registries])
  registries        = length(var.mender_targets) > 0 ? sort(distinct(local.target_registries)) : var.iot_registries

  # Environment variable -> Secret Manager secret of each Mender token: MENDER_TOKEN alone, or
  # MENDER_TOKEN_<NAME> per target (the bridge's naming: upper case, '-' -> '_').
  mender_tokens = length(var.mender_targets) == 0 ? {
    MENDER_TOKEN = {
      secret_id = coalesce(var.mender_token_secret_id, "${var.name_prefix}-mender-token")
      version   = var.mender_token_version
    }
    } : {
    for t in var.mender_targets : "MENDER_TOKEN_${upper(replace(t.name, "-", "_"))}" => {
      secret_id = "${var.name_prefix}-mender-token-${t.name}"
      version   = "latest"
    }
  }
  webhook_secret_id = coalesce(var.webhook_secret_id, "${var.name_prefix}-webhook-secret")

  # Every secret the module creates (never its value), by the setting it holds.
  secret_ids = merge(
    { for env, token in local.mender_tokens : env => token.secret_id },
    var.enable_provision_webhook ? { WEBHOOK_SECRET = local.webhook_secret_id } : {},
    local.clearblade ? { CLEARBLADE_CONFIGURATION = local.clearblade_secret_id } : {},
  )
  # The identities the bridge runs as (iam.tf): the functions, the webhook, the listen workers.
  runtime_names = concat(["run"], var.enable_provision_webhook ? ["provision"] : [], local.pull_delivery ? ["listen"] : [])
  # "<identity>/<setting>" -> who reads which secret: each identity the Mender token(s) and the
  # ClearBlade configuration; the webhook secret only the webhook.
  secret_readers = {
    for pair in setproduct(local.runtime_names, keys(local.secret_ids)) : join("/", pair) => {
      identity = pair[0]
      setting  = pair[1]
    } if pair[1] != "WEBHOOK_SECRET" || pair[0] == "provision"
  }

  # The ClearBlade service-account JSON reaches the functions as a file (the bridge reads
  # CLEARBLADE_CONFIGURATION as a path) in a secret volume of its own directory.
  clearblade_secret_id = coalesce(var.clearblade_configuration_secret_id, "${var.name_prefix}-clearblade-configuration")
  clearblade_mount     = { directory = "/etc/secrets/clearblade", file = "service-account.json" }

  # The three audit-log methods that change a device, of the configured location and
  # registries only (the labels every device entry carries: docs/cloud-iot.md#audit-log);
  # nothing else reaches the bridge, which checks the scope again.
  device_methods = [
    "google.cloud.iot.v1.DeviceManager.CreateDevice",
    "google.cloud.iot.v1.DeviceManager.UpdateDevice",
    "google.cloud.iot.v1.DeviceManager.DeleteDevice",
  ]
  sink_filter = join(" AND ", concat([
    "logName=\"projects/${local.iot_project}/logs/cloudaudit.googleapis.com%2Factivity\"",
    "resource.type=\"cloudiot_device\"",
    "resource.labels.location=\"${var.iot_location}\"",
    ], length(local.registries) == 0 ? [] : [
    "resource.labels.device_registry_id=(${join(" OR ", [for r in local.registries : "\"${r}\""])})",
    ], [
    "protoPayload.serviceName=\"cloudiot.googleapis.com\"",
    "protoPayload.methodName=(${join(" OR ", [for m in local.device_methods : "\"${m}\""])})",
  ]))

  # Settings read by bridge.config.Settings.from_env; no secret here (they are
  # secret_environment_variables or a secret volume on each function).
  environment = { for k, v in merge(var.extra_environment, {
    REGISTRY_BACKEND = var.registry_backend
    MENDER_URL       = length(var.mender_targets) == 0 ? var.mender_url : ""
    MENDER_TARGETS = length(var.mender_targets) == 0 ? "" : jsonencode([
      for t in var.mender_targets : { name = t.name, mender_url = t.mender_url, registries = t.registries }
    ])
    IOT_PROJECT              = local.iot_project
    IOT_LOCATION             = var.iot_location
    IOT_REGISTRIES           = join(",", local.registries)
    CLEARBLADE_CONFIGURATION = local.clearblade ? "${local.clearblade_mount.directory}/${local.clearblade_mount.file}" : ""
    TAGS                     = var.tags == null ? "" : var.tags
    IDENTITY_TEMPLATE        = var.identity_template
    ON_DELETE                = var.on_delete
    ON_BLOCKED               = var.on_blocked
    REVOKE_REMOVED_KEYS      = tostring(var.revoke_removed_keys)
    LOG_LEVEL                = var.log_level
  }) : k => v if v != "" } # unset rather than empty: an empty IOT_REGISTRIES means "all"

  labels = merge(var.labels, { app = "mender-bridge" })

  services = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    ], local.google ? ["pubsub.googleapis.com"] : [],
  local.eventarc_delivery ? ["eventarc.googleapis.com"] : []))
}
