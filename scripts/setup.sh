#!/usr/bin/env bash
# Installs the system packages hafc's tests and demo need, when they are missing.
# Idempotent and quick when everything is present. Debian/Ubuntu (apt) only.
set -euo pipefail

bash "$(dirname "$0")/setup-hadoop.sh"

# package -> a file whose presence proves it is installed
declare -A NEED=(
  [zookeeper]=/usr/share/java/zookeeper.jar
  [openjdk-17-jre-headless]=/usr/bin/java
  [iproute2]=/usr/sbin/ip
  [procps]=/usr/bin/pgrep
  # A hook stuck in uninterruptible sleep is made for real on a frozen loop-mounted ext4.
  [e2fsprogs]=/usr/sbin/mkfs.ext4
  [util-linux]=/usr/sbin/fsfreeze
  [mount]=/usr/bin/mount
  # systemd-notify (the agent's sd_notify path) and systemd-analyze (the unit's verify test).
  [systemd]=/usr/bin/systemd-analyze
  # The stand-in for systemd's notification socket (Node cannot bind a unix datagram socket).
  [python3]=/usr/bin/python3
  # The install test takes the patch off an installed copy to see the agent refuse it.
  [patch]=/usr/bin/patch
  # The metrics tests: promtool checks /metrics and the alert rules; a real server scrapes agents.
  [prometheus]=/usr/bin/promtool
  # The postgresql agent's tests: real servers, pg_rewind and pg_basebackup (run as the postgres
  # user the package creates; the server refuses to run as root).
  [postgresql-15]=/usr/lib/postgresql/15/bin/pg_rewind
  # The redis agent's tests and the Sentinel comparison: real servers, three real sentinels.
  [redis-server]=/usr/bin/redis-server
  [redis-sentinel]=/usr/bin/redis-sentinel
  [redis-tools]=/usr/bin/redis-cli
  # The Patroni comparison (npm run bench:patroni): real Patroni daemons with ZooKeeper as their
  # DCS, which Patroni reaches through kazoo.
  [patroni]=/usr/bin/patroni
  [python3-kazoo]=/usr/lib/python3/dist-packages/kazoo/__init__.py
  # The chaos suite: packet loss inside a node's network namespace (this kernel has no sch_netem,
  # so nftables drops instead of tc netem), the shell-hooked node's hooks, and the timeline test
  # that opens the HTML page in headless Chromium.
  [nftables]=/usr/sbin/nft
  [curl]=/usr/bin/curl
  [chromium]=/usr/bin/chromium
)

missing=()
for pkg in "${!NEED[@]}"; do
  [ -e "${NEED[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all system packages present"
  exit 0
fi

echo "setup: installing missing system packages: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: cannot install ${missing[*]}: apt-get not found (hafc's tests expect Debian packages; install them by hand)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=sudo
  else
    echo "setup: cannot install ${missing[*]}: not root and no password-less sudo; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql package would create and start a "main" cluster on port 5432; the tests
# start their own servers on random ports, so none is created.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
  $SUDO mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' | $SUDO tee /etc/postgresql-common/createcluster.d/hafc.conf >/dev/null
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's zookeeper, prometheus and redis packages would start system servers under systemd; we never
# use them (the tests start their own, on random ports).
echo "setup: installed ${missing[*]}"
