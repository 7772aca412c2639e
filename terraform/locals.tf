# Names and settings derived from the inputs only (no resource): tests evaluate this file
# with variables.tf alone, without the provider.

locals {
  iot_project    = coalesce(var.iot_project, var.project_id)
  source_archive = coalesce(var.source_archive, "${path.module}/../dist/mender-bridge-function.zip")
  push_delivery  = var.event_delivery == "push"

  mender_token_secret_id = coalesce(var.mender_token_secret_id, "${var.name_prefix}-mender-token")
  webhook_secret_id      = coalesce(var.webhook_secret_id, "${var.name_prefix}-webhook-secret")

  # The three audit-log methods that change a device; nothing else reaches the function.
  device_methods = [
    "google.cloud.iot.v1.DeviceManager.CreateDevice",
    "google.cloud.iot.v1.DeviceManager.UpdateDevice",
    "google.cloud.iot.v1.DeviceManager.DeleteDevice",
  ]
  sink_filter = join(" AND ", [
    "logName=\"projects/${local.iot_project}/logs/cloudaudit.googleapis.com%2Factivity\"",
    "resource.type=\"cloudiot_device\"",
    "protoPayload.serviceName=\"cloudiot.googleapis.com\"",
    "protoPayload.methodName=(${join(" OR ", [for m in local.device_methods : "\"${m}\""])})",
  ])

  # Settings read by bridge.config.Settings.from_env; no secret here (they are
  # secret_environment_variables on each function).
  environment = { for k, v in merge(var.extra_environment, {
    REGISTRY_BACKEND    = "google"
    MENDER_URL          = var.mender_url
    IOT_PROJECT         = local.iot_project
    IOT_LOCATION        = var.iot_location
    IOT_REGISTRIES      = join(",", var.iot_registries)
    IDENTITY_TEMPLATE   = var.identity_template
    ON_DELETE           = var.on_delete
    ON_BLOCKED          = var.on_blocked
    REVOKE_REMOVED_KEYS = tostring(var.revoke_removed_keys)
    LOG_LEVEL           = var.log_level
  }) : k => v if v != "" } # an empty IOT_REGISTRIES means "all": leave it unset

  labels = merge(var.labels, { app = "mender-bridge" })

  services = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ], local.push_delivery ? [] : ["eventarc.googleapis.com"]))
}
