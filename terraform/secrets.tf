# Secrets. The module creates the secrets and who may read them, never their values: a value
# passed through Terraform would sit in plain text in the state. Add the values with
# `gcloud secrets versions add` (README, "Deploy").

resource "google_secret_manager_secret" "mender_token" {
  project   = var.project_id
  secret_id = local.mender_token_secret_id
  labels    = local.labels

  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.secret_kms_key_name == null ? [] : [var.secret_kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_iam_member" "run_reads_token" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.mender_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.run_member
}

resource "google_secret_manager_secret" "webhook" {
  count = var.enable_provision_webhook ? 1 : 0

  project   = var.project_id
  secret_id = local.webhook_secret_id
  labels    = local.labels

  replication {
    auto {
      dynamic "customer_managed_encryption" {
        for_each = var.secret_kms_key_name == null ? [] : [var.secret_kms_key_name]
        content {
          kms_key_name = customer_managed_encryption.value
        }
      }
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_iam_member" "provision_reads_token" {
  count = var.enable_provision_webhook ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.mender_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.provision_member
}

resource "google_secret_manager_secret_iam_member" "provision_reads_webhook_secret" {
  count = var.enable_provision_webhook ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.webhook[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.provision_member
}
