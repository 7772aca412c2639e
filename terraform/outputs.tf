# What other configurations and people need after `terraform apply`.

output "events_topic" {
  description = "Pub/Sub topic receiving the device audit entries (id)."
  value       = google_pubsub_topic.events.id
}

output "dead_letter_topic" {
  description = "Topic receiving events that failed max_delivery_attempts times (id)."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Subscription keeping the dead-lettered events; pull it to inspect them."
  value       = google_pubsub_subscription.dead_letter.id
}

output "sink_writer_identity" {
  description = "Identity the Logging sink publishes with (granted roles/pubsub.publisher on the events topic only)."
  value       = google_logging_project_sink.device_events.writer_identity
}

output "runtime_service_account" {
  description = "Service account the event and reconcile functions run as."
  value       = google_service_account.run.email
}

output "invoker_service_account" {
  description = "Service account the push subscription and the scheduler job call the functions with."
  value       = google_service_account.invoker.email
}

output "build_service_account" {
  description = "Service account Cloud Build builds the functions with."
  value       = google_service_account.build.email
}

output "mender_token_secret" {
  description = "Secret Manager secret that must hold the Mender personal access token."
  value       = google_secret_manager_secret.mender_token.id
}

output "webhook_secret" {
  description = "Secret Manager secret that must hold WEBHOOK_SECRET (null without the webhook)."
  value       = var.enable_provision_webhook ? google_secret_manager_secret.webhook[0].id : null
}

output "secret_setup_commands" {
  description = "Commands that add the secret values (run them once, before the functions start)."
  value = concat(
    ["printf %s \"$MENDER_TOKEN\" | gcloud secrets versions add ${local.mender_token_secret_id} --project ${var.project_id} --data-file=-"],
    var.enable_provision_webhook ? ["openssl rand -hex 32 | tr -d '\\n' | gcloud secrets versions add ${local.webhook_secret_id} --project ${var.project_id} --data-file=-"] : [],
  )
}

output "event_function" {
  description = "Event function: name, entry point and URL."
  value = {
    name        = google_cloudfunctions2_function.events.name
    entry_point = google_cloudfunctions2_function.events.build_config[0].entry_point
    uri         = google_cloudfunctions2_function.events.service_config[0].uri
  }
}

output "reconcile_function" {
  description = "Reconcile function: name and URL."
  value = {
    name = google_cloudfunctions2_function.reconcile.name
    uri  = google_cloudfunctions2_function.reconcile.service_config[0].uri
  }
}

output "provision_webhook_url" {
  description = "URL of the provisioning webhook (null when disabled)."
  value       = var.enable_provision_webhook ? google_cloudfunctions2_function.provision[0].service_config[0].uri : null
}

output "scheduler_job" {
  description = "Cloud Scheduler job running the reconcile (null when disabled)."
  value       = var.reconcile_schedule == null ? null : google_cloud_scheduler_job.reconcile[0].id
}

output "source_object" {
  description = "gs:// URL of the deployed source archive; its name carries the archive's SHA-256."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}
