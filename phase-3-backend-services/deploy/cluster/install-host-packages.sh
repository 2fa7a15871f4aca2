#!/usr/bin/env bash
# Installs, once, the Debian packages the sandbox cluster and its image builds need:
# containerd, runc and the CNI plugins (the node), buildah and debootstrap (the images),
# iptables and conntrack (kube-proxy), util-linux (unshare, nsenter, setpriv), curl, and
# openssl (the deploy's development signing key).
source "$(dirname "$0")/../../scripts/lib.sh"

PACKAGES=(containerd runc containernetworking-plugins buildah debootstrap iptables conntrack
  util-linux curl openssl)

missing=()
for tool in containerd runc buildah debootstrap iptables conntrack nsenter unshare setpriv curl \
  openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ -x /usr/lib/cni/bridge ]] || missing+=(cni-plugins)
((${#missing[@]} == 0)) && exit 0

need apt-get "install ${missing[*]}"
log "installing Debian packages for the sandbox cluster (first run only): ${missing[*]}"
apt_install "${PACKAGES[@]}"
