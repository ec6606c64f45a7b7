#!/usr/bin/env bash
# make prove-debian13: proves that `make demo` (scripts/setup.sh first, then the demo) works on
# Debian 13 (trixie: docker.io 26 with its CLI in a package of its own, compose v2 in Debian's
# docker-compose, cgroup v2, Python 3.13 as python3). A proof run on demand, not part of `make test`.
#
# It boots a trixie systemd machine container the way tests/support/machine.py boots its Debian 12
# ones (see /work/shared/testing.md, "A real host boot"), copies into it what a newcomer has (a clean
# checkout, terraform on the PATH, the machine kind's provider mirror) and runs `make demo` there, as
# root, as on this machine kind. The checkout is `git archive` of the tracked files as they are now
# (uncommitted changes included, nothing untracked: no .venv, no caches).
#
# The machine (run as root; needs docker, mmdebstrap, iproute2, i.e. `make setup` on this machine):
# - rootfs: mmdebstrap --variant=minbase trixie with systemd, dbus, python3, make (nothing
#   setup.sh installs itself), imported as damso-test/debian13:<recipe hash> and kept, with its
#   tarball, under the test cache (~/.cache/damso-tests/debian13); trixie's .debs are kept there too;
# - cgroup v2: it sees only the cgroup2 hierarchy (this Debian 12 machine's /sys/fs/cgroup/unified
#   when the host is hybrid, /sys/fs/cgroup when it is cgroup v2 only), so trixie's systemd 257
#   runs in unified mode (it refuses cgroup v1) and its docker.io uses cgroup v2 with the systemd driver;
# - its engine (started by systemd when setup.sh installs docker.io, then reused by the demo's
#   Dockerd) is configured before boot for running in a container on the host's network:
#   /etc/docker/daemon.json with vfs, no iptables, no masquerading and a bridge of its own, made
#   here and deleted at the end (with "bridge" unset it would take, or with "none" delete, this
#   machine's docker0); and DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1, because docker 26 writes each
#   container's disable_ipv6 through /proc/sys, which is read-only in a container.
# At the end, and on failure, it removes exactly what it made: the machine's inner containers and
# networks (and their br-* links), the machine by id, its bridge, its leftover cgroup folders, its
# temporary folder. Set PROVE_KEEP=1 to leave the machine running (the script prints how to remove it).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "prove-debian13: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it makes a bridge and boots a machine container)"
for tool in docker mmdebstrap ip git; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'make setup' first"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers at ${DOCKER_HOST:-/var/run/docker.sock}"

cache="${DAMSO_TEST_CACHE:-$HOME/.cache/damso-tests}/debian13"
mkdir -p "$cache/apt-archives"

# One proof at a time on this machine: they would share the apt cache folder.
exec 9>"$cache/run.lock"
flock -n 9 || { say "another prove-debian13 is running; waiting for it"; flock 9; }

# --- the image, built once per recipe --------------------------------------------------------------
suite=trixie
packages=systemd,systemd-sysv,dbus,ca-certificates,python3,make
recipe=$(printf '%s\n' "$suite" "$packages" "minbase" | sha256sum | cut -c1-12)
image="damso-test/debian13:$recipe"
tarball="$cache/rootfs-$recipe.tar"
if ! docker image inspect "$image" >/dev/null 2>&1; then
  if [ ! -s "$tarball" ]; then
    say "building the $suite rootfs with mmdebstrap (about 2 minutes)"
    rm -rf "$cache"/rootfs-*.tar  # an earlier recipe's, or an unfinished one
    mmdebstrap --variant=minbase --quiet --include="$packages" "$suite" "$cache/rootfs-$recipe.part.tar"
    mv "$cache/rootfs-$recipe.part.tar" "$tarball"
  fi
  say "importing $tarball as $image"
  docker import "$tarball" "$image" >/dev/null
fi

# --- what the machine gets -------------------------------------------------------------------------
token=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
name="damso-debian13-$token"
bridge="dm13$token"  # at most 15 characters, a Linux link name's limit
tmp=$(mktemp -d "${TMPDIR:-/tmp}/damso-debian13-$token.XXXXXX")
cid=""
made_bridge=0

if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  cgroup_args=(--cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw)
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
  cgroup_args=(-v /sys/fs/cgroup/unified:/sys/fs/cgroup:rw)
else
  die "this machine mounts no cgroup2 hierarchy; Debian 13's systemd does not run on cgroup v1"
fi

mirror_file=$(find / -xdev -type f -name 'terraform-provider-aws_*' 2>/dev/null | head -n 1 || true)
[ -n "$mirror_file" ] || die "no Terraform provider mirror on this machine (terraform-provider-aws_*)"
mirror=${mirror_file%%/registry.terraform.io/*}
terraform_bin=$(command -v terraform) || die "terraform is not on the PATH"

# shellcheck disable=SC2317  # run by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$cid" ] && [ -n "${PROVE_KEEP:-}" ] && [ "$rc" -eq 0 ]; then
    say "kept: machine $cid, bridge $bridge; remove them with: docker rm -f $cid && ip link del $bridge"
    rm -rf "$tmp"
    exit "$rc"
  fi
  if [ -n "$cid" ]; then
    local networks="" n link
    if [ "$(docker inspect -f '{{.State.Running}}' "$cid" 2>/dev/null)" = true ]; then
      # The inner engine removes its containers and its networks' bridges (they live in this
      # machine's network namespace); their ids name any br-* link left behind.
      networks=$(docker exec "$cid" sh -c 'command -v docker >/dev/null || exit 0
        docker network ls -q --no-trunc --filter driver=bridge
        docker ps -aq | xargs -r docker rm -f >/dev/null; docker network prune -f >/dev/null' 2>/dev/null || true)
      docker stop -t 60 "$cid" >/dev/null 2>&1 || true  # SIGRTMIN+3: systemd stops its units
    fi
    docker rm -f -v "$cid" >/dev/null 2>&1 || true
    for n in $networks; do
      link="br-${n:0:12}"
      if [ "${#n}" -eq 64 ] && [ -e "/sys/class/net/$link" ]; then ip link del "$link" || true; fi
    done
    # cgroup folders under the machine's own (what its systemd made), deepest first.
    local folder
    for folder in /sys/fs/cgroup/unified/docker/"$cid" /sys/fs/cgroup/docker/"$cid" /sys/fs/cgroup/system.slice/docker-"$cid".scope; do
      if [ -d "$folder" ]; then find "$folder" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
    done
  fi
  if [ "$made_bridge" = 1 ] && [ -e "/sys/class/net/$bridge" ]; then ip link del "$bridge" || true; fi
  rm -rf "$tmp"
  if [ "$rc" -eq 0 ]; then say "passed; removed the machine and its bridge"; else say "FAILED (exit $rc); removed the machine and its bridge"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip link add "$bridge" type bridge
made_bridge=1

# Files the machine has before it boots: its engine's configuration, the checkout, terraform, the mirror.
mkdir -p "$tmp/etc/docker" "$tmp/etc/systemd/system/docker.service.d" "$tmp/usr/local/bin" "$tmp/root"
printf '{"storage-driver": "vfs", "iptables": false, "ip-masq": false, "bridge": "%s"}\n' "$bridge" >"$tmp/etc/docker/daemon.json"
printf '[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n' >"$tmp/etc/systemd/system/docker.service.d/machine-container.conf"
cp "$terraform_bin" "$tmp/usr/local/bin/terraform"
# This machine kind reaches PyPI through a TLS proxy whose CA its trust store holds (and its
# environment names the bundle, SSL_CERT_FILE etc.): the Debian 13 machine of the kind trusts it too.
mkdir -p "$tmp/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$tmp/usr/local/share/ca-certificates/this-machine-kind.crt"
stash=$(git stash create)  # the tracked files as they are now, without touching the work tree
git archive --format=tar --prefix=damso/ "${stash:-HEAD}" | tar -C "$tmp/root" -x
mkdir -p "$tmp/$(dirname "$mirror")"
cp -a "$mirror" "$tmp/$mirror"

cid=$(docker create --name "$name" --label damso-prove-debian13="$token" \
  --network host --cap-add ALL --cap-drop SYS_RESOURCE \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
  "${cgroup_args[@]}" --tmpfs /run --tmpfs /run/lock -e container=docker \
  -v "$cache/apt-archives:/var/cache/apt/archives" \
  --stop-signal SIGRTMIN+3 "$image" /lib/systemd/systemd)
tar -C "$tmp" -c . | docker cp - "$cid:/"
rm -rf "${tmp:?}"/*
say "booting machine $name (${cid:0:12}), bridge $bridge"
docker start "$cid" >/dev/null
state=""
for _ in $(seq 120); do  # until systemd has started its units (its bus comes up first)
  state=$(docker exec "$cid" systemctl is-system-running 2>&1 || true)
  case "$state" in running|degraded|maintenance|stopping|offline) break ;; esac
  sleep 1
done
say "systemd: $state"
case "$state" in running|degraded) ;; *) docker logs "$cid" 2>&1 | tail -n 30 >&2; die "the machine did not boot";; esac

docker exec "$cid" update-ca-certificates >/dev/null
tls_env=()
for var in SSL_CERT_FILE SSL_CERT_DIR REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE GIT_SSL_CAINFO; do
  if [ -n "${!var:-}" ]; then tls_env+=(-e "$var=${!var}"); fi
done

# The mirror where the host has it: damso looks in /opt/tf-plugins, ~/.terraform.d/plugins and
# /usr/share/terraform/plugins; anywhere else a user names it with DAMSO_TF_MIRROR.
mirror_env=()
case "$mirror" in
  /opt/tf-plugins|/root/.terraform.d/plugins|/usr/share/terraform/plugins) ;;
  *) mirror_env=(-e "DAMSO_TF_MIRROR=$mirror") ;;
esac

say "running 'make demo' in /root/damso on $(docker exec "$cid" sh -c '. /etc/os-release; echo "$PRETTY_NAME"')"
start=$(date +%s)
set +e
docker exec -w /root/damso -e TERM=dumb "${tls_env[@]}" "${mirror_env[@]}" "$cid" make demo 2>&1 | tee "$tmp/make-demo.log"
rc=${PIPESTATUS[0]}
set -e
seconds=$(($(date +%s) - start))
say "'make demo' exited $rc after $((seconds / 60)) min $((seconds % 60)) s"
docker exec "$cid" sh -c 'echo "  debian $(cat /etc/debian_version); $(python3 --version); $(docker --version)"
  echo "  $(docker compose version) (docker compose), $(docker-compose version) (docker-compose)"
  echo "  /sys/fs/cgroup: $(stat -fc %T /sys/fs/cgroup); engine: $(docker info -f "cgroup v{{.CgroupVersion}}, {{.CgroupDriver}} driver, {{.Driver}}")"' >&2 || true
exit "$rc"
