"""The benchmark behind `learnflow-stack bench` (main.py): its settings (config), the load
generator (load), the request bodies (requests), the scenarios (scenarios, floors, events,
drain), what each costs in sidecar calls and CPU (cost, usage), the arithmetic (stats) and the
printed table and JSON (report)."""
