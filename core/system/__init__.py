"""The machine shipdeck runs on: the real implementations of the ports that are no integration
(no adapter to choose), namely launching the detached runner and telling processes apart.
Context uses them by default; unit tests swap in the fakes of tests/fakes.

Nothing here imports core.services: the services (and Context) import this.
"""
