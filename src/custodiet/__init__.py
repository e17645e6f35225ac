"""custodiet: improper-payment review on pseudonymized data, every access on a verifiable ledger."""

__version__ = "0.1.0"
