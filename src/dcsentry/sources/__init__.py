"""Where events come from: files and stdin now; syslog and WEF listeners in the service."""
