"""Where results go: JSON lines, CEF over syslog, the terminal, the database, the console."""
