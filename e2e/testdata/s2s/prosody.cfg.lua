-- A private Prosody for Ambrosia's federation tests; the test fills in
-- the {{...}} fields and runs it with its own hosts file.
daemonize = false
run_as_root = true
pidfile = "{{DIR}}/prosody.pid"
data_path = "{{DIR}}/data"
interfaces = { "{{IP}}" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
component_ports = { {{COMPONENT_PORTS}} }
component_interfaces = { "{{IP}}" }
http_ports = { }
https_ports = { }
log = { { levels = { min = "{{LOG_LEVEL}}" }, to = "file", filename = "{{DIR}}/prosody.log" } }
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "message", "iq", "posix", "smacks"{{MODULES}} }
modules_disabled = { "s2s_bidi" }
authentication = "{{AUTH}}"
storage = "internal"
c2s_require_encryption = {{C2S_ENCRYPTION}}
s2s_require_encryption = true
s2s_secure_auth = {{SECURE}}
unbound = { hoststxt = "/etc/hosts"; resolvconf = "{{DIR}}/resolv.conf" }
ssl = { certificate = "{{CERT}}"; key = "{{KEY}}"; cafile = "{{CA}}" }

VirtualHost "prosody.test"
{{HOST}}
-- Multi-user chat, for the federated rooms of TestMUCFederation.
Component "conference.prosody.test" "muc"
{{COMPONENTS}}
