#!/bin/sh
# execnet-make-keys: make the CURVE key pairs of a broker deployment and its authorized_keys file.
#
#   make-keys.sh DIR [NAME ...]
#
# For each NAME (default: broker agent client) that has no key pair in DIR yet, runs
#   execnet-broker keygen --secret DIR/NAME.key --public DIR/NAME.pub
# (the secret key file gets mode 0600). Then writes
# DIR/authorized_keys anew from every DIR/*.pub: one key per line with its role and the NAME as
# its comment (`ROLE KEY NAME`). The role comes from the name: `broker` is `status` (health checks),
# a name starting with `agent` is `agent`, a name starting with `status` is `status`, any other
# name is `client`.
# Existing key pairs are never replaced, so running it again is safe, and
# `make-keys.sh DIR client2` adds a second client and authorizes it (then send the broker SIGHUP,
# or restart it under systemd, whose LoadCredential= copy is made at start).
#
# It also writes DIR/http-token (mode 0600) if missing: a random bearer token for the broker's
# HTTP port (EXECNET_BROKER_HTTP_TOKEN_FILE), which a non-loopback --http-address requires; it
# grants what a status key grants (the dashboard, /metrics).
#
# broker.pub is authorized too: the broker's own host or container runs
# `execnet-broker status` with the broker's key pair as its health check.
#
# The image installs this script as /usr/local/bin/execnet-make-keys. Outside the image, set
# EXECNET_BROKER_BIN to the execnet-broker to use (default: execnet-broker on PATH).
set -eu

usage() {
    echo "usage: $0 DIR [NAME ...]   (default names: broker agent client)" >&2
    exit 2
}
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
dir=$1
shift
[ $# -gt 0 ] || set -- broker agent client
broker_bin=${EXECNET_BROKER_BIN:-execnet-broker}

umask 077
mkdir -p "$dir"

for name in "$@"; do
    case "$name" in
        ''|*/*|.*|authorized_keys) echo "$0: bad key name '$name'" >&2; exit 2 ;;
    esac
    if [ -e "$dir/$name.key" ] || [ -e "$dir/$name.pub" ]; then
        if [ -s "$dir/$name.key" ] && [ -s "$dir/$name.pub" ]; then
            echo "keys: $dir/$name.key exists, kept"
            continue
        fi
        echo "$0: $dir/$name.key or $dir/$name.pub exists but the pair is incomplete; remove both" >&2
        exit 1
    fi
    "$broker_bin" keygen --secret "$dir/$name.key" --public "$dir/$name.pub"
    if [ ! -s "$dir/$name.key" ] || [ ! -s "$dir/$name.pub" ]; then
        echo "$0: $broker_bin keygen did not write $dir/$name.key and $dir/$name.pub" >&2
        exit 1
    fi
    echo "keys: wrote $dir/$name.key and $dir/$name.pub"
done

# The HTTP token: 48 hex digits from the kernel's random source, never replaced.
if [ ! -s "$dir/http-token" ]; then
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$dir/http-token.tmp"
    echo >>"$dir/http-token.tmp"
    chmod 0600 "$dir/http-token.tmp"
    mv -f "$dir/http-token.tmp" "$dir/http-token"
    echo "keys: wrote $dir/http-token"
fi

# authorized_keys: the key of each public key file, commented with its name. A key is a word of
# 40 Z85 characters; Z85 has '#' in its alphabet, so a key may start with '#' and is not told
# from a comment by that.
tmp="$dir/.authorized_keys.tmp"
{
    echo "# CURVE public keys allowed to connect to the broker; written by execnet-make-keys"
    for pub in "$dir"/*.pub; do
        [ -e "$pub" ] || continue
        key=$(awk 'length($1) == 40 { print $1; exit }' "$pub")
        if [ -z "$key" ]; then
            echo "$0: no key in $pub" >&2
            exit 1
        fi
        name=$(basename "$pub" .pub)
        case "$name" in
            broker|status*) role=status ;;
            agent*) role=agent ;;
            *) role=client ;;
        esac
        printf '%s %s %s\n' "$role" "$key" "$name"
    done
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/authorized_keys"
chmod 0644 "$dir"/*.pub
echo "keys: wrote $dir/authorized_keys ($(awk 'length($2) == 40' "$dir/authorized_keys" | wc -l) keys)"
