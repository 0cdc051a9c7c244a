"""CLI command groups. Each module exposes `register(subparsers)` and sets `handler` defaults."""
