# The project, its Pub/Sub service agent, and the Google APIs the module needs.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  # Pub/Sub's own identity: it mints the push OIDC token and moves messages to the dead-letter topic.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_service" "this" {
  for_each = var.enable_apis ? local.services : toset([])

  project = var.project_id
  service = each.value
  # Other workloads of the project may use these APIs: destroying the bridge must not turn them off.
  disable_on_destroy = false
}
