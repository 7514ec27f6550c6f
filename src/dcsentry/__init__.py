"""dcsentry: an open identity-threat sensor for Active Directory."""

__version__ = "0.1.0"
