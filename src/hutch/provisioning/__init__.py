"""Provisioning that follows payment: what a plan includes, provisioned while its subscription lives."""
