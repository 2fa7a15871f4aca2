#!/usr/bin/env bash
# kafka-metadata-quorum.sh of the Kafka release: runs org.apache.kafka.tools.MetadataQuorumCommand.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.MetadataQuorumCommand "$@"
