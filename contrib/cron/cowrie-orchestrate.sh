#!/bin/bash
# /etc/cron.daily/cowrie-orchestrate — the user guide's daily refresh script ("Integration with
# Workflows"), adapted: every sensor of sensors.toml is loaded first, then the refresh runs
# (--enrich-ips 5000, as the guide's --ips 5000; sessions and files from [enrichment]).
# Install: sudo install -m 0755 cowrie-orchestrate.sh /etc/cron.daily/cowrie-orchestrate
# (or call it from /etc/cron.d as the cowrie user: see docs/OPERATIONS.md).
set -u

CONFIG=${COWRIE_ORCHESTRATE_CONFIG:-/etc/cowrie-enrich/sensors.toml}
LOG=${COWRIE_ORCHESTRATE_LOG:-/var/log/cowrie-enrich/orchestrate.log}

# Without a terminal the progress is plain "[INFO] progress: …" lines, fit for the log.
cowrie-orchestrate --config "$CONFIG" --enrich-ips 5000 >> "$LOG" 2>&1
rc=$?
case $rc in
  0) ;;
  75) # The previous run still holds the lock: nothing was done; tomorrow's run continues.
      echo "$(date -u +%FT%TZ) cowrie-orchestrate: previous run still running; skipped" >> "$LOG"
      rc=0 ;;
  *)  # cron mails this line: 1 = a sensor or the refresh failed, 2 = config/database, 130 = stopped.
      echo "cowrie-orchestrate failed with exit code $rc; see $LOG and the status folder's orchestrate.json" >&2 ;;
esac
exit $rc

# The guide's original, one refresh without loading, works as it was:
#   cowrie-enrich refresh --sessions 0 --files 0 --ips 5000 \
#     --db "postgresql://cowrie@localhost:5432/cowrie" --commit-interval 100 >> /var/log/cowrie-enrich.log 2>&1
