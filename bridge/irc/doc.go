// Package irc bridges an IRC server to XMPP with the bridge SDK
// (package bridge): XMPP users talk one to one with IRC users and take
// part in IRC channels as rooms of the bridge's domain.
//
// # Running it
//
// A program makes the network from its configuration and hands it to the
// bridge, which connects to the XMPP network and runs until its context
// ends:
//
//	n, err := irc.New(irc.Config{Server: "irc.example.org:6697", TLS: true, Mode: "puppet"}, log)
//	if err != nil { … }
//	b, err := bridge.New(n, bridgeConfig, log) // Domain "irc.example.org", the XMPP connection…
//	if err != nil { … }
//	err = b.Run(ctx)
//
// Start from DefaultConfig for the defaults (flood control, real name);
// in TOML the keys are those of Config's tags, such as:
//
//	server = "irc.example.org:6697"
//	tls = true
//	mode = "transport"
//	flood_rate = 2
//	flood_burst = 5
//	contact_poll = "1m"
//
// # Modes
//
// In puppet mode every XMPP user who writes to the bridge gets an IRC
// connection of their own, under a nick made from their address's
// localpart (alice@example.org is "alice", with Config.NickSuffix after
// it; '_' is appended while the nick is taken). Nobody registers; the
// server password, if any, is the operator's (Config.Password).
//
// In transport mode (XEP-0100) each user registers with the bridge: a
// nick, the server's password if it wants one, and a NickServ password
// if the nick is registered with services, with which the bridge sends
// "PRIVMSG NickServ :IDENTIFY nick password" once connected, as biboumi
// and Spectrum do. The connection lasts while the user is online.
//
// # Addresses
//
// The bridge serves one IRC server. An IRC user is the bridge.UserID of
// their nick (bob@irc.example.org); a channel is the bridge.RoomID of its
// name (#go@irc.example.org; characters a localpart may not hold are
// escaped as XEP-0106 says, so &local is \26local@irc.example.org).
// Network.IsRoom tells channels from nicks by their first character: '#',
// '&', '+' or '!'.
//
// Notices of the server itself come one to one from the server's host
// as an id (irc.example.org@irc.example.org for the server
// irc.example.org:6697), which takes no messages; those of services
// such as NickServ come from their nicks, so that users can answer them.
//
// # What maps to what
//
//   - one-to-one messages: PRIVMSG both ways, CTCP ACTION for emotes
//     ("/me"), long or multi-line messages cut to IRC's 512-byte lines; an
//     unknown nick (401) refuses the XMPP message as item-not-found.
//   - channels: JOIN with the room's password as key; the room is entered
//     once the server's names (353, 366) came, with the topic (332); a
//     full channel, an invitation-only or a banned one, a wrong key, or no
//     such channel refuse the join. Operators (and above, and half
//     operators) are moderators, the founder (~) an owner, voice and the
//     rest participants. Topics, kicks and nick changes go both ways;
//     IRC has one nick for all channels, so a nick change in one room
//     changes it in all. PART and QUIT leave.
//   - presence: away, extended away and do-not-disturb set AWAY with the
//     status; available unsets it. Other people's AWAY (from RPL_AWAY,
//     and away-notify where the server offers it) becomes their presence.
//   - contacts: see below.
//   - the connection dropping ends the session; the bridge logs in again,
//     waiting longer after each failure.
//
// # Contacts
//
// IRC has no contact lists. As with a client's query windows, a nick
// the XMPP user exchanged a one-to-one message with, either way (a
// PRIVMSG or an emote the server took or delivered, not a notice nor a
// CTCP query), becomes a contact of the user: the bridge puts it in the
// user's roster, named after the nick, in the group "IRC" (with the
// server's roster privilege, XEP-0356; elsewhere it suggests it, XEP-0144,
// and asks for the subscription). A session reports each contact once;
// at the next login the bridge gives it the contacts in the roster
// (bridge.Account.Contacts), so that they are followed from the start,
// across reconnections and restarts. A session follows up to 1000.
//
// A contact is a nick, not a person: who leaves it goes offline, who
// takes it comes online, and someone who changes nick and writes again
// is another contact; the old one stays in the roster.
//
// Their presence: where the server offers MONITOR (IRCv3), the session
// monitors them and the server says when each comes or goes; otherwise,
// and for those past MONITOR's limit, it asks with ISON at login and
// then every contact_poll (a minute by default), so a contact is seen
// going or coming up to that late. ngircd, for one, has neither MONITOR
// nor WATCH: it gets ISON. A contact seen quitting or changing nick in
// a channel the user is in, or to whom a message finds no such nick, is
// offline at once; one who writes, online. Online contacts are available,
// or away with their message where the server told it (RPL_AWAY when
// written to, away-notify in shared channels): ISON and MONITOR say
// nothing about away.
//
// In the channels, people are told to the bridge under the nick the
// session first saw them with, kept while they change nicks, because the
// bridge keys a room's participants by id; one to one, they are always
// their nick of the moment.
package irc
