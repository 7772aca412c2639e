# Identities. Each one has only what its job needs:
#   run       - the functions' runtime identity: read devices, read the Mender token.
#   invoker   - the identity Pub/Sub and Cloud Scheduler call the functions with: invoke only.
#   build     - Cloud Build's identity for building the functions: logs, the image repository.
#   provision - the webhook's runtime identity (only with enable_provision_webhook): as `run`,
#               plus the webhook secret.
#   listen    - the identity of the `mender-bridge listen` workers you run (only with
#               event_delivery = "pull"): pull the events subscription, read devices and tokens.
# None of them is the default compute or Cloud Build account.

resource "google_service_account" "run" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-run"
  display_name = "mender-bridge functions (runtime)"
  description  = "Runs the mender-bridge event and reconcile functions: reads IoT devices and the Mender token(s)."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-invoker"
  display_name = "mender-bridge invoker"
  description  = "Identity of the Pub/Sub push subscription and the Cloud Scheduler job calling mender-bridge."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "mender-bridge build"
  description  = "Cloud Build identity for building the mender-bridge functions."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "provision" {
  count = var.enable_provision_webhook ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-provision"
  display_name = "mender-bridge provisioning webhook (runtime)"
  description  = "Runs the mender-bridge provisioning webhook: reads IoT devices, the Mender token and the webhook secret."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "listen" {
  count = local.pull_delivery ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-listen"
  display_name = "mender-bridge listen workers"
  description  = "Runs mender-bridge listen workers: pulls the device events subscription, reads IoT devices and the Mender token(s)."

  depends_on = [google_project_service.this]
}

locals {
  run_member       = "serviceAccount:${google_service_account.run.email}"
  invoker_member   = "serviceAccount:${google_service_account.invoker.email}"
  build_member     = "serviceAccount:${google_service_account.build.email}"
  provision_member = var.enable_provision_webhook ? "serviceAccount:${google_service_account.provision[0].email}" : null
  listen_member    = local.pull_delivery ? "serviceAccount:${google_service_account.listen[0].email}" : null
  # The identities the bridge runs as (local.runtime_names). Static keys: for_each must know
  # them before the accounts exist.
  runtime_members = {
    for k, v in { run = local.run_member, provision = local.provision_member, listen = local.listen_member } :
    k => v if contains(local.runtime_names, k)
  }
}

# --- Runtime: read devices (Google backend) ------------------------------------------------------
# Project level because the provider (>= 5) has no cloudiot registry IAM resource any more.

resource "google_project_iam_member" "read_devices" {
  for_each = local.google ? local.runtime_members : {}

  project = local.iot_project
  role    = var.iot_reader_role
  member  = each.value
}

# --- Invoke: only the bridge's own Cloud Run services --------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "invoker_events" {
  count = local.event_function ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.events[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = local.invoker_member
}

resource "google_cloud_run_v2_service_iam_member" "invoker_reconcile" {
  count = local.reconcile_schedule == null ? 0 : 1

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.reconcile.service_config[0].service
  role     = "roles/run.invoker"
  member   = local.invoker_member
}

resource "google_cloud_run_v2_service_iam_member" "provision_callers" {
  for_each = var.enable_provision_webhook ? toset(var.provision_invokers) : toset([])

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.provision[0].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# --- Build ---------------------------------------------------------------------------------------

resource "google_project_iam_member" "build_logs" {
  # Build logs are written to the project; there is no narrower scope for log writing.
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = local.build_member
}

resource "google_project_iam_member" "build_reads_source" {
  # The Functions service copies the archive into its own gcf-v2-sources-<number>-<region>
  # bucket and the build reads it from there; that bucket is the service's, so the grant
  # cannot be scoped to it from here. Read-only.
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = local.build_member
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = local.build_member
}
