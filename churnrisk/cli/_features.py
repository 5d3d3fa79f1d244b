"""Commands registered on the shared app (see churnrisk.cli._app)."""
