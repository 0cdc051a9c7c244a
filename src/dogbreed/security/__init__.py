"""Security checks run by `make security`: the dependency audit (`dependency_audit`)."""
