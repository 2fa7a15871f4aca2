# LearnFlow phase 3. `make run` and `make test` set up a fresh machine first (cached after).
SHELL := /bin/bash
PHASE := phase-3-backend-services
export UV_PYTHON_DOWNLOADS := never
UV = $(shell bash $(PHASE)/scripts/ensure-uv.sh)

.PHONY: setup cluster-setup run test unit integration cluster cluster-test lint demo token bench soak evals evals-author recordings replay-dead-letters clean-runs

setup:
	@bash $(PHASE)/scripts/bootstrap.sh

run: setup  ## the two services with their sidecars on the local stack, until Ctrl-C
	@$(UV) run --frozen learnflow-stack up

cluster-setup: setup  ## binaries and images of the sandbox Kubernetes (first run ~20 min, then cached)
	@bash $(PHASE)/deploy/cluster/install-host-packages.sh
	@bash $(PHASE)/deploy/cluster/build-binaries.sh >/dev/null
	@bash $(PHASE)/deploy/cluster/build-images.sh >/dev/null

test: setup lint cluster-setup  ## every test: unit, evals, deploy checks, local stack, sandbox cluster
	@$(UV) run --frozen pytest

unit: setup
	@$(UV) run --frozen pytest -m "not integration and not cluster"

integration: setup
	@$(UV) run --frozen pytest -m integration

cluster: cluster-setup  ## the deploy on a sandbox Kubernetes built here, until Ctrl-C
	@bash $(PHASE)/deploy/cluster/sandbox-up.sh

cluster-test: cluster-setup  ## only the sandbox cluster end-to-end test
	@$(UV) run --frozen pytest -m cluster

lint:
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@# Test folders each have a conftest.py, so mypy checks them one folder at a time.
	@for tests in $(PHASE)/deploy/scripts $(PHASE)/tests/* $(PHASE)/*/tests; do \
	  $(UV) run --frozen mypy $$tests || exit 1; done
	@$(UV) run --frozen mypy $(PHASE)/*/src .claude/skills/fastapi-dapr-agent/scripts

demo:  ## walk the whole loop against the stack `make run` started
	@$(UV) run --frozen learnflow-stack demo

token:  ## a bearer token for LEARNER (default ada) from the running stack's dev key
	@$(UV) run --frozen learnflow-stack token --learner $(or $(LEARNER),ada)

replay-dead-letters:  ## copy dead-lettered lesson events back onto lesson-generated (running stack)
	@$(UV) run --frozen learnflow-stack replay-dead-letters

bench: setup  ## start a stack, measure, print figures; SCORED_HISTORY=3 scores the long history's lessons first
	@$(UV) run --frozen learnflow-stack bench $(if $(SCORED_HISTORY),--scored-history $(SCORED_HISTORY))

soak: setup  ## a stack under a steady load for 5 minutes (SOAK_SECONDS=...), failing on errors or memory growth
	@$(UV) run --frozen learnflow-stack soak $(if $(SOAK_SECONDS),--seconds $(SOAK_SECONDS))

evals:  ## score every eval case and gate; LIVE=1 records from the live model first (OPENAI_API_KEY), CASES=a,b picks cases
	@$(UV) run --frozen learnflow-evals run $(if $(LIVE),--live) $(if $(CASES),--cases $(CASES))

evals-author:  ## after changing a prompt, a case or an authored answer: rewrite authored transcripts and replay recordings
	@$(UV) run --frozen learnflow-evals author

recordings:  ## the requests the replay mode (no API key) has a recorded answer for
	@$(UV) run --frozen learnflow-stack recordings --learner $(or $(LEARNER),ada)

clean-runs:
	rm -rf /tmp/learnflow-runs
