-- A private Prosody that TestMigrateProsody fills with users and their
-- data, then migrates to Ambrosia; the test fills in the {{...}} fields.
daemonize = false
run_as_root = true
pidfile = "{{DIR}}/prosody.pid"
data_path = "{{DIR}}/data"
interfaces = { "127.0.0.1" }
c2s_ports = { {{PORT}} }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
log = { { levels = { min = "info" }, to = "file", filename = "{{DIR}}/prosody.log" } }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "message", "iq", "posix", "vcard", "private", "offline", "pep", "mam" }
-- Debian's default: SCRAM-SHA-1 keys, no passwords.
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
ssl = { certificate = "{{CERT}}"; key = "{{KEY}}" }

VirtualHost "{{DOMAIN}}"
Component "conference.{{DOMAIN}}" "muc"
