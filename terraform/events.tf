# Device lifecycle events (Google backend): audit log -> Logging sink -> Pub/Sub topic -> the
# bridge (push to the event function, pull by listen workers, or Eventarc), with bounded
# retries and a dead-letter topic that keeps what could not be delivered.

resource "google_pubsub_topic" "events" {
  count = local.google ? 1 : 0

  project      = var.project_id
  name         = "${var.name_prefix}-device-events"
  labels       = local.labels
  kms_key_name = var.kms_key_name
  # An event older than a day is repaired by the scheduled reconcile anyway.
  message_retention_duration = "86400s"

  depends_on = [google_project_service.this]
}

resource "google_logging_project_sink" "device_events" {
  count = local.google ? 1 : 0

  project     = local.iot_project
  name        = "${var.name_prefix}-device-events"
  description = "Cloud IoT CreateDevice, UpdateDevice and DeleteDevice audit entries of the bridge's registries, for mender-bridge."
  destination = "pubsub.googleapis.com/${google_pubsub_topic.events[0].id}"
  filter      = local.sink_filter
  # A writer identity of its own, so the publish grant below is this sink's and no other's.
  unique_writer_identity = true
}

resource "google_pubsub_topic_iam_member" "sink_publishes" {
  count = local.google ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.events[0].name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.device_events[0].writer_identity
}

# --- Dead letters -----------------------------------------------------------------------------

resource "google_pubsub_topic" "dead_letter" {
  count = local.google ? 1 : 0

  project      = var.project_id
  name         = "${var.name_prefix}-device-events-dead-letter"
  labels       = local.labels
  kms_key_name = var.kms_key_name

  depends_on = [google_project_service.this]
}

# A topic without a subscription drops what it receives: this one keeps the dead letters for
# `mender-bridge dead-letters list|replay --subscription ...` or a person.
resource "google_pubsub_subscription" "dead_letter" {
  count = local.google ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name_prefix}-device-events-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[0].id
  labels                     = local.labels
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = false
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = "" # never expires, even when nobody pulls for a month
  }
}

# In eventarc mode too: the topic can still be attached by hand to Eventarc's own
# subscription (README, "Retries").
resource "google_pubsub_topic_iam_member" "pubsub_dead_letters" {
  count = local.google ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# --- The events subscription: push to on_push (default) or pull by listen workers -------------
#
# An explicit subscription rather than an Eventarc trigger: Eventarc creates and owns its
# subscription, so Terraform could not give it a dead-letter policy, and its retries would only
# stop when the message expires (24 h). Here a failing event is tried max_delivery_attempts
# times with exponential backoff, then parked on the dead-letter topic.

moved {
  from = google_pubsub_subscription.events_push
  to   = google_pubsub_subscription.events
}

resource "google_pubsub_subscription" "events" {
  count = local.events_subscription ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name_prefix}-device-events-${var.event_delivery}"
  topic                      = google_pubsub_topic.events[0].id
  labels                     = local.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "86400s"

  # Without it the subscription is a pull subscription.
  dynamic "push_config" {
    for_each = local.push_delivery ? [google_cloudfunctions2_function.events[0].service_config[0].uri] : []
    content {
      push_endpoint = push_config.value

      oidc_token {
        service_account_email = google_service_account.invoker.email
        audience              = push_config.value
      }
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[0].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    # Variables cannot see each other in validations before Terraform 1.9.
    precondition {
      condition     = var.retry_minimum_backoff_seconds <= var.retry_maximum_backoff_seconds
      error_message = "retry_minimum_backoff_seconds must not exceed retry_maximum_backoff_seconds."
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.pubsub_dead_letters,
    google_cloud_run_v2_service_iam_member.invoker_events,
  ]
}

resource "google_pubsub_subscription_iam_member" "pubsub_acks_dead_letters" {
  count = local.events_subscription ? 1 : 0

  # Pub/Sub acknowledges a message on the source subscription when it dead-letters it.
  project      = var.project_id
  subscription = google_pubsub_subscription.events[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "listen_pulls" {
  count = local.pull_delivery ? 1 : 0

  # The listen workers pull, ack and extend deadlines on this subscription, and nothing else.
  project      = var.project_id
  subscription = google_pubsub_subscription.events[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.listen_member
}

resource "google_service_account_iam_member" "pubsub_mints_invoker_token" {
  count = local.event_function ? 1 : 0

  # Pub/Sub mints the OIDC token of both delivery modes to the event function (the push
  # subscription here, Eventarc's own otherwise). Projects created before 2021-04-08 need this
  # grant; scoped to the one invoker account instead of the project.
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
