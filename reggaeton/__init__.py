"""Core package shared by training, service and monitoring.

Holds the feature schema, the whylogs wrapper, the model registry and the
prediction-log interface. It never imports an application package.
"""

MODEL_NAME = "reggaeton_clf"
"""Name of the model in the BentoML model store."""
