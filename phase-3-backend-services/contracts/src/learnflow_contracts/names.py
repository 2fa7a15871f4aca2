"""Names both services, the local stack and the cluster manifests agree on."""

COURSE_AGENT_APP_ID = "course-agent"
USER_PROGRESS_APP_ID = "user-progress"

STATESTORE = "statestore"
PUBSUB = "pubsub"
DAPR_CONFIGURATION = "learnflow-config"

LESSON_GENERATED_TOPIC = "lesson-generated"
LESSON_GENERATED_DEADLETTER_TOPIC = "lesson-generated-deadletter"
PROGRESS_UPDATED_TOPIC = "progress-updated"
