"""The HTTPS API server: routing from the resource table, REST verbs, watch, discovery."""
