#!/usr/bin/env bash
# A non-Python intake client: publish canonical intake events (JSON Lines, the contract
# schemas/json/intake-appeal.v1.json) with kcat, the librdkafka command-line client.
#
#   bash tests/intake/nonpython/produce.sh BOOTSTRAP PREFIX FILE.jsonl
#   bash tests/intake/nonpython/produce.sh 127.0.0.1:9092 '' tests/data/intake/canonical.jsonl
#
# Each line goes to {PREFIX}appeals.intake.<its channel> (jq picks the channel and re-serialises
# the line, so the bytes on the wire are not Python's), keyed by its external id, with acks=all
# and the idempotent producer. Needs kcat and jq (Debian packages; tests/system-deps.sh).
# The samples of tests/data/intake/ are dated January 2025: a worker reading them needs
# APPEALS_INTAKE_MAX_AGE above their age (316224000, its maximum), or it dead-letters them.
#
# Debian bookworm's kcat links librdkafka 2.0.2, which cannot read the ApiVersions v3 response
# of the Tansu broker ("ApiVersionRequest failed: Local: Read underflow"). So kcat runs against
# the librdkafka inside the confluent-kafka wheel (self-contained, libc only), fetched once with
# pip and cached in var/nonpython/; the wheel renames its soname, hence a librdkafka.so.1
# link on LD_LIBRARY_PATH. APPEALS_RDKAFKA_DIR points at another directory holding a
# librdkafka.so.1 >= 2.12 instead; PYTHON is the interpreter whose pip fetches the wheel.
set -euo pipefail

CONFLUENT_KAFKA_VERSION=2.16.1   # ships librdkafka 2.16.0
MIN_RDKAFKA=2.12

if [ "$#" -ne 3 ]; then
  echo "usage: $0 BOOTSTRAP PREFIX FILE.jsonl" >&2
  exit 2
fi
bootstrap=$1 prefix=$2 file=$3
root="$(cd "$(dirname "$0")/../../.." && pwd)"

for tool in kcat jq; do
  command -v "$tool" >/dev/null || {
    echo "produce.sh: $tool is missing (bash tests/system-deps.sh as root installs it)" >&2
    exit 3
  }
done

libdir="${APPEALS_RDKAFKA_DIR:-$root/var/nonpython/librdkafka-ck$CONFLUENT_KAFKA_VERSION}"
if [ ! -e "$libdir/librdkafka.so.1" ]; then
  python="${PYTHON:-}"
  if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
  fi
  echo "produce.sh: fetching librdkafka from the confluent-kafka $CONFLUENT_KAFKA_VERSION wheel" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$work/wheel" "confluent-kafka==$CONFLUENT_KAFKA_VERSION" >&2
  "$python" -m zipfile -e "$work"/wheel/confluent_kafka-*.whl "$work/x"
  lib="$(find "$work/x/confluent_kafka.libs" -name 'librdkafka*.so*' | head -n1)"
  [ -n "$lib" ] || { echo "produce.sh: no librdkafka in the wheel" >&2; exit 4; }
  mkdir -p "$work/lib" "$(dirname "$libdir")"
  cp "$lib" "$work/lib/librdkafka.so.1"
  # Atomic publish: a concurrent run that got there first wins, ours is dropped.
  mv -T "$work/lib" "$libdir" 2>/dev/null || [ -e "$libdir/librdkafka.so.1" ]
fi
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

version="$(kcat -V 2>&1 | sed -n 's/.*librdkafka \([0-9][0-9.]*\).*/\1/p' | head -n1)"
if [ -z "$version" ] || [ "$(printf '%s\n%s\n' "$MIN_RDKAFKA" "$version" | sort -V | head -n1)" != "$MIN_RDKAFKA" ]; then
  echo "produce.sh: kcat runs with librdkafka '${version:-?}', $MIN_RDKAFKA or newer is needed" >&2
  exit 4
fi

total=0
for channel in $(jq -r '.channel' "$file" | sort -u); do
  topic="${prefix}appeals.intake.${channel}"
  n="$(jq -c --arg c "$channel" 'select(.channel == $c)' "$file" | wc -l)"
  jq -r --arg c "$channel" \
    'select(.channel == $c) | "\(.external_id | tostring | gsub("\t"; " "))\t\(tojson)"' "$file" \
    | kcat -P -b "$bootstrap" -t "$topic" -K '\t' \
        -X acks=all -X enable.idempotence=true -X message.timeout.ms=30000
  echo "produce.sh: $n event(s) -> $topic (kcat, librdkafka $version)" >&2
  total=$((total + n))
done
echo "produce.sh: sent $total event(s) from $file" >&2
