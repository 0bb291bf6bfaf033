#!/bin/sh
# Makes the example mesh's CA and one certificate per node with receptor's own commands
# (the same as Go receptor's). Each certificate names its node ID, which the peers check.
#   sh examples/mesh-tls/make-certs.sh [DIR [HUB_HOSTNAME]]   (default /etc/receptor/tls, hop.example.org)
# $RECEPTOR is the receptor binary (default: receptor on $PATH).
set -eu
dir=${1:-/etc/receptor/tls}
hub=${2:-hop.example.org}
receptor=${RECEPTOR:-receptor}
mkdir -p "$dir"
"$receptor" --cert-init commonname="Receptor mesh CA" bits=2048 \
  outcert="$dir/ca.crt" outkey="$dir/ca.key"
for node in controller hop execution; do
  dns=""
  [ "$node" = hop ] && dns="dnsname=$hub"
  # $dns is empty or one word.
  # shellcheck disable=SC2086
  "$receptor" --cert-makereq commonname="$node" bits=2048 nodeid="$node" $dns \
    outreq="$dir/$node.csr" outkey="$dir/$node.key"
  "$receptor" --cert-signreq req="$dir/$node.csr" cacert="$dir/ca.crt" cakey="$dir/ca.key" \
    outcert="$dir/$node.crt" verify=yes
done
