# ClearBlade IoT Core as the registry, two Mender targets: the lab registry admits its devices
# to a staging Mender, the field registries to the production tenant. ClearBlade has no audit
# log to follow, so the scheduled reconcile (every 5 minutes here) is the primary path: no sink,
# topic or event function is created.
#
# After the first `terraform apply -target=google_secret_manager_secret.this`, add the values
# (terraform output secret_setup_commands prints these lines):
#   read -rs MENDER_TOKEN_STAGING; read -rs MENDER_TOKEN_PROD_EU
#   printf %s "$MENDER_TOKEN_STAGING" | gcloud secrets versions add mender-bridge-mender-token-staging --data-file=-
#   printf %s "$MENDER_TOKEN_PROD_EU" | gcloud secrets versions add mender-bridge-mender-token-prod-eu --data-file=-
#   gcloud secrets versions add mender-bridge-clearblade-configuration --data-file=clearblade-service-account.json
#
#   terraform apply -var-file=examples/clearblade-two-targets.tfvars

project_id       = "acme-fleet-prod"
region           = "europe-west1"
registry_backend = "clearblade"
iot_project      = "acme-iot"     # the ClearBlade project of the registries
iot_location     = "europe-west1" # their region

mender_targets = [
  {
    name       = "staging"
    mender_url = "https://staging.mender.acme.example"
    registries = ["lab"]
  },
  {
    name       = "prod-eu"
    mender_url = "https://eu.hosted.mender.io"
    registries = ["field-a", "field-b"]
  },
]

clearblade_reconcile_schedule = "*/5 * * * *"
tags                          = "site={metadata[site]},registry={registry}"

labels = { team = "fleet", env = "prod" }
