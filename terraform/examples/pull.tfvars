# Events pulled by `mender-bridge listen` workers you run (a VM, Cloud Run, GKE) instead of
# pushed to an event function. After `terraform apply`, give the workers:
#   the service account     terraform output listen_service_account
#   their settings          terraform output listen_environment   (PUBSUB_SUBSCRIPTION included)
#   the token               from terraform output mender_token_secrets, as MENDER_TOKEN
# README, "Pull delivery: running listen workers", shows the commands.
#
#   terraform apply -var-file=examples/pull.tfvars

project_id     = "acme-fleet-prod"
region         = "europe-west1"
iot_project    = "acme-iot"
iot_location   = "europe-west1"
iot_registries = ["factory-a", "field"]
mender_url     = "https://eu.hosted.mender.io"

event_delivery        = "pull"
max_delivery_attempts = 10 # then the event waits in the dead-letter subscription
ack_deadline_seconds  = 60 # the workers extend it while they work

labels = { team = "fleet", env = "prod" }
