# Terraform and provider versions.
#
# hashicorp/google >= 5: the cloudiot resources were removed in 5.0, so this module never
# manages registries (it only reacts to their audit log). 5.26.0 is the first release with
# `build_config.service_account` on google_cloudfunctions2_function. CI checks the arguments
# against the 5.26.0 and 6.50.0 schemas (.ci/terraform-checks.sh). The upper bound is the next
# major version nobody has checked or planned this module against: raise it after a
# `terraform plan` with that version shows no change.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.26.0, < 7.0.0"
    }
  }
}
