#!/usr/bin/env bash
# Build the sample algorithm image, gate it on the SageMaker contract suite, and push it to Amazon ECR.
#
#   build_and_push.sh [--dry-run] [--region R] [--account A] [--tag T] [--contract-config F] [--skip-contract-tests] IMAGE_NAME
#
# Builds <IMAGE_NAME>:<tag> from this directory, tags it
# <account>.dkr.ecr.<region>.amazonaws.com/<IMAGE_NAME>:<tag>, runs the contract suite on the image
# (pytest --image; see docs/gate.md) and REFUSES TO PUSH when a check fails, then creates the ECR
# repository if it does not exist, logs docker in to ECR and pushes the image that was tested.
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
#   --contract-config F       the contract suite's config for your image (or CONTRACT_CONFIG; default: the
#                             sample algorithm's)
#   --skip-contract-tests     push without running the contract suite (prints a loud warning; for emergencies)
#   PYTHON                    the Python that runs the suite (default: the project's .venv, else python3)
#   CONTRACT_REPORT           where the JUnit report goes (default: ./contract-report.xml)
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
contract_config="${CONTRACT_CONFIG:-}"
skip_contract=0

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --region) [ $# -ge 2 ] || usage; region="$2"; shift ;;
    --region=*) region="${1#*=}" ;;
    --account) [ $# -ge 2 ] || usage; account="$2"; shift ;;
    --account=*) account="${1#*=}" ;;
    --tag) [ $# -ge 2 ] || usage; tag="$2"; shift ;;
    --tag=*) tag="${1#*=}" ;;
    --contract-config) [ $# -ge 2 ] || usage; contract_config="$2"; shift ;;
    --contract-config=*) contract_config="${1#*=}" ;;
    --skip-contract-tests) skip_contract=1 ;;
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
repo="$(cd "$here/.." && pwd)"

pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x "$repo/.venv/bin/python" ]; then echo "$repo/.venv/bin/python"
  elif command -v python3 >/dev/null 2>&1; then echo python3
  else echo python
  fi
}

# The names of the failed or errored tests in a JUnit report (no Python needed: it may be what failed).
failed_checks() {
  [ -s "$1" ] || return 0
  tr '<' '\n' <"$1" | awk '
    /^testcase / { name = ""; if (match($0, / name="[^"]*"/)) name = substr($0, RSTART + 7, RLENGTH - 8) }
    /^(failure|error)[ >\/]/ { if (name != "" && !(name in seen)) { seen[name] = 1; n++; if (n <= 8) out = out (out ? ", " : "") name } }
    END { if (n > 8) out = out " and " (n - 8) " more"; print out }'
}

run_contract_gate() {
  local image="$1"
  if [ "$skip_contract" = 1 ]; then
    {
      echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
      echo "!! WARNING: --skip-contract-tests: $image is pushed WITHOUT the SageMaker"
      echo "!! contract suite. Nothing checked that SageMaker can train, serve or process with it."
      echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    } >&2
    return 0
  fi
  local py report rc=0 failed
  py="$(pick_python)"
  report="${CONTRACT_REPORT:-$PWD/contract-report.xml}"
  case "$report" in /*) ;; *) report="$PWD/$report" ;; esac
  rm -f "$report"
  local args=(-m pytest --pyargs contract_tests --image "$image" -p no:cacheprovider -q --contract-strict --junitxml "$report")
  if [ -n "$contract_config" ]; then
    case "$contract_config" in /*) ;; *) contract_config="$PWD/$contract_config" ;; esac
    args+=(--contract-config "$contract_config")
  fi
  echo "+ $(show "$py" "${args[@]}")" >&2
  # From the project root, so that an uninstalled checkout finds contract_tests and its plugin.
  (cd "$repo" && "$py" "${args[@]}") >&2 || rc=$?
  if [ "$rc" -ne 0 ]; then
    failed="$(failed_checks "$report")"
    echo "error: contract gate failed (pytest exit $rc): ${failed:-no check ran, see the output above}; report: $report; refusing to push $image" >&2
    exit 1
  fi
  echo "contract gate passed for $image (report: $report)" >&2
}
tested_id="$(docker image inspect --format '{{.Id}}' "$local_image")"
run_contract_gate "$local_image"
# Push exactly what was tested: refuse if the tag was moved to another image meanwhile.
pushed_id="$(docker image inspect --format '{{.Id}}' "$remote_image")"
[ "$pushed_id" = "$tested_id" ] \
  || die "$remote_image is now $pushed_id, not the tested $tested_id (rebuilt meanwhile?); run the script again"

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
