# The module called from another configuration: a production project's bridge, with the
# provisioning webhook for the factory's provisioning service.
#
#   python functions/package.py --out dist        # from the repository root
#   cd terraform/examples/module && terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.26.0, < 7.0.0"
    }
  }
}

provider "google" {
  project = "acme-fleet-prod"
  region  = "europe-west1"
}

module "mender_bridge" {
  source = "../.."

  project_id     = "acme-fleet-prod"
  region         = "europe-west1"
  iot_project    = "acme-iot"
  iot_location   = "europe-west1"
  iot_registries = ["factory-a", "field"]
  mender_url     = "https://eu.hosted.mender.io"
  source_archive = "${path.root}/../../../dist/mender-bridge-function.zip"

  enable_provision_webhook = true
  provision_invokers       = ["serviceAccount:factory-provisioner@acme-factory.iam.gserviceaccount.com"]

  labels = { team = "fleet", env = "prod" }
}

output "secret_setup_commands" {
  description = "Run these once after the first apply to store the secrets' values."
  value       = module.mender_bridge.secret_setup_commands
}

output "dead_letter_subscription" {
  description = "Where events that kept failing wait for a person."
  value       = module.mender_bridge.dead_letter_subscription
}
