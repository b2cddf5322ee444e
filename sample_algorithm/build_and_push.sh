#!/usr/bin/env bash
# Build the sample algorithm image and push it to Amazon ECR.
#
#   build_and_push.sh [--dry-run] [--region R] [--account A] [--tag T] IMAGE_NAME
#
# Builds <IMAGE_NAME>:<tag> from this directory, tags it
# <account>.dkr.ecr.<region>.amazonaws.com/<IMAGE_NAME>:<tag>, creates the ECR repository if it
# does not exist, logs docker in to ECR and pushes.
#
# Build output and progress go to stderr; stdout gets the dry-run commands and, last, the pushed image.
#
# Options and environment:
#   --dry-run (or DRY_RUN=1)  build and tag locally, but only print the commands that would change
#                             anything remote (ECR repository creation, login, push)
#   --region R                AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, `aws configure get region`;
#                             us-east-1 in a dry run)
#   --account A               AWS account id (default: `aws sts get-caller-identity`; 000000000000 in a dry run)
#   --tag T                   image tag (default: latest)
#   BASE_IMAGE                passed to docker build as --build-arg BASE_IMAGE (default python:3.12-slim)
#   DOCKER_BUILD_NETWORK=host build with --network host
set -euo pipefail

usage() {
  sed -n '4p' "$0" | sed 's/^#   /usage: /' >&2
  exit 2
}

die() {
  echo "error: $*" >&2
  exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dry_run="${DRY_RUN:-0}"
case "$dry_run" in 1 | true | yes) dry_run=1 ;; *) dry_run=0 ;; esac
region=""
account=""
tag="latest"
name=""

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --region) [ $# -ge 2 ] || usage; region="$2"; shift ;;
    --region=*) region="${1#*=}" ;;
    --account) [ $# -ge 2 ] || usage; account="$2"; shift ;;
    --account=*) account="${1#*=}" ;;
    --tag) [ $# -ge 2 ] || usage; tag="$2"; shift ;;
    --tag=*) tag="${1#*=}" ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) [ -z "$name" ] || usage; name="$1" ;;
  esac
  shift
done

[ -n "$name" ] || usage
[[ "$name" =~ ^([a-z0-9]+([._-][a-z0-9]+)*/)*[a-z0-9]+([._-][a-z0-9]+)*$ ]] \
  || die "invalid repository name '$name': use lower-case letters, digits and . _ - /"
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag '$tag'"

# Print a command, shell-quoted.
show() {
  local out="" arg
  for arg in "$@"; do out+="$(printf '%q' "$arg") "; done
  echo "${out% }"
}

# Run a command that changes something remote, or only print it in a dry run.
remote() {
  if [ "$dry_run" = 1 ]; then
    echo "dry-run: would run: $(show "$@")"
  else
    echo "+ $(show "$@")" >&2
    "$@"
  fi
}

if [ -z "$region" ]; then
  region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
fi
if [ -z "$region" ] && [ "$dry_run" = 0 ] && command -v aws >/dev/null 2>&1; then
  region="$(aws configure get region 2>/dev/null || true)"
fi
if [ -z "$region" ]; then
  [ "$dry_run" = 1 ] || die "no AWS region: pass --region or set AWS_REGION"
  region="us-east-1"
fi

if [ -z "$account" ]; then
  if [ "$dry_run" = 1 ]; then
    account="000000000000"
  else
    command -v aws >/dev/null 2>&1 || die "the aws CLI is not installed (or pass --account)"
    account="$(aws sts get-caller-identity --query Account --output text)" \
      || die "cannot find the AWS account: configure AWS credentials or pass --account"
  fi
fi
[[ "$account" =~ ^[0-9]{12}$ ]] || die "invalid AWS account id '$account' (12 digits)"

registry="${account}.dkr.ecr.${region}.amazonaws.com"
local_image="${name}:${tag}"
remote_image="${registry}/${name}:${tag}"

# --- build and tag (local only) --------------------------------------------
build_args=(build -t "$local_image")
if [ -n "${BASE_IMAGE:-}" ]; then build_args+=(--build-arg "BASE_IMAGE=${BASE_IMAGE}"); fi
if [ "${DOCKER_BUILD_NETWORK:-}" = host ]; then build_args+=(--network host); fi
build_args+=("$here")
echo "+ $(show docker "${build_args[@]}")" >&2
docker "${build_args[@]}" >&2
echo "+ $(show docker tag "$local_image" "$remote_image")" >&2
docker tag "$local_image" "$remote_image"

# --- contract-test gate ---------------------------------------------------------
run_contract_gate() {
  # contract-test gate: added by the gate issue
  :
}
run_contract_gate "$local_image"

# --- push to ECR ---------------------------------------------------------------
if [ "$dry_run" = 1 ]; then
  echo "dry-run: would run: $(show aws ecr describe-repositories --region "$region" --repository-names "$name") || $(show aws ecr create-repository --region "$region" --repository-name "$name")"
elif ! aws ecr describe-repositories --region "$region" --repository-names "$name" >/dev/null 2>&1; then
  remote aws ecr create-repository --region "$region" --repository-name "$name" >/dev/null
fi

if [ "$dry_run" = 1 ]; then
  echo "dry-run: would run: $(show aws ecr get-login-password --region "$region") | $(show docker login --username AWS --password-stdin "$registry")"
else
  echo "+ aws ecr get-login-password --region $region | docker login --username AWS --password-stdin $registry" >&2
  aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
fi

remote docker push "$remote_image"
echo "${remote_image}"
