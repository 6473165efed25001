#!/bin/sh
# Build a Python base image without any container registry: debootstrap a minimal Debian root
# filesystem from the mirror apt already uses, add python3 + venv + pip and the host's CA bundle,
# and `docker import` it. Then:
#
#   docker-compose build --build-arg BASE_IMAGE=marketing-ml-base:bookworm
#   (or: BASE_IMAGE=marketing-ml-base:bookworm docker-compose up --build -d)
#
# Needs root, debootstrap and a running Docker engine (apt-get install debootstrap docker.io).
# Debian bookworm's python3 is 3.11 (the project needs >= 3.11); its pip refuses system-wide
# installs (PEP 668), so the Dockerfile installs into a venv.
#
# Environment (all optional):
#   IMAGE    image to create             (default marketing-ml-base:bookworm)
#   SUITE    Debian release              (default bookworm)
#   MIRROR   Debian mirror URL           (default: the first debian mirror in apt's sources)
#   CA_BUNDLE CA certificates to trust   (default /etc/ssl/certs/ca-certificates.crt)
#   FORCE=1  rebuild even if IMAGE exists
set -eu

IMAGE=${IMAGE:-marketing-ml-base:bookworm}
SUITE=${SUITE:-bookworm}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
FORCE=${FORCE:-0}

die() { echo "offline_base_image: $*" >&2; exit 1; }
log() { echo "offline_base_image: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
command -v docker >/dev/null || die "docker not found: apt-get install -y docker.io"
docker info >/dev/null 2>&1 || die "no Docker engine answers (start it: dockerd > /tmp/dockerd.log 2>&1 &)"
[ -s "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE"

if [ "$FORCE" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists (FORCE=1 rebuilds it)"
    exit 0
fi

# The mirror apt uses: deb822 sources (bookworm's default) or the one-line format.
apt_mirror() {
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) print $i; break } }' "$f"
    done
}
MIRROR=${MIRROR:-$(apt_mirror | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

WORK=$(mktemp -d /tmp/offline-base.XXXXXX)
cleanup() {
    # debootstrap may leave /proc, /sys or a bound /dev mounted after a failure: never follow them.
    for m in $(awk -v root="$WORK/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ROOTFS=$WORK/rootfs

log "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip \
    "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
}

# Trust what the host trusts (a proxy's CA included), so pip inside verifies the package index.
mkdir -p "$ROOTFS/etc/ssl/certs"
cp "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

# Smaller image: no package caches, lists or docs (apt-get update restores the lists).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
: > "$ROOTFS/etc/resolv.conf"
: > "$ROOTFS/etc/hostname"

CERT=/etc/ssl/certs/ca-certificates.crt
log "docker import -> $IMAGE"
tar --numeric-owner -C "$ROOTFS" -cf - . | docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV SSL_CERT_FILE=$CERT" \
    --change "ENV REQUESTS_CA_BUNDLE=$CERT" \
    --change "ENV PIP_CERT=$CERT" \
    --change 'CMD ["python3"]' \
    --message "debootstrap $SUITE minbase + python3 from $MIRROR (scripts/offline_base_image.sh)" \
    - "$IMAGE" >/dev/null

docker run --rm "$IMAGE" python3 -c 'import ssl, sys, venv; print("python", sys.version.split()[0])' >&2 \
    || die "$IMAGE does not run python3"
log "done: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
