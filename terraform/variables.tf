# Inputs of the module. Every variable has a description, a type and, where a wrong value
# would only fail at apply time (or worse, at run time), a validation.

# --- Where ------------------------------------------------------------------------------

variable "project_id" {
  description = "Project that hosts the bridge: topics, functions, secrets, scheduler job."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket, the image repository and the scheduler job."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name (service accounts get '<prefix>-run', '<prefix>-invoker', ...)."
  type        = string
  default     = "mender-bridge"

  validation {
    # 30 characters is the service-account ID limit; the longest suffix added is "-provision" (10).
    condition     = can(regex("^[a-z][a-z0-9-]{2,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 4-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Enable the Google APIs the module needs. Set false when a platform team enables them elsewhere."
  type        = bool
  default     = true
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/P/locations/REGION/keyRings/R/cryptoKeys/K) in `region`, for the topics, the source bucket and the image repository. Null keeps Google-managed encryption. The Pub/Sub, Cloud Storage and Artifact Registry service agents need roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[a-z0-9-]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a full crypto key resource name."
  }
}

variable "secret_kms_key_name" {
  description = "Optional Cloud KMS key for the secrets. Secrets use automatic replication, which takes a key in location `global` only. The Secret Manager service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null

  validation {
    condition     = var.secret_kms_key_name == null || can(regex("^projects/[^/]+/locations/global/keyRings/[^/]+/cryptoKeys/[^/]+$", var.secret_kms_key_name))
    error_message = "secret_kms_key_name must be a full crypto key resource name in location global."
  }
}

# --- The registry side (source of truth) -------------------------------------------------

variable "iot_project" {
  description = "Project that holds the Cloud IoT registries and emits their audit log. The Logging sink is created there. Null means project_id."
  type        = string
  default     = null

  validation {
    condition     = var.iot_project == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.iot_project))
    error_message = "iot_project must be a Google Cloud project ID."
  }
}

variable "iot_location" {
  description = "Cloud IoT location of the registries (IOT_LOCATION)."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.iot_location))
    error_message = "iot_location must be a region such as us-central1."
  }
}

variable "iot_registries" {
  description = "Registry IDs the bridge works on (IOT_REGISTRIES): the scheduled reconcile covers these, or every registry of iot_location when empty."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.iot_registries : can(regex("^[a-zA-Z][a-zA-Z0-9-._+~%]{2,63}$", r))])
    error_message = "Each registry ID is 3-64 characters and starts with a letter."
  }
}

variable "iot_reader_role" {
  description = "Role granted on iot_project to the function's service account to read devices and their credentials (cloudiot.devices.get, cloudiot.devices.list). A custom role with exactly those permissions is the tighter choice where the organisation allows one."
  type        = string
  default     = "roles/cloudiot.viewer"

  validation {
    condition     = can(regex("^(roles/[a-zA-Z.]+|projects/[^/]+/roles/[a-zA-Z0-9_.]+|organizations/[0-9]+/roles/[a-zA-Z0-9_.]+)$", var.iot_reader_role))
    error_message = "iot_reader_role must be a predefined role (roles/...) or a custom role name."
  }

  validation {
    condition     = !contains(["roles/owner", "roles/editor", "roles/cloudiot.admin", "roles/cloudiot.editor"], var.iot_reader_role)
    error_message = "iot_reader_role must be read-only: the bridge never writes to the registry."
  }
}

# --- The Mender side ------------------------------------------------------------------------

variable "mender_url" {
  description = "Mender server URL (MENDER_URL)."
  type        = string
  default     = "https://hosted.mender.io"

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.mender_url))
    error_message = "mender_url must be an https:// URL: the token is sent to it."
  }
}

variable "mender_token_secret_id" {
  description = "ID of the Secret Manager secret created for the Mender personal access token. Null means '<name_prefix>-mender-token'. The module never takes the token itself: add it with `gcloud secrets versions add` (see README)."
  type        = string
  default     = null

  validation {
    condition     = var.mender_token_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.mender_token_secret_id))
    error_message = "mender_token_secret_id may hold letters, digits, '-' and '_' only."
  }
}

variable "mender_token_version" {
  description = "Secret version the functions read: 'latest' (a new version is picked up by new instances) or a version number (pinned; change it to roll the token)."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.mender_token_version))
    error_message = "mender_token_version must be 'latest' or a version number."
  }
}

# --- What the bridge does -----------------------------------------------------------------

variable "identity_template" {
  description = "Mender identity built from a registry device (IDENTITY_TEMPLATE)."
  type        = string
  default     = "google_iot_id={device.id}"

  validation {
    condition     = length(trimspace(var.identity_template)) > 0 && can(regex("=", var.identity_template))
    error_message = "identity_template must hold at least one name=value pair."
  }
}

variable "on_delete" {
  description = "What a device deleted in the registry does to its Mender device (ON_DELETE): decommission or ignore."
  type        = string
  default     = "decommission"

  validation {
    condition     = contains(["decommission", "ignore"], var.on_delete)
    error_message = "on_delete must be 'decommission' or 'ignore'."
  }
}

variable "on_blocked" {
  description = "What a device blocked in the registry does to its Mender auth sets (ON_BLOCKED): ignore or reject."
  type        = string
  default     = "ignore"

  validation {
    condition     = contains(["ignore", "reject"], var.on_blocked)
    error_message = "on_blocked must be 'ignore' or 'reject'."
  }
}

variable "revoke_removed_keys" {
  description = "Revoke Mender auth sets whose key is no longer a usable registry credential (REVOKE_REMOVED_KEYS)."
  type        = bool
  default     = true
}

variable "log_level" {
  description = "Log level of the functions (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "extra_environment" {
  description = "Further non-secret settings for the functions (upper-case names of bridge.config.Settings, e.g. MIN_RSA_BITS, CONCURRENCY, MENDER_TIMEOUT). Secrets and the settings this module sets itself are refused."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "MENDER_TOKEN", "MENDER_PASSWORD", "MENDER_USERNAME", "WEBHOOK_SECRET", "CLEARBLADE_CONFIGURATION",
      "MENDER_URL", "IOT_PROJECT", "IOT_LOCATION", "IOT_REGISTRIES", "IOT_ENDPOINT", "IOT_CREDENTIALS",
      "REGISTRY_BACKEND", "IDENTITY_TEMPLATE", "ON_DELETE", "ON_BLOCKED", "REVOKE_REMOVED_KEYS", "LOG_LEVEL",
    ])) == 0
    error_message = "extra_environment must not hold secrets (they go through Secret Manager) nor settings that have their own variable."
  }

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "extra_environment keys are upper-case setting names."
  }
}

# --- Packaging and runtime ------------------------------------------------------------------

variable "source_archive" {
  description = "Path of the function source archive built by `python functions/package.py --out dist`. Null means dist/mender-bridge-function.zip at the repository root."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Python runtime of the functions."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.runtime)
    error_message = "runtime must be python311, python312 or python313 (the bridge needs Python >= 3.11)."
  }
}

variable "event_max_instances" {
  description = "Upper bound of event-function instances: it bounds the concurrent load the bridge puts on Mender."
  type        = number
  default     = 5

  validation {
    condition     = var.event_max_instances >= 1 && var.event_max_instances <= 100 && floor(var.event_max_instances) == var.event_max_instances
    error_message = "event_max_instances must be a whole number from 1 to 100."
  }
}

variable "event_memory" {
  description = "Memory of the event function."
  type        = string
  default     = "256Mi"

  validation {
    condition     = contains(["256Mi", "512Mi", "1Gi", "2Gi"], var.event_memory)
    error_message = "event_memory must be 256Mi, 512Mi, 1Gi or 2Gi."
  }
}

# --- Delivery and retries ------------------------------------------------------------------

variable "event_delivery" {
  description = "How events reach the function. 'push' (default): a Pub/Sub push subscription to the HTTP entry on_push, retries bounded by a dead-letter policy (max_delivery_attempts). 'eventarc': an Eventarc trigger to the CloudEvent entry on_device_event with retries on, bounded only by Eventarc's 24 h message retention (no dead-letter topic: Eventarc owns that subscription)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "eventarc"], var.event_delivery)
    error_message = "event_delivery must be 'push' or 'eventarc'."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one event before Pub/Sub moves it to the dead-letter topic (push delivery)."
  type        = number
  default     = 10

  validation {
    # Pub/Sub accepts 5 to 100.
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Shortest wait before Pub/Sub redelivers a failed event (exponential backoff starts here)."
  type        = number
  default     = 10

  validation {
    condition     = var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600
    error_message = "retry_minimum_backoff_seconds must be between 0 and 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Longest wait between two deliveries of a failing event."
  type        = number
  default     = 600

  validation {
    condition     = var.retry_maximum_backoff_seconds >= 1 && var.retry_maximum_backoff_seconds <= 600
    error_message = "retry_maximum_backoff_seconds must be between 1 and 600."
  }
}

variable "ack_deadline_seconds" {
  description = "Time the event function has to answer one push; also its timeout. A slower answer counts as a failed delivery."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "dead_letter_retention" {
  description = "How long dead-lettered events stay in the dead-letter subscription for inspection or replay (seconds, with an 's' suffix)."
  type        = string
  default     = "604800s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.dead_letter_retention)) && try(tonumber(trimsuffix(var.dead_letter_retention, "s")) >= 600 && tonumber(trimsuffix(var.dead_letter_retention, "s")) <= 604800, false)
    error_message = "dead_letter_retention must be between 600s and 604800s (7 days)."
  }
}

# --- Scheduled reconcile (the safety net) ----------------------------------------------------

variable "reconcile_schedule" {
  description = "Cron schedule of the full reconcile that repairs anything an event missed. Null disables the job (not recommended)."
  type        = string
  default     = "17 */6 * * *"

  validation {
    condition     = var.reconcile_schedule == null || length(split(" ", trimspace(coalesce(var.reconcile_schedule, "x")))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression."
  }
}

variable "reconcile_time_zone" {
  description = "Time zone of reconcile_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "reconcile_timeout_seconds" {
  description = "Timeout of one reconcile run; also the scheduler's attempt deadline."
  type        = number
  default     = 1800

  validation {
    # Cloud Scheduler waits at most 30 minutes for an HTTP target.
    condition     = var.reconcile_timeout_seconds >= 60 && var.reconcile_timeout_seconds <= 1800
    error_message = "reconcile_timeout_seconds must be between 60 and 1800."
  }
}

# --- Optional provisioning webhook -----------------------------------------------------------

variable "enable_provision_webhook" {
  description = "Deploy the provisioning webhook (entry `provision`): a provisioning tool calls it right after creating a device, so the device is admitted without waiting for the audit log."
  type        = bool
  default     = false
}

variable "provision_invokers" {
  description = "IAM members allowed to call the provisioning webhook (e.g. serviceAccount:factory@p.iam.gserviceaccount.com). The webhook also checks WEBHOOK_SECRET."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.provision_invokers : can(regex("^(serviceAccount|user|group):[^@\\s]+@[^@\\s]+$", m))])
    error_message = "provision_invokers must be serviceAccount:, user: or group: members; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "provision_ingress" {
  description = "Network ingress of the provisioning webhook: ALLOW_ALL (callers outside Google Cloud, still IAM-authenticated), ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.provision_ingress)
    error_message = "provision_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "webhook_secret_id" {
  description = "ID of the Secret Manager secret created for WEBHOOK_SECRET. Null means '<name_prefix>-webhook-secret'."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.webhook_secret_id))
    error_message = "webhook_secret_id may hold letters, digits, '-' and '_' only."
  }
}
