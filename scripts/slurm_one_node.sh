#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the sweep's real Slurm test (tests/test_sweep.py):
# Debian's munge and slurm-wlm daemons, started as root with a configuration of their own under
# $ACTFN_SLURM_DIR (default /tmp/actfn-slurm).  Idempotent: daemons already running are kept.
#     bash scripts/slurm_one_node.sh && export SLURM_CONF=/tmp/actfn-slurm/slurm.conf
set -euo pipefail
dir=${ACTFN_SLURM_DIR:-/tmp/actfn-slurm}
for tool in munged slurmctld slurmd sinfo; do
  command -v "$tool" >/dev/null || { echo "slurm_one_node: $tool is missing (make slurm installs munge and slurm-wlm)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "slurm_one_node: the daemons need root"; exit 1; }
[ -f /etc/munge/munge.key ] || { echo "slurm_one_node: /etc/munge/munge.key is missing (reinstall munge)"; exit 1; }
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
mkdir -p "$dir/ctld" "$dir/d" "$dir/log" /run/munge
cat > "$dir/slurm.conf" <<EOF
ClusterName=actfn
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! munge -n >/dev/null 2>&1; then
  # munged refuses to start when its files belong to another user, as they do after a munged run as
  # root (a package's postinst, say); a dead daemon also leaves its socket and pid file behind.
  mkdir -p /var/log/munge /var/lib/munge
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
  chown -R munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged
fi
alive "$dir/slurmctld.pid" || /usr/sbin/slurmctld
alive "$dir/slurmd.pid" || /usr/sbin/slurmd
for _ in $(seq 90); do
  if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
    echo "slurm_one_node: partition debug on $host is up ($cpus CPUs); export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "slurm_one_node: the node did not come up; see $dir/log"; exit 1
