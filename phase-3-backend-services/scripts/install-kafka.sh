#!/usr/bin/env bash
# Resolves the pinned Apache Kafka broker and its runtime classpath from Maven Central, once.
# Prints the directory holding the jars (a `lib/*` classpath) on stdout.
source "$(dirname "$0")/lib.sh"

KAFKA_DIR="$LEARNFLOW_CACHE/kafka/$KAFKA_VERSION"
LIB_DIR="$KAFKA_DIR/lib"
if [[ -f "$KAFKA_DIR/.complete" ]]; then echo "$LIB_DIR"; exit 0; fi

need java "install kafka"
need mvn "install kafka"
log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies (first run only)"
# The SLF4J binding ships in Kafka's release tarball, not its POM, so the POM declares it.
maven_resolve "$KAFKA_DIR" kafka-broker-classpath "\
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>" \
  "resolve kafka jars"
ls "$LIB_DIR"/kafka_2.13-*.jar >/dev/null 2>&1 || die "step 'resolve kafka jars' produced no kafka_2.13 jar"
touch "$KAFKA_DIR/.complete"
log "kafka $KAFKA_VERSION: $(ls "$LIB_DIR" | wc -l) jars in $LIB_DIR"
echo "$LIB_DIR"
