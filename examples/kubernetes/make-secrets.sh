#!/bin/sh
# Makes mtask's CURVE keys for examples/kubernetes with mtask-keygen and writes them as Secret
# manifests to OUT (default: mtask-secrets.yaml beside this script, git-ignored), mode 0600; the
# keys themselves exist only in a private temporary folder while this runs. Apply OUT with
# `kubectl apply -f OUT`; never commit it.
#
#   make-secrets.sh [OUT]        MTASK_KEYGEN=path/to/mtask-keygen to use one not on PATH
#
# The keys are README's "Across machines" set: one pair for the ventilator, one for the sink, one
# shared by every worker pod (they are one client, "worker", in the logs as worker@POD:PID).
# Secrets, each mounted only where the manifests need it:
#   mtask-ventilator-key   vent.key_secret     the ventilator container only
#   mtask-sink-key         sink.key_secret     the sink container only
#   mtask-worker-key       worker.key_secret   the worker pods only
#   mtask-public-keys      vent.key sink.key   every container (the servers' keys they pin)
#   mtask-allowed-workers  worker.key          the ventilator's and the sink's --allow folder
set -eu
out=${1:-$(dirname "$0")/mtask-secrets.yaml}
keygen=${MTASK_KEYGEN:-mtask-keygen}
command -v "$keygen" >/dev/null 2>&1 || {
  echo "make-secrets.sh: '$keygen' not found: put mtask-keygen on PATH or set MTASK_KEYGEN" >&2
  exit 1
}
if [ -e "$out" ]; then
  echo "make-secrets.sh: '$out' exists: new keys would lock out what runs with the old ones; remove it first" >&2
  exit 1
fi
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
for name in vent sink worker; do
  "$keygen" "$tmp/$name" >/dev/null 2>"$tmp/keygen.log" || { cat "$tmp/keygen.log" >&2; exit 1; }
done

# secret NAME FILE...: one Secret whose keys are the files' names.
secret() {
  name=$1
  shift
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n' "$name"
  printf '  labels:\n    app.kubernetes.io/name: mtask\ntype: Opaque\ndata:\n'
  for f in "$@"; do printf '  %s: %s\n' "$(basename "$f")" "$(base64 -w0 < "$f")"; done
}
{
  echo "# mtask's CURVE keys, made by make-secrets.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). SECRET: do not commit."
  secret mtask-ventilator-key "$tmp/vent.key_secret"
  secret mtask-sink-key "$tmp/sink.key_secret"
  secret mtask-worker-key "$tmp/worker.key_secret"
  secret mtask-public-keys "$tmp/vent.key" "$tmp/sink.key"
  secret mtask-allowed-workers "$tmp/worker.key"
} > "$tmp/secrets.yaml"
mv "$tmp/secrets.yaml" "$out"
echo "make-secrets.sh: wrote 5 Secrets to '$out'; next: kubectl apply -f '$out'" >&2
