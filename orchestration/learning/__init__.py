"""Agent E, the learner: what operators decide becomes candidate versions of the triage
classifier, the drafter's exemplars and the decider's thresholds, each scored by the
evaluation gate before it may be switched on. State changes are in services.learning."""
