"""Hypothesis settings for the unit tests: no wall-clock limits.

Generation speed and per-example deadlines depend on the machine's load (CI
shares two cores); a test fails on what it checks, never on how fast it ran."""

from hypothesis import HealthCheck, settings

settings.register_profile("quartier", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("quartier")
