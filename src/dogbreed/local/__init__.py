"""The local cloud: moto plus real processes standing in for the AWS services the product uses."""
