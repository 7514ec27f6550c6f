"""Windows Event Forwarding: dcsentry as the Windows Event Collector of source-initiated
subscriptions (docs/wef.md, ../shared/reference/wef-protocol.md).

soap.py reads and writes the WS-Management envelopes, sldc.py decodes compressed deliveries,
subscriptions.py builds what clients run, collector.py holds the conversation, server.py the
HTTP/1.1 connections and their security, intake.py starts it all from the `[wef]` settings,
identity.py matches an event's Computer to its authenticated sender, status.py reads the clients'
bookmarks and heartbeats for `dcsentry wef status` and the health checks; kerberos.py does the
Kerberos (SPNEGO) authentication and WinRM message encryption.
"""
