# Secrets. The module creates the secrets and who may read them, never their values: a value
# passed through Terraform would sit in plain text in the state. Add the values with
# `gcloud secrets versions add` (README, "Deploy").

resource "google_secret_manager_secret" "this" {
  for_each = local.secret_ids

  project   = var.project_id
  secret_id = each.value
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

# Each grant is on one secret, to one runtime identity (local.secret_readers).
resource "google_secret_manager_secret_iam_member" "readers" {
  for_each = local.secret_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.setting].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_members[each.value.identity]
}

# Addresses of earlier releases: moved, so an upgrade neither deletes a secret (and its
# versions) nor drops a grant.
moved {
  from = google_secret_manager_secret.mender_token
  to   = google_secret_manager_secret.this["MENDER_TOKEN"]
}

moved {
  from = google_secret_manager_secret.webhook[0]
  to   = google_secret_manager_secret.this["WEBHOOK_SECRET"]
}

moved {
  from = google_secret_manager_secret_iam_member.run_reads_token
  to   = google_secret_manager_secret_iam_member.readers["run/MENDER_TOKEN"]
}

moved {
  from = google_secret_manager_secret_iam_member.provision_reads_token[0]
  to   = google_secret_manager_secret_iam_member.readers["provision/MENDER_TOKEN"]
}

moved {
  from = google_secret_manager_secret_iam_member.provision_reads_webhook_secret[0]
  to   = google_secret_manager_secret_iam_member.readers["provision/WEBHOOK_SECRET"]
}
