"""One module per ``loonbrug`` command group; see :mod:`gateway.cli`."""
