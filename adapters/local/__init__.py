"""The `local` target: blue/green app processes on loopback behind a file-driven TCP proxy.

Modules: processes (a supervisor for service processes, reused by other adapters), demo_app (the app
demos and tests deploy), front_proxy (the traffic switch), target (LocalTarget, the Target port).
Nothing is imported here, so `python -m shipdeck.adapters.local.demo_app` starts with the stdlib only.
"""
