"""The naive baseline: the original Flask app's per-request work, for the benchmark only."""
