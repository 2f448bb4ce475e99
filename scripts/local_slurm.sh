#!/usr/bin/env bash
# A single-node Slurm cluster on 127.0.0.1 (Debian's slurmctld, slurmd and munge), for the Slurm
# test tier and for trying sweeps on a workstation. Every file lives in one state directory;
# nothing is written under /etc, and `stop` stops only the daemons that `start` started.
#
#   bash scripts/local_slurm.sh install   # Debian packages (root; idempotent; no services started)
#   bash scripts/local_slurm.sh start     # idempotent; prints the SLURM_CONF to export
#   bash scripts/local_slurm.sh status
#   bash scripts/local_slurm.sh stop
#
# TAU_EXP_SLURM_DIR chooses the state directory (default /tmp/tau_exp_slurm: unix socket paths
# must stay short). The cluster has one node, `localhost`, with 8 advertised CPUs so that several
# jobs run at once and 8 GPUs without devices (gres/gpu, for GPU-hour accounting), and two partitions: `debug` (default, no time limit) and `gaudi` (to try the
# slurm_gaudi launcher config, without accelerators; a 2-hour limit).
set -euo pipefail

state="${TAU_EXP_SLURM_DIR:-/tmp/tau_exp_slurm}"
conf="$state/slurm.conf"
packages=(slurmctld slurmd slurm-client munge)

installed() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
  && command -v sbatch >/dev/null && command -v munged >/dev/null; }

# A daemon is alive if its pid file names a process that is not a zombie (an unreaped daemon
# whose parent does not wait still answers kill -0).
alive() {
  local pid; pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] || return 1
  local stat; stat=$(ps -o stat= -p "$pid" 2>/dev/null) && [ -n "$stat" ] && [ "${stat:0:1}" != Z ]
}

install() {
  if installed; then echo "Slurm and munge are installed"; return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    # Not fatal: the Slurm tests then skip with this reason (and fail under CI=true).
    echo "local_slurm: cannot install Slurm here (needs root and apt-get); install" \
      "${packages[*]} yourself to run the Slurm tests" >&2
    return 0
  fi
  # Package scripts must not start system-wide services: a policy-rc.d that refuses them.
  local policy=/usr/sbin/policy-rc.d had_policy=0
  [ -e "$policy" ] && had_policy=1
  [ "$had_policy" = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
  trap '[ "$had_policy" = 1 ] || rm -f "$policy"' RETURN
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  echo "installed ${packages[*]}"
}

write_config() {
  mkdir -p "$state"/{munge,spool/ctld,spool/d,log,run}
  chmod 755 "$state/munge"  # munged refuses a socket directory others cannot enter
  [ -f "$state/munge/munge.key" ] || {
    dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$state/munge/munge.key"
  }
  cat >"$conf" <<EOF
ClusterName=tau-exp-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$state/spool/ctld
SlurmdSpoolDir=$state/spool/d
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MailProg=/bin/true
ReturnToService=2
MinJobAge=300
KillWait=5
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000 Gres=gpu:8 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gaudi Nodes=localhost MaxTime=120 State=UP
EOF
  # Eight "GPUs" that are links to /dev/null (Slurm drops a GPU without a device file): Slurm
  # counts and allocates them (--gres=gpu:N) like real ones, so GPU-hour accounting is tested
  # on this cluster; nothing runs on them.
  mkdir -p "$state/dev"
  local i; for i in 0 1 2 3 4 5 6 7; do ln -sfn /dev/null "$state/dev/gpu$i"; done
  echo "NodeName=localhost Name=gpu File=$state/dev/gpu[0-7]" >"$state/gres.conf"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "local_slurm: $what did not come up; see $state/log" >&2
      tail -n 5 "$state"/log/*.log >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

start() {
  installed || { echo "local_slurm: Slurm is not installed; run: bash $0 install" >&2; exit 1; }
  write_config
  export SLURM_CONF="$conf"
  if ! alive "$state/run/munged.pid"; then
    munged --socket="$state/munge/munge.socket" --key-file="$state/munge/munge.key" \
      --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" \
      --seed-file="$state/munge/munge.seed" --force
    wait_for 10 munged alive "$state/run/munged.pid"
  fi
  if alive "$state/run/slurmctld.pid"; then
    scontrol reconfigure >/dev/null  # running already: pick up the config written above
  else
    slurmctld -f "$conf"
  fi
  wait_for 30 slurmctld scontrol ping
  alive "$state/run/slurmd.pid" || slurmd -f "$conf" -N localhost
  # A node drained by an earlier config (its state is saved) comes back with this one.
  scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
  wait_for 30 "the node" sh -c "sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'"
  echo "Slurm is up; to use it: export SLURM_CONF=$conf"
}

stop() {
  local daemon
  for daemon in slurmd slurmctld munged; do
    if alive "$state/run/$daemon.pid"; then
      kill "$(cat "$state/run/$daemon.pid")"
      for _ in $(seq 50); do alive "$state/run/$daemon.pid" || break; sleep 0.1; done
    fi
    rm -f "$state/run/$daemon.pid"
  done
  echo "local Slurm stopped"
}

status() {
  local daemon up=0
  for daemon in munged slurmctld slurmd; do
    if alive "$state/run/$daemon.pid"; then echo "$daemon: running"; else echo "$daemon: stopped"; up=1; fi
  done
  [ "$up" = 0 ] && SLURM_CONF="$conf" sinfo
  return "$up"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: bash $0 install|start|status|stop" >&2; exit 2 ;;
esac
