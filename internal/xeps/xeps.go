// Package xeps is the catalogue of the specifications Ambrosia implements:
// for each, the disco#info features it makes the server announce and the
// tests that prove it works. The project's DOAP description is generated
// from it, and a test holds the catalogue, the running server's disco#info
// answers and the test suite to one another, so that nothing is announced
// that is not implemented and tested.
package xeps

// Spec is one implemented specification.
type Spec struct {
	// ID is "RFC 6120" or "XEP-0030".
	ID string
	// Name is the specification's title.
	Name string
	// Status is "complete" or "partial" (see Note).
	Status string
	// Note says what is left out, for a partial implementation, or how it
	// is configured.
	Note string
	// Server lists the disco#info features announced on the server's
	// domain; Account those announced on a user's bare JID; Upload those
	// of the HTTP upload service; MUC those of the conference service and
	// Room those a room may announce (some only in some configurations).
	Server, Account, Upload, MUC, Room []string
	// Bridge lists the features a bridge made with the SDK (bridge/)
	// announces on its domain or on the addresses of its network's
	// users, each when its network supports what it stands for.
	Bridge []string
	// Tests name the tests that prove the implementation, as "dir.TestName"
	// with dir the package directory relative to the module root.
	Tests []string
}

// Specs returns the catalogue, in the order of the DOAP file.
func Specs() []Spec {
	return []Spec{
		{ID: "RFC 6120", Name: "XMPP: Core", Status: "complete",
			Tests: []string{"e2e.TestLoginSCRAMSHA256", "e2e.TestBadInputNotWellFormed", "internal/c2s.TestLoginEveryMechanism", "internal/c2s.TestBadInputStreamErrors", "internal/c2s.TestResourceConflictReplacesOldSession",
				"e2e.TestS2SAmbrosiaPair", "e2e.TestS2SProsody", "e2e.TestS2SEjabberd", "e2e.TestS2SBadPeers", "internal/s2s.TestIncomingRejects"}},
		{ID: "RFC 6121", Name: "XMPP: Instant Messaging and Presence", Status: "complete",
			Tests: []string{"e2e.TestIMSubscriptionFlow", "e2e.TestProfanity", "internal/sm.TestSubscriptionFlowAndPresence", "internal/sm.TestMessageRouting"}},
		{ID: "RFC 7622", Name: "XMPP: Address Format", Status: "complete",
			Tests: []string{"internal/jid.TestParse", "internal/jid.TestParseInvalid"}},
		{ID: "RFC 8266", Name: "Preparation, Enforcement, and Comparison of Internationalized Strings Representing Nicknames", Status: "complete", Note: "room nicknames",
			Tests: []string{"internal/muc/room.TestNickPreparation", "internal/muc/room.TestJoinRefusals"}},
		{ID: "RFC 7677", Name: "SCRAM-SHA-256 and SCRAM-SHA-256-PLUS", Status: "complete",
			Tests: []string{"e2e.TestLoginSCRAMSHA256", "internal/c2s.TestLoginEveryMechanism"}},
		{ID: "RFC 7395", Name: "An XMPP Subprotocol for WebSocket", Status: "complete", Note: "on the web listener (http.addr) at /xmpp-websocket, the same sessions as TCP's",
			Tests: []string{"e2e.TestWebSocket", "e2e.TestBrowserConverse", "internal/c2s.TestWebSocketLoginAndMessage", "internal/c2s.TestWebSocketResume", "internal/c2s.TestWebSocketBadInput"}},
		{ID: "XEP-0004", Name: "Data Forms", Status: "complete", Note: "room configuration, registration and voice requests, archive queries, node configuration",
			Tests: []string{"internal/dataform.TestParseAndBuild", "internal/muc/room.TestConfigForm"}},
		{ID: "XEP-0030", Name: "Service Discovery", Status: "complete",
			Server: []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"}, Account: []string{"http://jabber.org/protocol/disco#info"},
			Upload: []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"},
			MUC:    []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"},
			Room:   []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"},
			Bridge: []string{"http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items"},
			Tests:  []string{"bridge.TestDiscoMatchesCatalogue", "e2e.TestPingAndDisco", "e2e.TestDiscoMatchesCatalogue"}},
		{ID: "XEP-0012", Name: "Last Activity", Status: "complete", Server: []string{"jabber:iq:last"},
			Tests: []string{"internal/sm.TestLastActivity", "internal/sm.TestEntityTimeAndUptime"}},
		{ID: "XEP-0045", Name: "Multi-User Chat", Status: "complete", Note: "conference.<domain> ([muc]); in process or as `ambrosia service muc` with rooms spread over instances",
			MUC: []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#stable_id"},
			Room: []string{"http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#stable_id", "http://jabber.org/protocol/muc#request", "jabber:iq:register",
				"muc_persistent", "muc_temporary", "muc_public", "muc_hidden", "muc_membersonly", "muc_open", "muc_moderated", "muc_unmoderated",
				"muc_passwordprotected", "muc_unsecured", "muc_nonanonymous", "muc_semianonymous"},
			Bridge: []string{"http://jabber.org/protocol/muc"},
			Tests: []string{"bridge.TestRooms", "e2e.TestBridgeIRCComponent", "internal/muc/room.TestCreateLockedAndJoinOrder", "internal/muc/room.TestJoinRefusals", "internal/muc/room.TestKickAndBan", "internal/muc/room.TestMembersOnly",
				"internal/muc/room.TestHistory", "internal/muc/room.TestMultiSession", "internal/muc/room.TestRegistration", "internal/muc.TestRoomOverSessions", "internal/muc.TestDirectoryPaging",
				"e2e.TestMUC", "e2e.TestMUCLimits", "e2e.TestMUCPersistence", "e2e.TestMUCProfanity", "e2e.TestMUCFederation", "e2e.TestSplitMUC"}},
		{ID: "XEP-0049", Name: "Private XML Storage", Status: "complete", Server: []string{"jabber:iq:private"},
			Tests: []string{"e2e.TestIMPrivateAndVCard", "internal/sm.TestPrivateXMLAndVCard"}},
		{ID: "XEP-0050", Name: "Ad-Hoc Commands", Status: "partial", Note: "on the gateways of bridges (bridge/) whose network logs users in in steps (a code, a QR code): the login and unregister commands; the server's only command is XEP-0401's invitation (announced when [invites] users = true)",
			Bridge: []string{"http://jabber.org/protocol/commands"},
			Tests:  []string{"internal/c2s.TestInvitationCommand", "bridge.TestLoginInStepsWithCode", "bridge.TestLoginInStepsQRCode", "bridge.TestLoginInStepsRefusals", "bridge.TestUnregisterCommand", "e2e.TestBridgeLoginInSteps"}},
		{ID: "XEP-0054", Name: "vcard-temp", Status: "complete", Server: []string{"vcard-temp"}, MUC: []string{"vcard-temp"},
			Bridge: []string{"vcard-temp"},
			Tests:  []string{"bridge.TestRichMessages", "e2e.TestIMPrivateAndVCard", "internal/sm.TestPrivateXMLAndVCard"}},
		{ID: "XEP-0059", Name: "Result Set Management", Status: "complete", Note: "for Message Archive Management queries and the directory of rooms",
			MUC:   []string{"http://jabber.org/protocol/rsm"},
			Tests: []string{"e2e.TestArchiveSurvivesRestart", "internal/sm.TestMAMPaging", "internal/muc.TestDirectoryPaging"}},
		{ID: "XEP-0066", Name: "Out of Band Data", Status: "partial", Note: "jabber:x:oob on the messages of bridges (attachments as links); no OOB file transfer",
			Bridge: []string{"jabber:x:oob"},
			Tests:  []string{"bridge.TestRichMessages"}},
		{ID: "XEP-0077", Name: "In-Band Registration", Status: "complete", Note: "account creation off by default (c2s.allow_registration); password change and account removal always",
			Server: []string{"jabber:iq:register"},
			Bridge: []string{"jabber:iq:register"},
			Tests:  []string{"bridge.TestTransportRegistration", "e2e.TestBridgeIRCTransport", "e2e.TestInBandRegistration", "internal/c2s.TestPasswordChangeAndRemoval", "internal/c2s.TestRegistrationOffByDefault"}},
		{ID: "XEP-0085", Name: "Chat State Notifications", Status: "complete", Note: "relayed by the server; bridges map them to and from their networks",
			Bridge: []string{"http://jabber.org/protocol/chatstates"},
			Tests:  []string{"bridge.TestPuppetOneToOne", "bridge.TestRichMessages", "internal/c2s.TestClientStateIndication"}},
		{ID: "XEP-0092", Name: "Software Version", Status: "complete", Server: []string{"jabber:iq:version"},
			Bridge: []string{"jabber:iq:version"},
			Tests:  []string{"e2e.TestPingAndDisco", "internal/sm.TestServerIQs"}},
		{ID: "XEP-0060", Name: "Publish-Subscribe", Status: "partial", Note: "the subset PEP needs: publish (with publish-options), retract, items, create, configure, delete, purge; access models presence, open, whitelist; no explicit subscriptions or affiliations",
			Account: []string{"http://jabber.org/protocol/pubsub#access-open", "http://jabber.org/protocol/pubsub#access-presence", "http://jabber.org/protocol/pubsub#access-whitelist", "http://jabber.org/protocol/pubsub#auto-create", "http://jabber.org/protocol/pubsub#config-node", "http://jabber.org/protocol/pubsub#create-nodes", "http://jabber.org/protocol/pubsub#delete-items", "http://jabber.org/protocol/pubsub#delete-nodes", "http://jabber.org/protocol/pubsub#filtered-notifications", "http://jabber.org/protocol/pubsub#last-published", "http://jabber.org/protocol/pubsub#persistent-items", "http://jabber.org/protocol/pubsub#publish", "http://jabber.org/protocol/pubsub#publish-options", "http://jabber.org/protocol/pubsub#purge-nodes", "http://jabber.org/protocol/pubsub#retract-items", "http://jabber.org/protocol/pubsub#retrieve-items"},
			Tests:   []string{"internal/sm.TestPEPRequests"}},
		{ID: "XEP-0084", Name: "User Avatar", Status: "complete", Note: "through PEP",
			Tests: []string{"e2e.TestPEPAvatarNotification"}},
		{ID: "XEP-0100", Name: "Gateway Interaction", Status: "complete", Note: "bridges made with the SDK (bridge/) in transport mode, and the IRC bridge (bridge/irc)",
			Bridge: []string{"jabber:iq:gateway"},
			Tests:  []string{"bridge.TestTransportRegistration", "bridge.TestTransportRegistrationKeepsItsSession", "bridge.TestLoginInStepsWithCode", "e2e.TestBridgeIRCTransport"}},
		{ID: "XEP-0106", Name: "JID Escaping", Status: "complete", Note: "the addresses of a bridged network's users",
			Tests: []string{"bridge.TestPuppetOneToOne"}},
		{ID: "XEP-0114", Name: "Jabber Component Protocol", Status: "complete", Note: "both sides: the server's component listener, and the component's side that attaches bridges to any server",
			Tests: []string{"e2e.TestExternalComponentEcho", "e2e.TestBiboumiIRCGateway", "e2e.TestComponentClient", "internal/componentclient.TestStanzasBothWays", "internal/componentclient.TestReconnect", "internal/componentclient.TestRefused"}},
		{ID: "XEP-0115", Name: "Entity Capabilities", Status: "complete", Note: "verified sha-1 hashes, cached; drive PEP +notify filtering",
			Tests: []string{"internal/sm.TestCapsVer", "internal/sm.TestCapsAnswerOnlyFromAskedJID", "internal/sm.TestPEPNotifyThroughCaps"}},
		{ID: "XEP-0144", Name: "Roster Item Exchange", Status: "partial", Note: "sent by bridges where no roster privilege is granted; not acted on when received",
			Tests: []string{"bridge.TestTransportRegistration"}},
		{ID: "XEP-0153", Name: "vCard-Based Avatars", Status: "partial", Note: "the avatars of a bridged network's users",
			Tests: []string{"bridge.TestRichMessages"}},
		{ID: "XEP-0156", Name: "Discovering Alternative XMPP Connection Methods", Status: "partial", Note: "host-meta and host-meta.json on the web listener; no DNS TXT records",
			Tests: []string{"internal/web.TestHostMeta", "e2e.TestWebSocket"}},
		{ID: "XEP-0157", Name: "Contact Addresses for XMPP Services", Status: "complete",
			Tests: []string{"internal/sm.TestContactAddresses"}},
		{ID: "XEP-0160", Name: "Best Practices for Handling Offline Messages", Status: "complete", Server: []string{"msgoffline"},
			Tests: []string{"e2e.TestOfflineMessagesSurviveRestart", "internal/sm.TestOfflineMessages"}},
		{ID: "XEP-0163", Name: "Personal Eventing Protocol", Status: "complete",
			Tests: []string{"e2e.TestPEPAvatarNotification", "e2e.TestPEPBookmarksSurviveRestart", "internal/sm.TestPEPNotifyThroughCaps", "internal/sm.TestPEPRemoteContact"}},
		{ID: "XEP-0178", Name: "Best Practices for Use of SASL EXTERNAL with Certificates", Status: "complete", Note: "server-to-server",
			Tests: []string{"e2e.TestS2SAmbrosiaPair", "e2e.TestS2SProsody", "e2e.TestS2SEjabberd", "internal/s2s.TestFederationBothWays"}},
		{ID: "XEP-0184", Name: "Message Delivery Receipts", Status: "complete", Note: "relayed by the server; a bridge acknowledges what its network took",
			Bridge: []string{"urn:xmpp:receipts"},
			Tests:  []string{"bridge.TestPuppetOneToOne"}},
		{ID: "XEP-0185", Name: "Dialback Key Generation and Validation", Status: "complete",
			Tests: []string{"internal/s2s.TestFederationBothWays", "e2e.TestS2SBadPeers"}},
		{ID: "XEP-0191", Name: "Blocking Command", Status: "complete", Server: []string{"urn:xmpp:blocking"},
			Tests: []string{"e2e.TestIMBlocking", "internal/sm.TestBlocking"}},
		{ID: "XEP-0198", Name: "Stream Management", Status: "complete", Note: "with resumption on client streams (c2s.resume_timeout); acknowledgements on server streams",
			Tests: []string{"e2e.TestStreamManagementResume", "internal/c2s.TestSMResume", "internal/c2s.TestSMResumeTimeout", "internal/s2s.TestUnacknowledgedResent", "internal/s2s.TestIncomingStreamManagement"}},
		{ID: "XEP-0199", Name: "XMPP Ping", Status: "complete", Server: []string{"urn:xmpp:ping"}, Upload: []string{"urn:xmpp:ping"},
			MUC: []string{"urn:xmpp:ping"}, Room: []string{"urn:xmpp:ping"},
			Bridge: []string{"urn:xmpp:ping"},
			Tests:  []string{"e2e.TestPingAndDisco", "internal/c2s.TestWhitespaceKeepaliveAndIdlePing"}},
		{ID: "XEP-0202", Name: "Entity Time", Status: "complete", Server: []string{"urn:xmpp:time"},
			Tests: []string{"internal/sm.TestEntityTimeAndUptime"}},
		{ID: "XEP-0128", Name: "Service Discovery Extensions", Status: "complete", Note: "the room information form (muc#roominfo)",
			Tests: []string{"internal/muc/room.TestDiscoInfo"}},
		{ID: "XEP-0203", Name: "Delayed Delivery", Status: "complete", Note: "on offline messages, room history, and what a bridge kept for a user who was away",
			Tests: []string{"e2e.TestOfflineMessagesSurviveRestart", "internal/muc/room.TestHistory"}},
		{ID: "XEP-0223", Name: "Persistent Storage of Private Data via PubSub", Status: "complete",
			Tests: []string{"e2e.TestPEPBookmarksSurviveRestart"}},
		{ID: "XEP-0220", Name: "Server Dialback", Status: "complete", Note: "as receiving and as authoritative server",
			Tests: []string{"e2e.TestS2SAmbrosiaPair", "e2e.TestS2SProsody", "e2e.TestS2SEjabberd", "e2e.TestS2SBadPeers"}},
		{ID: "XEP-0237", Name: "Roster Versioning", Status: "complete",
			Tests: []string{"e2e.TestIMRosterVersioning", "internal/sm.TestRosterVersioning"}},
		{ID: "XEP-0249", Name: "Direct MUC Invitations", Status: "complete", Note: "relayed between users, carbon-copied; rooms add the direct form to mediated invitations",
			Tests: []string{"internal/sm.TestCarbonsMUC", "internal/muc/room.TestMembersOnly"}},
		{ID: "XEP-0280", Name: "Message Carbons", Status: "complete", Server: []string{"urn:xmpp:carbons:2"}, Note: "with the multi-user chat rules of §6",
			Tests: []string{"e2e.TestIMCarbons", "internal/sm.TestCarbons", "internal/sm.TestCarbonsMUC"}},
		{ID: "XEP-0308", Name: "Last Message Correction", Status: "complete", Note: "relayed by the server; bridges map corrections both ways",
			Bridge: []string{"urn:xmpp:message-correct:0"},
			Tests:  []string{"bridge.TestPuppetOneToOne"}},
		{ID: "XEP-0313", Name: "Message Archive Management", Status: "complete", Note: "users' and rooms' archives; retention configurable",
			Account: []string{"urn:xmpp:mam:2"}, Room: []string{"urn:xmpp:mam:2"},
			Tests: []string{"e2e.TestArchiveSurvivesRestart", "internal/sm.TestMAMPaging", "internal/sm.TestMAMPrefs", "internal/sm.TestMAMBadQueries", "internal/muc.TestRoomOverSessions", "e2e.TestSplitMUC"}},
		{ID: "XEP-0333", Name: "Displayed Markers", Status: "complete", Note: "relayed by the server; bridges map them both ways",
			Bridge: []string{"urn:xmpp:chat-markers:0"},
			Tests:  []string{"bridge.TestRichMessages"}},
		{ID: "XEP-0352", Name: "Client State Indication", Status: "complete",
			Tests: []string{"internal/c2s.TestClientStateIndication"}},
		{ID: "XEP-0356", Name: "Privileged Entity", Status: "partial",
			Note: "for external components, granted by [component.external.privileges] or --component-privileges, never by default; " +
				"urn:xmpp:privilege:2 (default) or :1 per component; roster (get, set with subscriptions, pushes), message, iq and managed_entity presence complete; " +
				"roster presence: contacts' presence as it changes and, when the component connects, the probed presence of online users' contacts, not yet that of offline users' contacts; " +
				"split across processes, presence and roster pushes come from the session-manager instance the component announced itself to; " +
				"the bridge SDK uses the roster and message privileges where a server grants them (:2 or :1: Ambrosia, ejabberd's and Prosody's mod_privilege)",
			Tests: []string{"e2e.TestBridgeIRCOnEjabberd", "e2e.TestBridgeIRCOnProsody", "e2e.TestPrivilegedComponentRoster", "internal/component.TestPrivilegeAdvertised", "internal/component.TestPrivilegedComponent", "internal/component.TestPrivilegedComponentLeaves",
				"internal/sm.TestPrivilegedRoster", "internal/sm.TestPrivilegedRosterRefused", "internal/sm.TestPrivilegedMessage", "internal/sm.TestPrivilegedPresence", "internal/sm.TestPrivilegedIQ",
				"internal/link.TestGrantCrossesTheLink", "internal/privilege.TestValidate", "internal/config.TestDecodeAndValidate"}},
		{ID: "XEP-0357", Name: "Push Notifications", Status: "complete", Note: "notifications carry the sender, never the body",
			Account: []string{"urn:xmpp:push:0"},
			Tests:   []string{"e2e.TestPushStreamManagementOffline", "internal/c2s.TestPushDetachedThenExpired", "internal/c2s.TestPushOfflineAndErrors"}},
		{ID: "XEP-0359", Name: "Unique and Stable Stanza IDs", Status: "complete", Account: []string{"urn:xmpp:sid:0"}, Room: []string{"urn:xmpp:sid:0"},
			Tests: []string{"internal/sm.TestMAMArchivesBothSides", "internal/sm.TestMAMForgedStanzaID", "internal/muc/room.TestGroupchat"}},
		{ID: "XEP-0363", Name: "HTTP File Upload", Status: "complete", Note: "built-in HTTPS file store with size limit, per-user quota and expiry ([upload])",
			Upload: []string{"urn:xmpp:http:upload:0"},
			Tests:  []string{"e2e.TestUploadSlixmpp", "internal/upload.TestUploadAndDownload", "internal/upload.TestPutRefused", "internal/upload.TestSlotRequestErrors", "internal/upload.TestPathTraversal"}},
		{ID: "XEP-0368", Name: "SRV records for XMPP over TLS", Status: "complete", Note: "direct TLS for clients (with ALPN) and servers, _xmpps-server SRV lookup",
			Tests: []string{"e2e.TestDirectTLS", "internal/c2s.TestDirectTLSWithALPN", "internal/s2s.TestDirectTLSBySRV"}},
		{ID: "XEP-0379", Name: "Pre-Authenticated Roster Subscription", Status: "partial", Note: "for invitations that create an account: the invitee and the inviter end up subscribed both ways at registration; a <preauth/> in a subscription request between existing accounts is not honoured",
			Tests: []string{"internal/c2s.TestRegistrationByInvitation", "e2e.TestInvitation"}},
		{ID: "XEP-0401", Name: "Ad-hoc Account Invitation Generation", Status: "partial", Note: "invitations from `ambrosia invite` and, with [invites] users = true, from the command urn:xmpp:invite#invite (contact invitations with ibr=y); no landing page, no urn:xmpp:invite#create-account",
			Tests: []string{"internal/c2s.TestInvitationCommand", "cmd/ambrosia.TestInviteCommand", "e2e.TestInvitation", "e2e.TestInvitationCommand"}},
		{ID: "XEP-0410", Name: "MUC Self-Ping (Schrödinger's Chat)", Status: "complete", Note: "answered by the room",
			Room:  []string{"http://jabber.org/protocol/muc#self-ping-optimization"},
			Tests: []string{"internal/muc/room.TestSelfPingAndForwardedIQ", "e2e.TestSplitMUC"}},
		{ID: "XEP-0421", Name: "Anonymous unique occupant identifiers for MUCs", Status: "complete",
			Room:  []string{"urn:xmpp:occupant-id:0"},
			Tests: []string{"internal/muc/room.TestGroupchat", "internal/muc/room.TestCreateLockedAndJoinOrder"}},
		{ID: "XEP-0424", Name: "Message Retraction", Status: "partial", Note: "the retraction a room sends for a moderated message; users' own retractions are relayed, not applied to archives; bridges map retractions both ways",
			Bridge: []string{"urn:xmpp:message-retract:1"},
			Tests:  []string{"bridge.TestRichMessages", "internal/muc/room.TestModeration", "internal/muc.TestModerationTombstone"}},
		{ID: "XEP-0425", Name: "Moderated Message Retraction", Status: "complete", Note: "tombstones in the room's archive",
			Room:  []string{"urn:xmpp:message-moderate:1"},
			Tests: []string{"internal/muc/room.TestModeration", "internal/muc.TestModerationTombstone"}},
		{ID: "XEP-0444", Name: "Message Reactions", Status: "complete", Note: "relayed by the server; bridges map them both ways",
			Bridge: []string{"urn:xmpp:reactions:0"},
			Tests:  []string{"bridge.TestPuppetOneToOne", "bridge.TestRichMessages"}},
		{ID: "XEP-0445", Name: "Pre-Authenticated In-Band Registration", Status: "complete", Note: "[invites] enabled (on by default): an invitation opens registration once even when c2s.allow_registration is off",
			Tests: []string{"internal/c2s.TestRegistrationByInvitation", "internal/c2s.TestInvitationsOff", "e2e.TestInvitation"}},
		{ID: "XEP-0447", Name: "Stateless File Sharing", Status: "partial", Note: "files shared by URL on the messages of bridges",
			Tests: []string{"bridge.TestRichMessages"}},
		{ID: "XEP-0461", Name: "Message Replies", Status: "complete", Note: "relayed by the server; bridges map replies both ways",
			Bridge: []string{"urn:xmpp:reply:0"},
			Tests:  []string{"bridge.TestRichMessages"}},
		{ID: "XEP-0486", Name: "MUC Avatars", Status: "complete",
			Room:  []string{"vcard-temp"},
			Tests: []string{"internal/muc/room.TestAvatar"}},
		{ID: "XEP-0386", Name: "Bind 2", Status: "complete", Note: "inline stream management, carbons and client state indication",
			Tests: []string{"internal/c2s.TestSASL2Bind2", "internal/c2s.TestSASL2ResumeInline"}},
		{ID: "XEP-0388", Name: "Extensible SASL Profile", Status: "complete",
			Tests: []string{"internal/c2s.TestSASL2Features", "internal/c2s.TestSASL2Failures"}},
		{ID: "XEP-0402", Name: "PEP Native Bookmarks", Status: "complete",
			Tests: []string{"e2e.TestPEPBookmarksSurviveRestart"}},
		{ID: "XEP-0440", Name: "SASL Channel-Binding Type Capability", Status: "complete",
			Tests: []string{"internal/c2s.TestLoginEveryMechanism"}},
		{ID: "XEP-0474", Name: "SASL SCRAM Downgrade Protection", Status: "complete", Note: "version 0.5.0, in SASL2",
			Tests: []string{"internal/c2s.TestSASL2SSDP"}},
		{ID: "XEP-0484", Name: "Fast Authentication Streamlining Tokens", Status: "complete", Note: "HT-SHA-256-NONE, -ENDP and -EXPR",
			Tests: []string{"internal/c2s.TestFASTLogin", "internal/c2s.TestFASTRotation", "internal/c2s.TestFASTExpiredInvalidatedRemoved"}},
	}
}

// ServerFeatures returns the features the catalogue says the server's
// domain announces.
func ServerFeatures() []string { return collect(func(s Spec) []string { return s.Server }) }

// AccountFeatures returns the features announced on a user's bare JID.
func AccountFeatures() []string { return collect(func(s Spec) []string { return s.Account }) }

// UploadFeatures returns the features of the HTTP upload service.
func UploadFeatures() []string { return collect(func(s Spec) []string { return s.Upload }) }

// MUCFeatures returns the features of the conference service.
func MUCFeatures() []string { return collect(func(s Spec) []string { return s.MUC }) }

// BridgeFeatures returns every feature a bridge made with the SDK may
// announce.
func BridgeFeatures() []string { return collect(func(s Spec) []string { return s.Bridge }) }

// RoomFeatures returns every feature a room may announce.
func RoomFeatures() []string { return collect(func(s Spec) []string { return s.Room }) }

func collect(f func(Spec) []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range Specs() {
		for _, v := range f(s) {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}
