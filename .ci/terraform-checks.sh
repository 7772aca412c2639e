#!/usr/bin/env bash
# Terraform checks: formatting (terraform fmt), the arguments against the provider schema
# (terraform validate needs the provider binary, which cannot be downloaded here: the schema
# comes from the cdktf bindings on npm instead, for the lowest and a recent supported
# provider), and static security analysis (checkov, in a virtual environment of its own so its
# dependencies never meet the project's). Checkov runs with the defaults and with each example
# tfvars (the complete one with the provisioning webhook, pull delivery, ClearBlade with two
# Mender targets), so that the resources behind each mode are checked too. Every skipped check carries its reason next to the resource
# (#checkov:skip=CKV_...:reason). Run from .ci/run, inside the project's venv (python-hcl2).
set -euo pipefail
cd "$(dirname "$0")/.."
export CHECKPOINT_DISABLE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

CHECKOV_VERSION="3.3.30"
# @cdktf/provider-google 13.15.0 is hashicorp/google 5.26.0 (the lower bound in versions.tf),
# 16.12.1 is 6.50.0.
CDKTF_GOOGLE_VERSIONS=("13.15.0" "16.12.1")

if command -v terraform >/dev/null 2>&1; then
  echo "== terraform fmt -check -recursive terraform ($(terraform version | head -n1))"
  terraform fmt -check -recursive -diff terraform
else
  echo "WARNING: terraform is not installed: 'terraform fmt -check -recursive terraform' was NOT run" >&2
  echo "WARNING: terraform is not installed: 'terraform fmt -check -recursive terraform' was NOT run"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if command -v npm >/dev/null 2>&1; then
  libs=()
  for version in "${CDKTF_GOOGLE_VERSIONS[@]}"; do
    (cd "$tmp" && npm pack --silent "@cdktf/provider-google@${version}" >/dev/null)
    mkdir -p "$tmp/cdktf-${version}"
    tar xzf "$tmp/cdktf-provider-google-${version}.tgz" -C "$tmp/cdktf-${version}" \
      --wildcards 'package/lib/*/index.d.ts'
    rm -f "$tmp/cdktf-provider-google-${version}.tgz"
    libs+=("$tmp/cdktf-${version}/package/lib")
  done
  echo "== provider schema (cdktf bindings ${CDKTF_GOOGLE_VERSIONS[*]})"
  "${PYTHON:-python}" tests/terraform/provider_schema.py terraform "${libs[@]}"
  rm -rf "$tmp"/cdktf-*
else
  echo "WARNING: npm is not installed: terraform/ was NOT checked against the provider schema" >&2
  echo "WARNING: npm is not installed: terraform/ was NOT checked against the provider schema"
fi

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
for example in terraform.tfvars.example pull.tfvars clearblade-two-targets.tfvars; do
  echo "== checkov ${CHECKOV_VERSION}: examples/${example}"
  "${checkov[@]}" --var-file "terraform/examples/${example}"
done
