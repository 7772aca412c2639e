# The packaged source, where its images go, and the functions built from it.

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only the function's source archive (open source, no data, no secret); writes and IAM changes are in the Admin Activity audit log, and a usage-log bucket per deployment would add a bucket to secure for no finding.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Each archive is an object of its own (named by its hash); a replaced one stays 90 days as
  # a noncurrent version, so what ran before can still be inspected.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 90
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  lifecycle {
    precondition {
      condition     = var.kms_key_name == null || strcontains(coalesce(var.kms_key_name, "-"), "/locations/${var.region}/")
      error_message = "kms_key_name must be a key in var.region: the bucket and the image repository only take a key of their own location."
    }
  }

  depends_on = [google_project_service.this]
}

# The object name carries the archive's hash: a new archive is a new object, which makes the
# functions rebuild; the same archive (the packaging is reproducible) changes nothing.
resource "google_storage_bucket_object" "source" {
  name         = "mender-bridge-function-${filesha256(local.source_archive)}.zip"
  bucket       = google_storage_bucket.source.name
  source       = local.source_archive
  content_type = "application/zip"
}

resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  description   = "Images built from the mender-bridge function source."
  format        = "DOCKER"
  labels        = local.labels
  kms_key_name  = var.kms_key_name

  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}

locals {
  build_source = {
    bucket = google_storage_bucket.source.name
    object = google_storage_bucket_object.source.name
  }
  docker_repository = google_artifact_registry_repository.functions.id
  build_sa          = google_service_account.build.id
}

# --- Event function: one device per audit-log event (push and eventarc delivery) ---------------

resource "google_cloudfunctions2_function" "events" {
  count = local.event_function ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-events"
  description = "Reconciles one device in Mender for each Cloud IoT device audit-log event."
  labels      = local.labels

  build_config {
    runtime           = var.runtime
    entry_point       = local.push_delivery ? "on_push" : "on_device_event"
    docker_repository = local.docker_repository
    service_account   = local.build_sa
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.run.email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    min_instance_count               = 0
    max_instance_count               = var.event_max_instances
    max_instance_request_concurrency = 1
    available_memory                 = var.event_memory
    timeout_seconds                  = var.ack_deadline_seconds
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = local.mender_tokens
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  # Only with event_delivery = "eventarc"; push delivery uses the subscription in events.tf,
  # whose retries the dead-letter policy bounds.
  dynamic "event_trigger" {
    for_each = local.eventarc_delivery ? [google_pubsub_topic.events[0].id] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = event_trigger.value
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.invoker.email
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_project_iam_member.build_logs,
    google_project_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_images,
  ]
}

# --- Reconcile function: run by Cloud Scheduler; the safety net for events, and ClearBlade's ----------
# --- primary path -----------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "reconcile" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-reconcile"
  description = "Full reconcile of the configured registries with Mender (repairs missed events)."
  labels      = local.labels

  build_config {
    runtime           = var.runtime
    entry_point       = "reconcile"
    docker_repository = local.docker_repository
    service_account   = local.build_sa
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.run.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    min_instance_count             = 0
    # One run at a time: two overlapping backfills would only race each other.
    max_instance_count               = 1
    max_instance_request_concurrency = 1
    available_memory                 = "512Mi"
    timeout_seconds                  = var.reconcile_timeout_seconds
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = local.mender_tokens
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value.version
      }
    }

    dynamic "secret_volumes" {
      for_each = local.clearblade ? [google_secret_manager_secret.this["CLEARBLADE_CONFIGURATION"].secret_id] : []
      content {
        mount_path = local.clearblade_mount.directory
        project_id = var.project_id
        secret     = secret_volumes.value
        versions {
          version = "latest"
          path    = local.clearblade_mount.file
        }
      }
    }
  }

  lifecycle {
    # Variables cannot see each other in validations before Terraform 1.9.
    precondition {
      condition     = length(var.mender_targets) == 0 || length(var.iot_registries) == 0 || sort(distinct(var.iot_registries)) == local.registries
      error_message = "With mender_targets, the registries are the targets' ones: leave iot_registries empty or list exactly the registries of the targets."
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_project_iam_member.build_logs,
    google_project_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_images,
  ]
}

# --- Provisioning webhook (optional) ----------------------------------------------------------------

resource "google_cloudfunctions2_function" "provision" {
  #checkov:skip=CKV_GCP_124:A provisioning tool outside Google Cloud calls this webhook, so ingress is var.provision_ingress (ALLOW_ALL by default); every call still needs an IAM identity listed in var.provision_invokers (never allUsers) and the WEBHOOK_SECRET bearer token.
  count = var.enable_provision_webhook ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-provision"
  description = "Webhook a provisioning tool calls after creating a device; reconciles that device."
  labels      = local.labels

  build_config {
    runtime           = var.runtime
    entry_point       = "provision"
    docker_repository = local.docker_repository
    service_account   = local.build_sa
    source {
      storage_source {
        bucket = local.build_source.bucket
        object = local.build_source.object
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.provision[0].email
    ingress_settings                 = var.provision_ingress
    all_traffic_on_latest_revision   = true
    min_instance_count               = 0
    max_instance_count               = var.event_max_instances
    max_instance_request_concurrency = 1
    available_memory                 = var.event_memory
    timeout_seconds                  = 60
    environment_variables            = local.environment

    dynamic "secret_environment_variables" {
      for_each = merge(local.mender_tokens, { WEBHOOK_SECRET = { version = "latest" } })
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value.version
      }
    }

    dynamic "secret_volumes" {
      for_each = local.clearblade ? [google_secret_manager_secret.this["CLEARBLADE_CONFIGURATION"].secret_id] : []
      content {
        mount_path = local.clearblade_mount.directory
        project_id = var.project_id
        secret     = secret_volumes.value
        versions {
          version = "latest"
          path    = local.clearblade_mount.file
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.readers,
    google_project_iam_member.build_logs,
    google_project_iam_member.build_reads_source,
    google_artifact_registry_repository_iam_member.build_pushes_images,
  ]
}
