"""Integrations with frameworks and process models.

Each submodule is imported only when asked for: ``import tracing`` never imports a
framework. ``tracing.integrations.fastapi`` needs the ``fastapi`` extra;
``tracing.integrations.worker`` needs nothing beyond the SDK.
"""
