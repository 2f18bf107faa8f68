-- prosody-migrator's configuration for TestMigrateProsody: the internal
-- storage of the test's Prosody in, XEP-0227 files out (the xep0227
-- driver writes them to Prosody's data path, which the test bind-mounts).
input {
	type = "internal";
	path = "{{DATA}}";
	hosts = {
		["{{DOMAIN}}"] = { "accounts", "roster", "vcard", "private", "pep-pubsub", "archive-archive" };
	};
}
output {
	type = "xep0227";
	path = "{{OUT}}";
}
