#!/usr/bin/env bash
# Terraform checks: formatting (terraform fmt) and static security analysis (checkov, in a
# virtual environment of its own so its dependencies never meet the project's).
# Checkov runs twice: with the defaults, and with the complete example tfvars, so that the
# resources behind feature flags (the provisioning webhook) are checked too. Every skipped
# check carries its reason next to the resource (#checkov:skip=CKV_...:reason).
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

CHECKOV_VERSION="3.3.30"

if command -v terraform >/dev/null 2>&1; then
  echo "== terraform fmt -check -recursive terraform ($(terraform version | head -n1))"
  terraform fmt -check -recursive -diff terraform
else
  echo "WARNING: terraform is not installed: 'terraform fmt -check -recursive terraform' was NOT run" >&2
  echo "WARNING: terraform is not installed: 'terraform fmt -check -recursive terraform' was NOT run"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/checkov"
echo "== installing checkov ${CHECKOV_VERSION} in a temporary venv"
if ! "$tmp/checkov/bin/python" -m pip install -q "checkov==${CHECKOV_VERSION}" >"$tmp/pip.log" 2>&1; then
  cat "$tmp/pip.log" >&2
  exit 1
fi

# --skip-download: no call to the vendor's platform (the network here is the registries only).
checkov=("$tmp/checkov/bin/checkov" --directory terraform --framework terraform
         --skip-download --compact --quiet)
echo "== checkov ${CHECKOV_VERSION}: defaults"
"${checkov[@]}"
echo "== checkov ${CHECKOV_VERSION}: examples/terraform.tfvars.example"
"${checkov[@]}" --var-file terraform/examples/terraform.tfvars.example
