#!/usr/bin/env bash
# deploy/release.sh: put the working tree in front of the triggers.
#
#   deploy/release.sh --first   the first deployment to an account
#   deploy/release.sh           every release after it
#
# Every trigger invokes the alias below, never LATEST: `s deploy` changes
# LATEST, a published version freezes it, and moving the alias is the
# release, for the three functions in s.yaml at once (the operators'
# functions run the code the triggers run). Run it from anywhere, with the
# access s.yaml names; rollback is in deploy/README.md.
set -euo pipefail
alias=live # vars.alias in s.yaml (deploy_test.go checks they agree)
cd "$(dirname "$0")/.."

# A version's description says what it holds: `s version list` shows it
# when you look for the version to roll back to.
description="$(git rev-parse --short HEAD)"
git diff --quiet HEAD -- || description="$description+changes"
description="$description $(date -u +%Y-%m-%dT%H:%MZ)"

case "${1:-}" in
--first)
  # The functions alone: the triggers and the asynchronous settings name
  # the alias, and FC refuses them before it exists.
  s deploy --function -y
  s version publish --description "$description"
  s alias publish --alias-name "$alias" --version-id latest
  # Now the triggers, the alias's asynchronous settings (retries,
  # onFailure) and each function's reserved concurrency.
  s deploy -y
  ;;
"")
  # Where the alias points before: the versions to roll back to.
  s alias list --table
  # LATEST's code and configuration; the triggers, the alias's asynchronous
  # settings and the reserved concurrency take effect at once (none of
  # them belongs to a version).
  s deploy -y
  s version publish --description "$description"
  s alias publish --alias-name "$alias" --version-id latest
  ;;
*)
  echo "usage: deploy/release.sh [--first]" >&2
  exit 2
  ;;
esac
s alias list --table
