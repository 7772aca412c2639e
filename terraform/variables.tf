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

variable "registry_backend" {
  description = "Where the registries are (REGISTRY_BACKEND). 'google' (default): the Cloud IoT API in iot_project, whose audit log feeds the event path. 'clearblade': ClearBlade IoT Core, which has no audit log to follow, so the scheduled reconcile (clearblade_reconcile_schedule) is the primary path and no sink, topic or event function is created; the service-account JSON ClearBlade gives you goes into a Secret Manager secret (clearblade_configuration_secret_id)."
  type        = string
  default     = "google"

  validation {
    condition     = contains(["google", "clearblade"], var.registry_backend)
    error_message = "registry_backend must be 'google' or 'clearblade'."
  }
}

variable "iot_registries" {
  description = "Registry IDs the bridge works on (IOT_REGISTRIES), the scope of everything it does: the Logging sink only forwards entries of these registries in iot_location, and the bridge ignores any event outside them. Empty means every registry of iot_project in iot_location (the sink then filters on the location only). With mender_targets, the scope is the targets' registries: leave this empty or list the same ones."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.iot_registries : can(regex("^[a-zA-Z][a-zA-Z0-9-._+~%]{2,63}$", r))])
    error_message = "Each registry ID is 3-64 characters and starts with a letter."
  }
}

variable "iot_reader_role" {
  description = "Role granted on iot_project to the bridge's runtime service accounts (functions, webhook, listen workers) to read devices and their credentials (cloudiot.devices.get, cloudiot.devices.list); Google backend only. A custom role with exactly those permissions is the tighter choice where the organisation allows one."
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
  description = "Mender server URL (MENDER_URL). Not used with mender_targets."
  type        = string
  default     = "https://hosted.mender.io"

  validation {
    condition     = can(regex("^https://[^/\\s]+", var.mender_url))
    error_message = "mender_url must be an https:// URL: the token is sent to it."
  }
}

variable "mender_token_secret_id" {
  description = "ID of the Secret Manager secret created for the Mender personal access token. Null means '<name_prefix>-mender-token'. The module never takes the token itself: add it with `gcloud secrets versions add` (see README). Not used with mender_targets (one secret per target)."
  type        = string
  default     = null

  validation {
    condition     = var.mender_token_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.mender_token_secret_id))
    error_message = "mender_token_secret_id may hold letters, digits, '-' and '_' only."
  }
}

variable "mender_token_version" {
  description = "Secret version the functions read: 'latest' (a new version is picked up by new instances) or a version number (pinned; change it to roll the token). The targets' tokens of mender_targets are always read at 'latest'."
  type        = string
  default     = "latest"

  validation {
    condition     = can(regex("^(latest|[1-9][0-9]*)$", var.mender_token_version))
    error_message = "mender_token_version must be 'latest' or a version number."
  }
}

variable "mender_targets" {
  description = "Several Mender servers or tenants (MENDER_TARGETS), each serving the devices of its own registries: name (lowercase letters, digits, '-'), mender_url (https) and registries (IDs). Each target gets a Secret Manager secret '<name_prefix>-mender-token-<name>' for its token, read by the functions as MENDER_TOKEN_<NAME> (upper case, '-' -> '_', version 'latest'). Empty (default): one Mender, mender_url and the mender_token_secret_id secret."
  type = list(object({
    name       = string
    mender_url = string
    registries = list(string)
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for t in var.mender_targets : can(regex("^[a-z][a-z0-9-]{0,30}$", t.name))])
    error_message = "Each mender_targets name is 1-31 lowercase letters, digits or '-', starting with a letter."
  }

  validation {
    condition     = length(distinct([for t in var.mender_targets : t.name])) == length(var.mender_targets)
    error_message = "mender_targets names must be unique."
  }

  validation {
    condition     = alltrue([for t in var.mender_targets : can(regex("^https://[^/\\s]+", t.mender_url))])
    error_message = "Each mender_targets mender_url must be an https:// URL: the token is sent to it."
  }

  validation {
    condition = alltrue([for t in var.mender_targets : length(t.registries) > 0 && alltrue([
      for r in t.registries : can(regex("^[a-zA-Z][a-zA-Z0-9-._+~%]{2,63}$", r))
    ])])
    error_message = "Each mender_targets entry lists at least one registry ID (3-64 characters, starting with a letter)."
  }

  validation {
    condition = (length(distinct(flatten([for t in var.mender_targets : t.registries]))) ==
    length(flatten([for t in var.mender_targets : t.registries])))
    error_message = "A registry belongs to one Mender target only: no registry may be listed twice in mender_targets."
  }
}

variable "tags" {
  description = "Mender inventory tags written from registry fields (TAGS), e.g. 'site={metadata[site]},registry={registry}'. Null (default): no tags are written."
  type        = string
  default     = null

  validation {
    condition     = var.tags == null || can(regex("^\\s*[^=,\\s]+\\s*=", coalesce(var.tags, "-")))
    error_message = "tags must be name=template pairs separated by commas, e.g. 'site={metadata[site]}'."
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
      "MENDER_URL", "MENDER_TARGETS", "IOT_PROJECT", "IOT_LOCATION", "IOT_REGISTRIES", "IOT_ENDPOINT",
      "IOT_CREDENTIALS", "REGISTRY_BACKEND", "IDENTITY_TEMPLATE", "ON_DELETE", "ON_BLOCKED",
      "REVOKE_REMOVED_KEYS", "LOG_LEVEL", "TAGS", "PUBSUB_SUBSCRIPTION",
    ])) == 0
    error_message = "extra_environment must not hold secrets (they go through Secret Manager) nor settings that have their own variable."
  }

  validation {
    # The targets' tokens (MENDER_TOKEN_<NAME>) are secrets too.
    condition     = alltrue([for k in keys(var.extra_environment) : !startswith(k, "MENDER_TOKEN")])
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
  description = "How events reach the bridge (Google backend). 'push' (default): a Pub/Sub push subscription to the event function's HTTP entry on_push, retries bounded by a dead-letter policy (max_delivery_attempts). 'pull': no event function; a pull subscription with the same retry and dead-letter policy for `mender-bridge listen` workers you run (VM, Cloud Run, GKE), and a service account for them. 'eventarc': an Eventarc trigger to the CloudEvent entry on_device_event with retries on, bounded only by Eventarc's 24 h message retention (no dead-letter policy: Eventarc owns that subscription)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull", "eventarc"], var.event_delivery)
    error_message = "event_delivery must be 'push', 'pull' or 'eventarc'."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one event before Pub/Sub moves it to the dead-letter topic (push and pull delivery)."
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
  description = "Time the event function has to answer one push (also its timeout; a slower answer counts as a failed delivery), or a listen worker's first ack deadline (the client extends it while it works)."
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
  description = "Cron schedule of the full reconcile that repairs anything an event missed (Google backend). Null disables the job (not recommended)."
  type        = string
  default     = "17 */6 * * *"

  validation {
    condition     = var.reconcile_schedule == null || length(split(" ", trimspace(coalesce(var.reconcile_schedule, "x")))) == 5
    error_message = "reconcile_schedule must be a five-field cron expression."
  }
}

variable "clearblade_reconcile_schedule" {
  description = "Cron schedule of the reconcile with registry_backend = 'clearblade', where it is the primary path: how long a device registered in ClearBlade waits at most before Mender knows it. Default every 5 minutes; a run still going when the next one is due makes that one fail (one instance at a time), never overlap."
  type        = string
  default     = "*/5 * * * *"
  nullable    = false

  validation {
    condition     = length(split(" ", trimspace(var.clearblade_reconcile_schedule))) == 5
    error_message = "clearblade_reconcile_schedule must be a five-field cron expression."
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

# --- ClearBlade ---------------------------------------------------------------------------------

variable "clearblade_configuration_secret_id" {
  description = "ID of the Secret Manager secret created for ClearBlade's service-account JSON (registry_backend = 'clearblade'). Null means '<name_prefix>-clearblade-configuration'. Its value is added with `gcloud secrets versions add` (see README), never through Terraform; the functions read it as a file (CLEARBLADE_CONFIGURATION)."
  type        = string
  default     = null

  validation {
    condition     = var.clearblade_configuration_secret_id == null || can(regex("^[a-zA-Z0-9_-]{1,255}$", var.clearblade_configuration_secret_id))
    error_message = "clearblade_configuration_secret_id may hold letters, digits, '-' and '_' only."
  }
}
