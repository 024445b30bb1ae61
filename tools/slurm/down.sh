#!/usr/bin/env bash
# Stop the daemons tools/slurm/up.sh started, by their PID files.
for f in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
  [ -s "$f" ] || continue
  pid=$(cat "$f"); kill "$pid" 2>/dev/null && echo "stopped $(basename "$f" .pid) ($pid)"
done
exit 0
