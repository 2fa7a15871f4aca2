"""The local LearnFlow stack: real PostgreSQL, Apache Kafka, Dapr placement/scheduler, and
each app with its own daprd. Used by `make run` and by the pytest fixtures."""
