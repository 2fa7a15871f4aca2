#!/usr/bin/env bash
# kafka-storage.sh of the Kafka release: runs kafka.tools.StorageTool.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
