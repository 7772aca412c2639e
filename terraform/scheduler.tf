# A periodic full reconcile. With the Google backend it is the safety net, for events that
# were lost, dead-lettered or arrived while Mender was down; with ClearBlade, which has no
# event to follow, it is the primary path (every 5 minutes by default). Re-running it is
# always safe, and the function runs one instance at a time, so runs never overlap.

resource "google_cloud_scheduler_job" "reconcile" {
  count = local.reconcile_schedule == null ? 0 : 1

  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-reconcile"
  description      = "Runs the mender-bridge reconcile function."
  schedule         = local.reconcile_schedule
  time_zone        = var.reconcile_time_zone
  attempt_deadline = "${var.reconcile_timeout_seconds}s"

  # One more try after a failed run; the next scheduled run covers the rest.
  retry_config {
    retry_count          = 1
    min_backoff_duration = "300s"
    max_backoff_duration = "300s"
    max_doublings        = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.reconcile.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.reconcile.service_config[0].uri
    }
  }

  depends_on = [
    google_project_service.this,
    google_cloud_run_v2_service_iam_member.invoker_reconcile,
  ]
}
