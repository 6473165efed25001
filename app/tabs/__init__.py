"""The dashboard's tabs, one module each (app.dashboard wires them)."""
