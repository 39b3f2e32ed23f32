"""Offline scoring of a catalogue file (``python -m service.score``).

It lives inside ``service`` because it reuses the service's validation and predictor (DESIGN:
no other package imports ``service``). See :mod:`service.score.run` for the pipeline and
:mod:`service.score.shards` for how Kubernetes Indexed Job pods split one input.
"""
