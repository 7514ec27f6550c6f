"""`dcsentry serve`: the long-running sensor (listeners, spool, processor, health, web)."""
