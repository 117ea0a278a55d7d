"""The typed messages actors exchange: frozen dataclasses, one module per topic."""
