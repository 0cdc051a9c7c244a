"""Helpers shared by the test suites: one copy of each (waiting, images, processes and ports, the
network guard, AWS test credentials, the template walkers, the shared local cloud).

Test modules import from here, never from `tests.conftest` or from each other. Fixtures live in
`tests.support.fixtures`, which the root conftest loads as a plugin.
"""
