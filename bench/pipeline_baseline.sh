#!/usr/bin/env bash
# The gateway's work done by hand, the way an administrator would script it:
# for every upload, one after the other, decrypt and verify with gpg, validate
# with xmllint against the schema, split the records per municipality with awk,
# sign and encrypt each part with gpg, and write a signed receipt.
#
# Usage: pipeline_baseline.sh GNUPG_HOME GATEWAY_FPR SCHEMA UPLOADS OUT CODE=FPR...
#   GNUPG_HOME   the gateway's GnuPG home (holds every partner's public key)
#   GATEWAY_FPR  the gateway's key fingerprint (signs parts and receipts)
#   SCHEMA       schemas/wage-report-v1.xsd
#   UPLOADS      folder of uploads (signed and encrypted to the gateway)
#   OUT          folder for outbox/, receipts/ and a scratch folder
#   CODE=FPR     for every municipality: its code and encryption key
set -euo pipefail

home=$1 gateway=$2 schema=$3 uploads=$4 out=$5
shift 5
declare -A keys
for pair in "$@"; do
    keys[${pair%%=*}]=${pair#*=}
done

mkdir -p "$out/outbox" "$out/receipts" "$out/scratch"
scratch=$out/scratch
gpg_=(gpg --homedir "$home" --batch --no-tty --quiet --trust-model always)

for upload in "$uploads"/*; do
    name=$(basename "$upload")
    rm -f "$scratch"/*
    if ! "${gpg_[@]}" --status-file "$scratch/status" --output "$scratch/report.xml" \
            --decrypt "$upload" 2>/dev/null \
        || ! grep -q '^\[GNUPG:\] VALIDSIG' "$scratch/status" \
        || ! xmllint --noout --nonet --schema "$schema" "$scratch/report.xml" 2>/dev/null
    then
        echo "<Receipt><Outcome>rejected</Outcome><Upload>$name</Upload></Receipt>" \
            | "${gpg_[@]}" --local-user "$gateway" --armor --sign \
                --output "$out/receipts/$name.receipt.asc"
        continue
    fi
    message=$(xmllint --xpath "string(//*[local-name()='MessageId'])" "$scratch/report.xml")
    # One pass over the report writes every municipality's part.
    awk -v dir="$scratch" '
        /<Record>/ { buffer = ""; inside = 1 }
        inside { buffer = buffer $0 "\n" }
        /<MunicipalityCode>/ && inside {
            code = $0; sub(/.*<MunicipalityCode>/, "", code); sub(/<.*/, "", code)
        }
        /<\/Record>/ {
            file = dir "/" code ".xml"
            if (!(file in seen)) {
                seen[file] = 1
                print "<MunicipalityReport xmlns=\"urn:loonbrug:municipality-report:v1\">" > file
            }
            printf "%s", buffer > file
            inside = 0
        }
        END { for (file in seen) print "</MunicipalityReport>" > file }
    ' "$scratch/report.xml"
    accepted=""
    for part in "$scratch"/GM*.xml; do
        code=$(basename "$part" .xml)
        "${gpg_[@]}" --local-user "$gateway" --recipient "${keys[$code]}" \
            --sign --encrypt --output "$out/outbox/$message.$code.xml.gpg" "$part"
        accepted="$accepted<Municipality code=\"$code\"/>"
    done
    echo "<Receipt><Outcome>accepted</Outcome><Upload>$name</Upload>$accepted</Receipt>" \
        | "${gpg_[@]}" --local-user "$gateway" --armor --sign \
            --output "$out/receipts/$name.receipt.asc"
done
