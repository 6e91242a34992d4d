"""Prefect flows wiring the pipeline steps, and the `storyline` CLI."""

from flows.runtime import configure_environment

configure_environment()
