# What other configurations and people need after `terraform apply`.

output "events_topic" {
  description = "Pub/Sub topic receiving the device audit entries (id; null with ClearBlade)."
  value       = local.google ? google_pubsub_topic.events[0].id : null
}

output "pull_subscription" {
  description = "Subscription the listen workers pull (event_delivery = 'pull'): give it to `mender-bridge listen --subscription` (id; null otherwise)."
  value       = local.pull_delivery ? google_pubsub_subscription.events[0].id : null
}

output "dead_letter_topic" {
  description = "Topic receiving events that failed max_delivery_attempts times (id; null with ClearBlade)."
  value       = local.google ? google_pubsub_topic.dead_letter[0].id : null
}

output "dead_letter_subscription" {
  description = "Subscription keeping the dead-lettered events, for `mender-bridge dead-letters list` and `replay --subscription` (id; null with ClearBlade)."
  value       = local.google ? google_pubsub_subscription.dead_letter[0].id : null
}

output "sink_writer_identity" {
  description = "Identity the Logging sink publishes with (granted roles/pubsub.publisher on the events topic only; null with ClearBlade)."
  value       = local.google ? google_logging_project_sink.device_events[0].writer_identity : null
}

output "runtime_service_account" {
  description = "Service account the event and reconcile functions run as."
  value       = google_service_account.run.email
}

output "listen_service_account" {
  description = "Service account for the listen workers (event_delivery = 'pull'; null otherwise): it may pull the events subscription, read devices and the Mender token secret(s), nothing else."
  value       = local.pull_delivery ? google_service_account.listen[0].email : null
}

output "listen_environment" {
  description = "Non-secret environment of a listen worker (event_delivery = 'pull'; null otherwise): the functions' settings plus PUBSUB_SUBSCRIPTION. The token(s) come from the secrets in mender_token_secrets."
  value       = local.pull_delivery ? merge(local.environment, { PUBSUB_SUBSCRIPTION = google_pubsub_subscription.events[0].id }) : null
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
  description = "Secret Manager secret that must hold the Mender personal access token (null with mender_targets: see mender_token_secrets)."
  value       = length(var.mender_targets) == 0 ? google_secret_manager_secret.this["MENDER_TOKEN"].id : null
}

output "mender_token_secrets" {
  description = "Secret Manager secret of each Mender token, by the environment variable it is read as (MENDER_TOKEN, or MENDER_TOKEN_<NAME> per target)."
  value       = { for env in keys(local.mender_tokens) : env => google_secret_manager_secret.this[env].id }
}

output "webhook_secret" {
  description = "Secret Manager secret that must hold WEBHOOK_SECRET (null without the webhook)."
  value       = var.enable_provision_webhook ? google_secret_manager_secret.this["WEBHOOK_SECRET"].id : null
}

output "clearblade_configuration_secret" {
  description = "Secret Manager secret that must hold ClearBlade's service-account JSON (null with the Google backend)."
  value       = local.clearblade ? google_secret_manager_secret.this["CLEARBLADE_CONFIGURATION"].id : null
}

output "secret_setup_commands" {
  description = "Commands that add the secret values (run them once, before the functions start)."
  value = concat(
    # The token is read from a shell variable of the same name (`read -rs MENDER_TOKEN`).
    [for env, token in local.mender_tokens : format("printf %%s \"$%s\" | gcloud secrets versions add %s --project %s --data-file=-", env, token.secret_id, var.project_id)],
    var.enable_provision_webhook ? ["openssl rand -hex 32 | tr -d '\\n' | gcloud secrets versions add ${local.webhook_secret_id} --project ${var.project_id} --data-file=-"] : [],
    local.clearblade ? ["gcloud secrets versions add ${local.clearblade_secret_id} --project ${var.project_id} --data-file=clearblade-service-account.json"] : [],
  )
}

output "event_function" {
  description = "Event function: name, entry point and URL (null with pull delivery or ClearBlade)."
  value = local.event_function ? {
    name        = google_cloudfunctions2_function.events[0].name
    entry_point = google_cloudfunctions2_function.events[0].build_config[0].entry_point
    uri         = google_cloudfunctions2_function.events[0].service_config[0].uri
  } : null
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
  value       = local.reconcile_schedule == null ? null : google_cloud_scheduler_job.reconcile[0].id
}

output "source_object" {
  description = "gs:// URL of the deployed source archive; its name carries the archive's SHA-256."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}
